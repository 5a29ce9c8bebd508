"""Intake's composition root."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI

from fengqiao.events import Topics
from fengqiao.runtime import Runtime, ServiceSpec, build_app
from fengqiao.settings import Settings
from intake.api import router
from intake.handlers import handlers

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


async def initialise_station_series(rt: Runtime) -> None:
    """Series of every known station exist at 0 from the start (Prometheus practice), so rates
    and alerts work before a station's first submission. Stations that arrive later are added by
    the station_upserted handler."""
    while True:
        try:
            async with rt.pool.acquire() as conn:
                rt.metrics.init_station_series([r["code"] for r in await conn.fetch("SELECT code FROM stations")])
            return
        except Exception:
            await asyncio.sleep(5)  # the database may be down; readiness reports it


def create_app(settings: Settings | None = None) -> FastAPI:
    spec = ServiceSpec(
        name="intake",
        title="枫桥 Fengqiao intake",
        migrations_dir=MIGRATIONS,
        topics=[Topics.SUBMISSIONS, Topics.CASE_EVENTS, Topics.DIRECTORY],
        handlers=handlers,
        routers=[router],
        background=[initialise_station_series],
    )
    return build_app(spec, settings)

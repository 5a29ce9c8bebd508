"""Mediation's composition root."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI

from fengqiao.events import Topics
from fengqiao.runtime import Runtime, ServiceSpec, build_app
from fengqiao.settings import Settings
from mediation import db
from mediation.api import router
from mediation.handlers import handlers

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


async def refresh_open_case_gauge(rt: Runtime) -> None:
    """`fengqiao_cases_open{station,status}` from the table, every few seconds."""
    seen: set[tuple[str, str]] = set()
    while True:
        try:
            async with rt.pool.acquire() as conn:
                rows = await db.open_counts(conn)
            current = {(r["station"], r["status"]): r["n"] for r in rows}
            for key in seen - current.keys():
                rt.metrics.cases_open.labels(*key).set(0)
            for key, n in current.items():
                rt.metrics.cases_open.labels(*key).set(n)
            seen |= current.keys()
        except Exception:
            pass  # the database may be down; readiness reports it
        await asyncio.sleep(5)


def create_app(settings: Settings | None = None) -> FastAPI:
    spec = ServiceSpec(
        name="mediation",
        title="枫桥 Fengqiao mediation (staff console)",
        migrations_dir=MIGRATIONS,
        topics=[Topics.CASE_EVENTS],
        handlers=handlers,
        routers=[router],
        background=[refresh_open_case_gauge],
    )
    return build_app(spec, settings)

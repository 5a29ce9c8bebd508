"""Triage's composition root."""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog
from fastapi import FastAPI

from fengqiao.events import Topics
from fengqiao.registry import ServiceDescriptor
from fengqiao.runtime import Runtime, ServiceSpec, build_app
from fengqiao.settings import Settings
from triage import db
from triage.api import router
from triage.handlers import make_handlers
from triage.metrics import TriageMetrics
from triage.signing import ModelSigner
from triage.state import EngineState

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
log = structlog.get_logger(__name__)


def engine_refresher(state: EngineState):
    async def refresh_engine(rt: Runtime) -> None:
        """Load the active model (training the seed model on a new deployment) before the first
        item if possible, then follow activations, rules and thresholds."""
        tm = TriageMetrics.of(rt.metrics)
        state.on_model_change = tm.model_changed
        seen: set[str] = set()  # stations with a waiting series, so it drops back to 0
        while True:
            try:
                async with rt.pool.acquire() as conn, conn.transaction():
                    await state.refresh(conn)
                async with rt.pool.acquire() as conn:
                    waiting = {r["station"]: r["n"] for r in await db.waiting_for_officer(conn)}
                seen |= set(waiting)
                for station in seen:
                    tm.waiting.labels(station=station).set(waiting.get(station, 0))
            except Exception as exc:  # the database may be away; items fall back to the last state
                log.warning("engine_refresh_failed", error=type(exc).__name__, detail=str(exc)[:200])
            await asyncio.sleep(state.refresh_s)

    return refresh_engine


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    state = EngineState(signer=ModelSigner.from_settings(settings))
    spec = ServiceSpec(
        name="triage",
        title="枫桥 Fengqiao triage",
        migrations_dir=MIGRATIONS,
        topics=[Topics.TRIAGE_REQUESTS, Topics.CORRECTIONS, Topics.CASE_EVENTS, Topics.DIRECTORY, Topics.CASE_ACCESS],
        handlers=make_handlers(state),
        routers=[router],
        background=[engine_refresher(state)],
    )
    app = build_app(spec, settings)
    app.state.engine = state
    return app


# How the platform finds this service (entry point `fengqiao.services`); DESIGN 4.2 fixes the port.
SERVICE = ServiceDescriptor(
    name="triage",
    default_port=8082,
    migrations_dir=MIGRATIONS,
    create_app=create_app,
    label="triage",
)

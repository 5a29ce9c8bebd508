"""Intake's composition root."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from fengqiao.events import Topics
from fengqiao.runtime import ServiceSpec, build_app
from fengqiao.settings import Settings
from intake.api import router
from intake.handlers import handlers

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def create_app(settings: Settings | None = None) -> FastAPI:
    spec = ServiceSpec(
        name="intake",
        title="枫桥 Fengqiao intake",
        migrations_dir=MIGRATIONS,
        topics=[Topics.SUBMISSIONS, Topics.CASE_EVENTS, Topics.DIRECTORY],
        handlers=handlers,
        routers=[router],
    )
    return build_app(spec, settings)

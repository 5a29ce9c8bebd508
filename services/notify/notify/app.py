"""Notify's composition root."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from fengqiao.events import Topics
from fengqiao.runtime import ServiceSpec, build_app
from fengqiao.settings import Settings
from notify.api import router
from notify.handlers import make_handlers

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    spec = ServiceSpec(
        name="notify",
        title="枫桥 Fengqiao notify",
        migrations_dir=MIGRATIONS,
        topics=[Topics.CASE_EVENTS, Topics.CITIZEN_MESSAGES, Topics.STAFF_REMINDERS, Topics.DIRECTORY],
        handlers=make_handlers(settings.public_base_url),
        routers=[router],
    )
    return build_app(spec, settings)

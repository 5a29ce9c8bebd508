"""Triage's composition root."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from fengqiao.events import Topics
from fengqiao.runtime import ServiceSpec, build_app
from fengqiao.settings import Settings
from triage.handlers import handlers

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def create_app(settings: Settings | None = None) -> FastAPI:
    spec = ServiceSpec(
        name="triage",
        title="枫桥 Fengqiao triage",
        migrations_dir=MIGRATIONS,
        topics=[Topics.TRIAGE_REQUESTS, Topics.DIRECTORY],
        handlers=handlers,
    )
    return build_app(spec, settings)

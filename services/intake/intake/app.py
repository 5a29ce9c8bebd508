"""Intake's composition root."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import structlog
from fastapi import FastAPI

from fengqiao import links
from fengqiao.events import Topics
from fengqiao.outbox import unit_of_work
from fengqiao.pii import BlindIndex, PiiCipher, PiiKeyError
from fengqiao.ratelimit import RateLimits
from fengqiao.registry import ServiceDescriptor
from fengqiao.runtime import Runtime, ServiceSpec, build_app
from fengqiao.settings import Settings
from intake import db
from intake.api import MAX_BODY_BYTES, router
from intake.events_api import router as events_router
from intake.handlers import make_handlers
from intake.hotline import router as hotline_router
from intake.mailbox import smtp_receiver
from intake.open311 import router as open311_router
from intake.slips_api import MAX_SCAN_BASE64
from intake.slips_api import router as mailbox_router
from intake.submissions import seal_personal_data
from intake.web import router as web_router

log = structlog.get_logger(__name__)

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


async def initialise_station_series(rt: Runtime) -> None:
    """Series of every known station exist at 0 from the start (Prometheus practice), so rates
    and alerts work before a station's first submission. Stations that arrive later are added by
    the station_upserted handler."""
    while True:
        try:
            async with rt.pool.acquire() as conn:
                rt.metrics.init_station_series([r["code"] for r in await db.stations(conn)])
            return
        except Exception:
            await asyncio.sleep(5)  # the database may be down; readiness reports it


def seal_legacy_rows(cipher: PiiCipher):
    """Encrypt personal data of rows stored before encryption existed (migration 0003), in small
    batches, then stop."""

    async def seal_legacy_personal_data(rt: Runtime) -> None:
        sealed = 0
        while True:
            try:
                async with unit_of_work(rt.pool) as (conn, _outbox):
                    rows = await db.unsealed_submissions(conn, 200)
                    for row in rows:
                        reporter = json.loads(row["reporter"]) if row["reporter"] else {}
                        identity = {k: reporter.get(k, "") for k in ("name", "phone", "email")}
                        location = json.loads(row["location"]) if row["location"] else {}
                        kid, reporter_enc, location_enc = seal_personal_data(
                            cipher, row["tracking_no"], identity, location
                        )
                        await db.seal_submission(conn, row["tracking_no"], kid, reporter_enc, location_enc)
            except Exception as exc:
                log.warning("legacy_sealing_failed", error=type(exc).__name__)
                await asyncio.sleep(10)
                continue
            sealed += len(rows)
            if not rows:
                if sealed:
                    log.info("legacy_personal_data_sealed", rows=sealed)
                return

    return seal_legacy_personal_data


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    try:
        cipher = PiiCipher.from_setting(settings.pii_keys.get_secret_value() if settings.pii_keys else None)
        index = BlindIndex.from_setting(settings.pii_index_key.get_secret_value() if settings.pii_index_key else None)
        link_key = links.key_from_setting(settings.link_key.get_secret_value() if settings.link_key else None)
    except (PiiKeyError, links.LinkInvalid) as exc:
        raise SystemExit(f"intake: {exc}") from exc
    spec = ServiceSpec(
        name="intake",
        title="枫桥 Fengqiao intake",
        migrations_dir=MIGRATIONS,
        topics=[Topics.SUBMISSIONS, Topics.CASE_EVENTS, Topics.CITIZEN_UPDATES, Topics.DIRECTORY, Topics.CASE_ACCESS],
        handlers=make_handlers(cipher, index),
        routers=[router, events_router, hotline_router, mailbox_router, open311_router, web_router],
        background=[initialise_station_series, seal_legacy_rows(cipher), smtp_receiver(cipher, index)],
        body_limits={
            "/api/v1/feedback": MAX_BODY_BYTES,
            "/api/v1/events": MAX_BODY_BYTES,
            "/api/v1/hotline/calls": MAX_BODY_BYTES,
            "/api/v1/mailbox/items": MAX_SCAN_BASE64 + MAX_BODY_BYTES,
        },  # a scanned slip
        slow_routes={"/api/v1/mailbox/items": 60.0},  # ...uploaded over a slow station line
    )
    app = build_app(spec, settings)
    app.state.pii = cipher
    app.state.pii_index = index
    app.state.link_key = link_key
    app.state.rate_limits = RateLimits(
        {"submit": settings.rate_limit_submit, "track": settings.rate_limit_track},
        trusted_proxies=frozenset(a.strip() for a in settings.trusted_proxies.split(",") if a.strip()),
    )
    return app


# How the platform finds this service (entry point `fengqiao.services`); DESIGN 4.2 fixes the port.
SERVICE = ServiceDescriptor(
    name="intake",
    default_port=8080,
    migrations_dir=MIGRATIONS,
    create_app=create_app,
    label="public web + API",
    dev_hints=(
        "  API docs   {url}/docs",
        "Try:  curl -s -X POST {url}/api/v1/feedback -H 'content-type: application/json' "
        '-d \'{"station":"KZ01","content":"楼上邻居每天深夜噪音扰民，协商无果"}\'',
    ),
)

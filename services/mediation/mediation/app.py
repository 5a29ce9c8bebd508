"""Mediation's composition root."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import structlog
from fastapi import FastAPI, HTTPException

from fengqiao.constants import STATION_TZ
from fengqiao.events import Topics
from fengqiao.outbox import unit_of_work
from fengqiao.pii import BlindIndex, PiiCipher, PiiKeyError
from fengqiao.ratelimit import RateLimits
from fengqiao.registry import ServiceDescriptor
from fengqiao.runtime import Runtime, ServiceSpec, build_app
from fengqiao.settings import Settings
from mediation import db
from mediation.access_api import router as access_router
from mediation.api import refused, router
from mediation.cases import calendar
from mediation.commands_api import router as commands_router
from mediation.console_assets import missing_assets
from mediation.console_assets import router as console_assets_router
from mediation.console_case import router as console_case_router
from mediation.console_common import (
    FormExpired,
    PasswordChangeRequired,
    SignInRequired,
    form_expired,
    password_redirect,
    sign_in_redirect,
)
from mediation.console_inbox import router as console_inbox_router
from mediation.console_mediation import router as console_mediation_router
from mediation.console_queue import router as console_queue_router
from mediation.console_reception import router as console_reception_router
from mediation.console_rectification import router as console_rectification_router
from mediation.console_replies import router as console_replies_router
from mediation.console_web import router as console_router
from mediation.directory_admin import DirectoryRefused
from mediation.directory_api import refused as directory_refused
from mediation.directory_api import router as directory_router
from mediation.handlers import make_handlers
from mediation.lifecycle import Rejected
from mediation.metrics import MediationMetrics
from mediation.oidc import OidcClient
from mediation.records_api import router as records_router
from mediation.rectification import unaddressed
from mediation.rectification_api import router as rectification_router
from mediation.roster_ops import materialise_all
from mediation.rosters import RosterRefused
from mediation.rosters_api import roster_refused
from mediation.rosters_api import router as rosters_router
from mediation.seed import seed_demo
from mediation.service_calls import Services
from mediation.signin import sweep_expired_sessions, use_token_key
from mediation.timers import fire_due

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
log = structlog.get_logger(__name__)


async def refresh_open_case_gauge(rt: Runtime) -> None:
    """`fengqiao_cases_open{station,status}`, the rectification ledger and the station rates from
    the tables, every few seconds."""
    mm = MediationMetrics.of(rt.metrics)
    measures, drawer, rates = mm.measures, mm.unaddressed, mm.rates
    seen: set[tuple[str, str]] = set()
    while True:
        try:
            now = datetime.now(UTC)
            async with rt.pool.acquire() as conn:
                rows = await db.cases.open_counts(conn)
                for m in await db.rectification.counts(conn, now):
                    measures.labels(m["station"], "open").set(m["open"])
                    measures.labels(m["station"], "overdue").set(m["overdue"])
                waiting: dict[str, int] = {}
                for item in await unaddressed(conn, None, now):
                    waiting[item["station"]] = waiting.get(item["station"], 0) + 1
                for station in {s for (s, _) in seen} | set(waiting):
                    drawer.labels(station).set(waiting.get(station, 0))
                for row in await db.clocks.station_rates(conn, now):
                    for rate in ("response", "resolution", "on_time", "satisfaction"):
                        if row[rate] is not None:
                            rates.labels(row["station"], rate).set(row[rate])
            current = {(r["station"], r["status"]): r["n"] for r in rows}
            for key in seen - current.keys():
                rt.metrics.cases_open.labels(*key).set(0)
            for key, n in current.items():
                rt.metrics.cases_open.labels(*key).set(n)
            seen |= current.keys()
        except Exception:
            pass  # the database may be down; readiness reports it
        await asyncio.sleep(5)


CLOCK_INTERVAL_S = 5.0


async def run_clocks(rt: Runtime) -> None:
    """Fire due reminders, escalations and supervisions; safe with any number of replicas."""
    calendar_gauge = MediationMetrics.of(rt.metrics).calendar_missing
    warned: list[int] = []
    while True:
        try:
            while True:
                async with unit_of_work(rt.pool) as (conn, outbox):
                    cal = await calendar(conn)
                    breaches = await fire_due(conn, outbox, datetime.now(UTC), cal)
                for station, clock in breaches:
                    rt.metrics.sla_breaches.labels(station=station, clock=clock).inc()
                missing = sorted(set(cal.missing_years(datetime.now(UTC).date())) | cal.fallback_years)
                calendar_gauge.set(len(missing))
                if missing and missing != warned:
                    log.warning(
                        "calendar_year_not_loaded",
                        years=missing,
                        hint="fengqiao calendar load FILE (the State Council's holiday notice)",
                    )
                warned = missing
                if not breaches:
                    break
        except Exception as exc:  # the database may be away: the clocks are in it, nothing is lost
            log.warning("clock_run_failed", error=type(exc).__name__, detail=str(exc)[:200])
        await asyncio.sleep(CLOCK_INTERVAL_S)


ROSTER_INTERVAL_S = 60.0
SESSION_SWEEP_INTERVAL_S = 60.0  # a timed-out session's token lives at most this much longer


async def run_rosters(rt: Runtime) -> None:
    """Keep every station's day rosters published from yesterday to today + 14 (the new day after
    midnight, staff deactivated since, a calendar loaded): only days whose content changed are
    published, under the station's lock, so every replica may run it."""
    while True:
        try:
            published = await materialise_all(rt.pool, datetime.now(STATION_TZ).date())
            if published:
                log.info("rosters_published", days=published)
        except Exception as exc:  # the database may be away: the next run catches up
            log.warning("roster_run_failed", error=type(exc).__name__, detail=str(exc)[:200])
        await asyncio.sleep(ROSTER_INTERVAL_S)


async def run_session_sweep(rt: Runtime) -> None:
    """End sessions past their timeouts and revoke their console tokens (issue 16); each replica
    may run it (rows are claimed with SKIP LOCKED)."""
    while True:
        try:
            ended = await sweep_expired_sessions(rt.pool, datetime.now(UTC))
            if ended:
                log.info("sessions_expired", count=ended)
        except Exception as exc:  # the database may be away: the next run catches up
            log.warning("session_sweep_failed", error=type(exc).__name__, detail=str(exc)[:200])
        await asyncio.sleep(SESSION_SWEEP_INTERVAL_S)


def _refused(exc: Exception) -> HTTPException:
    """`refused` in the shape ServiceSpec.http_errors takes (one callable type for every error type)."""
    assert isinstance(exc, Rejected), "registered for Rejected only"
    return refused(exc)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    try:  # mediation records hold parties' personal data, sealed like intake's
        cipher = PiiCipher.from_setting(settings.pii_keys.get_secret_value() if settings.pii_keys else None)
        index = BlindIndex.from_setting(settings.pii_index_key.get_secret_value() if settings.pii_index_key else None)
    except PiiKeyError as exc:
        raise SystemExit(f"mediation: {exc}") from exc
    spec = ServiceSpec(
        name="mediation",
        title="枫桥 Fengqiao mediation (staff console)",
        migrations_dir=MIGRATIONS,
        topics=[
            Topics.CASE_EVENTS,
            Topics.SURVEYS,
            Topics.TRIAGE_REQUESTS,
            Topics.CASE_ACCESS,
            Topics.CITIZEN_ADDITIONS,
        ],
        handlers=make_handlers(cipher, index),
        # commands_router last: its catch-all /cases/{no}/{command} answers unknown commands
        routers=[
            console_router,
            console_assets_router,
            # the console's pages (issue 16), one module each
            console_queue_router,
            console_replies_router,
            console_mediation_router,
            console_rectification_router,
            console_case_router,
            console_reception_router,
            console_inbox_router,
            records_router,
            rectification_router,
            router,
            access_router,
            directory_router,
            rosters_router,
            commands_router,
        ],
        background=[refresh_open_case_gauge, run_clocks, run_rosters, run_session_sweep],
        http_errors={Rejected: _refused, DirectoryRefused: directory_refused, RosterRefused: roster_refused},
    )
    app = build_app(spec, settings)
    app.add_exception_handler(SignInRequired, sign_in_redirect)
    app.state.rate_limits = RateLimits(
        {"login": settings.rate_limit_login},
        trusted_proxies=frozenset(a.strip() for a in settings.trusted_proxies.split(",") if a.strip()),
    )
    app.add_exception_handler(PasswordChangeRequired, password_redirect)
    app.add_exception_handler(FormExpired, form_expired)
    if missing := missing_assets():
        log.warning("console_assets_missing", files=missing, hint="make install (npm ci) or FENGQIAO_ASSETS_DIR")
    app.state.pii = cipher
    app.state.services = Services.from_settings(settings)  # intake and notify, for the console
    app.state.oidc = OidcClient.from_settings(settings)
    app.state.pii_index = index
    use_token_key(settings.pii_index_key.get_secret_value().encode() if settings.pii_index_key else b"")
    app.state.console_refresh_s = settings.console_refresh_s
    return app


# How the platform finds this service (entry point `fengqiao.services`); DESIGN 4.2 fixes the port.
SERVICE = ServiceDescriptor(
    name="mediation",
    default_port=8081,
    migrations_dir=MIGRATIONS,
    create_app=create_app,
    label="staff console",
    owns_directory=True,
    demo_seed=seed_demo,
    dev_hints=("  Console    {url}/login  (staff sign in with a demo account's user name and password above)",),
)

"""Notify's composition root."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import structlog
from fastapi import FastAPI

from fengqiao import links
from fengqiao.events import Topics
from fengqiao.pii import BlindIndex, PiiCipher, PiiKeyError
from fengqiao.registry import ServiceDescriptor
from fengqiao.runtime import Runtime, ServiceSpec, build_app
from fengqiao.settings import Settings
from notify.api import router
from notify.channels import Mailer, SmsGateway, WebhookSender
from notify.config import NotifySettings
from notify.deliveries import CHANNELS, DeliveryQueue, Rules, utcnow
from notify.handlers import Deps, make_handlers
from notify.policy import Backoff, QuietHours, rate_limits
from notify.templates import TemplateConfigError, Templates
from notify.webhooks import router as webhooks_router

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
log = structlog.get_logger(__name__)
IDLE_POLL_S = 1.0


def rules_from(ns: NotifySettings) -> Rules:
    return Rules(
        backoff=Backoff(base_s=ns.retry_base_s, cap_s=ns.retry_cap_s, max_attempts=ns.max_attempts),
        quiet=QuietHours.parse(ns.quiet_hours),
        limits=rate_limits(ns.recipient_rate_limit),
        batch=ns.delivery_batch,
        concurrency=ns.delivery_concurrency,
    )


def senders_from(ns: NotifySettings) -> dict:
    return {
        "sms": SmsGateway(ns) if ns.sms_gateway_url else None,
        "email": Mailer(ns) if ns.smtp_host else None,
        "webhook": WebhookSender(ns),
    }


def channel_worker(queue: DeliveryQueue, channel: str):
    async def run(rt: Runtime) -> None:
        """Send what is due on one channel; woken at once by new rows of this process, else polls."""
        wake = queue.wake[channel]
        while True:
            try:
                handled = await queue.process_due(rt.pool, channel, utcnow())
            except Exception as exc:  # the database may be away; the queue is in it, nothing is lost
                log.warning("delivery_run_failed", channel=channel, error=type(exc).__name__, detail=str(exc)[:200])
                handled = 0
            if handled:
                continue
            wake.clear()
            try:
                await asyncio.wait_for(wake.wait(), timeout=IDLE_POLL_S)
            except TimeoutError:
                pass

    run.__name__ = f"deliver_{channel}"
    return run


def housekeeping(queue: DeliveryQueue):
    async def run(rt: Runtime) -> None:
        """Seal rows from before the queue existed, then keep the queue gauges current."""
        sealed = False
        while True:
            try:
                if not sealed:
                    n = await queue.seal_legacy(rt.pool)
                    if n:
                        log.info("legacy_deliveries_sealed", count=n)
                    sealed = True
                async with rt.pool.acquire() as conn:
                    await queue.refresh_gauges(conn)
            except Exception as exc:
                log.warning("delivery_gauges_failed", error=type(exc).__name__)
            await asyncio.sleep(5)

    return run


def create_app(settings: Settings | None = None, notify_settings: NotifySettings | None = None) -> FastAPI:
    settings = settings or Settings()
    ns = notify_settings or NotifySettings()
    try:  # contacts and message texts are sealed at rest like intake's; survey links are signed
        cipher = PiiCipher.from_setting(settings.pii_keys.get_secret_value() if settings.pii_keys else None)
        index = BlindIndex.from_setting(settings.pii_index_key.get_secret_value() if settings.pii_index_key else None)
        link_key = links.key_from_setting(settings.link_key.get_secret_value() if settings.link_key else None)
        templates = Templates(ns.template_dir)
        templates.check(sorted(templates.station_folders))
        rules = rules_from(ns)
        senders = senders_from(ns)
    except (PiiKeyError, links.LinkInvalid, TemplateConfigError, ValueError) as exc:
        raise SystemExit(f"notify: {exc}") from exc
    for channel, sender in senders.items():
        if sender is None:
            log.warning(
                "channel_not_configured",
                channel=channel,
                hint="its deliveries fail at once and wait for a manual resend; see docs/operations.md",
            )
    queue = DeliveryQueue(cipher=cipher, index=index, rules=rules, templates=templates, senders=senders)
    deps = Deps(
        templates=templates,
        queue=queue,
        link_key=link_key,
        public_base_url=settings.public_base_url,
        survey_link_valid_s=int(timedelta(days=ns.survey_link_valid_days).total_seconds()),
    )
    spec = ServiceSpec(
        name="notify",
        title="枫桥 Fengqiao notify",
        migrations_dir=MIGRATIONS,
        topics=[
            Topics.CASE_EVENTS,
            Topics.CITIZEN_MESSAGES,
            Topics.STAFF_REMINDERS,
            Topics.SURVEYS,
            Topics.DIRECTORY,
            Topics.CASE_ACCESS,
        ],
        handlers=make_handlers(deps),
        routers=[router, webhooks_router],
        background=[*(channel_worker(queue, c) for c in CHANNELS), housekeeping(queue)],
    )
    app = build_app(spec, settings)
    app.state.queue = queue
    app.state.templates = templates
    app.state.webhook_policy = senders["webhook"].policy  # subscriptions are checked as sends are
    return app


# How the platform finds this service (entry point `fengqiao.services`); DESIGN 4.2 fixes the port.
SERVICE = ServiceDescriptor(
    name="notify",
    default_port=8083,
    migrations_dir=MIGRATIONS,
    create_app=create_app,
    label="notify",
)

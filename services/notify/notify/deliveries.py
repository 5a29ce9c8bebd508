"""The delivery queue: outgoing messages on external channels (SMS, e-mail, webhooks).

A handler enqueues a row in the consumer's transaction; the row is unique per (event, recipient,
channel), so a redelivered event adds nothing. One worker loop per channel claims due rows
(`FOR UPDATE SKIP LOCKED`, safe with replicas), applies the holds (quiet hours for citizen SMS
unless urgent, per-recipient rate limits), leases the rest, sends them outside any transaction,
and records the outcome: sent; retried with capped exponential backoff; or, after the last
attempt or a permanent refusal, failed - counted, told to the station's leadership, kept for a
manual resend. Each channel has its own loop, so a dead gateway never delays another channel.

The address and text of a message are sealed at rest (the payload); only a blind index of the
address (for the once-only key and the rate limits) is stored in the clear.

If the process dies between the gateway's acceptance and recording "sent", the lease expires and
the message is tried again: the one place where a duplicate can happen. Each attempt carries the
same reference (SMS `ref`, e-mail Message-ID, webhook-id), so gateways and receivers that
deduplicate collapse it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog

from fengqiao.constants import NOTIFY_SOURCE as SOURCE
from fengqiao.constants import STATION_TZ
from fengqiao.outbox import Outbox
from fengqiao.pii import BlindIndex, PiiCipher, Sealed
from notify import db
from notify.channels import Outgoing, PermanentFailure, Sender, TemporaryFailure
from notify.metrics import NotifyMetrics
from notify.policy import Backoff, QuietHours, rate_limited_until
from notify.templates import AUDIENCE_LABELS, CHANNEL_LABELS, Templates

log = structlog.get_logger(__name__)

CHANNELS = ("sms", "email", "webhook")


class Cancelled(Exception):
    """Nobody to send to any more (the webhook subscription was removed)."""


@dataclass(frozen=True)
class Rules:
    backoff: Backoff = field(default_factory=Backoff)
    quiet: QuietHours | None = None
    limits: list[tuple[int, timedelta]] = field(default_factory=list)
    lease: timedelta = timedelta(minutes=2)  # longer than any sender's own timeout
    batch: int = 50
    concurrency: int = 8


def payload_context(row) -> str:
    return f"delivery/{row['event_source']}/{row['event_id']}/{row['channel']}/{row['recipient_key']}"


class DeliveryQueue:
    def __init__(
        self,
        *,
        cipher: PiiCipher,
        index: BlindIndex,
        rules: Rules,
        templates: Templates,
        senders: dict[str, Sender | None],
    ) -> None:
        self.cipher, self.index, self.rules, self.templates = cipher, index, rules, templates
        self.senders = senders  # channel -> adapter, or None when the channel is not configured
        self.metrics: NotifyMetrics | None = None
        self.wake = {channel: asyncio.Event() for channel in CHANNELS}

    def bind(self, metrics: NotifyMetrics) -> None:
        self.metrics = metrics

    def recipient_key(self, channel: str, address: str) -> str:
        return self.index.of(
            address.strip().lower() if channel == "email" else address.strip(), purpose=f"notify/{channel}"
        )

    # -- enqueue (inside a consumer transaction) ---------------------------------------------------

    async def enqueue(
        self,
        conn: asyncpg.Connection,
        outbox: Outbox,
        *,
        event_source: str,
        event_id: str,
        channel: str,
        audience: str,
        recipient_key: str,
        address: str,
        body: str,
        subject: str | None = None,
        template: str,
        tracking_no: str | None,
        station: str | None,
        station_name: str = "",
        station_phone: str | None = None,
        links: dict[str, str] | None = None,
        urgent: bool = False,
        now: datetime | None = None,
    ) -> bool:
        """Queue one message. `station_phone` and `links` (survey_url, track_url) serve the e-mail's
        HTML part, rendered at send time: the links become real links there."""
        row = dict(event_source=event_source, event_id=event_id, channel=channel, recipient_key=recipient_key)
        sealed = self.cipher.seal_json(
            {
                "to": address,
                "subject": subject,
                "body": body,
                "station_name": station_name,
                "station_phone": station_phone,
                "links": links or {},
            },
            context=payload_context(row),
        )
        created = await db.add_delivery(
            conn,
            event_source=event_source,
            event_id=event_id,
            recipient_key=recipient_key,
            channel=channel,
            audience=audience,
            template=template,
            tracking_no=tracking_no,
            station=station,
            payload_kid=sealed.kid,
            payload_enc=sealed.blob,
            urgent=urgent,
            not_before=now,
        )
        if created:
            if self.metrics:
                outbox.after_commit(self.metrics.notifications.labels(channel=channel, outcome="queued").inc)
            outbox.after_commit(self.wake[channel].set)
        return created

    # -- the worker ---------------------------------------------------------------------------------

    async def process_due(self, pool: asyncpg.Pool, channel: str, now: datetime) -> int:
        """Claim, hold or send what is due on `channel` at `now`; the number of rows handled."""
        rules = self.rules
        to_send: list[asyncpg.Record] = []
        async with pool.acquire() as conn, conn.transaction():
            rows = await db.claim_due(conn, channel, now, rules.batch)
            recent = await self._recently_sent(conn, channel, rows, now)
            holds, sending = [], []
            for row in rows:
                hold = self._quiet_hold(row, now) or self._rate_hold(row, now, recent)
                if hold:
                    holds.append((row["id"], *hold))
                    continue
                recent.setdefault(row["recipient_key"], []).append(now)
                sending.append((row["id"], now + rules.lease))
                to_send.append(row)
            if holds:
                await db.defer(conn, holds)
            if sending:
                await db.lease(conn, sending)
        if self.metrics and holds:
            self.metrics.notifications.labels(channel=channel, outcome="deferred").inc(len(holds))
        if to_send:
            limit = asyncio.Semaphore(rules.concurrency)

            async def one(row):
                async with limit:
                    return await self._send(pool, row, now)

            started = time.monotonic()
            results = await asyncio.gather(*(one(r) for r in to_send))
            await self._record_sent(
                pool, [r for r, e in zip(to_send, results, strict=False) if e is None], now, time.monotonic() - started
            )
            for row, error in zip(to_send, results, strict=False):
                if error is not None:
                    await self._record(pool, row, error, now)
        return len(rows)

    def _quiet_hold(self, row, now: datetime) -> tuple[str, datetime] | None:
        if self.rules.quiet is None or row["channel"] != "sms" or row["audience"] != "citizen":
            return None
        if row["urgent"] or row["case_urgent"]:
            return None
        until = self.rules.quiet.release_at(now)
        return ("quiet_hours", until) if until else None

    async def _recently_sent(self, conn, channel: str, rows, now: datetime) -> dict[str, list[datetime]]:
        """When messages went to the batch's recipients within the longest rate-limit window."""
        if not self.rules.limits or not rows:
            return {}
        longest = max(window for _, window in self.rules.limits)
        keys = list({r["recipient_key"] for r in rows if r["audience"] != "subscriber"})
        recent: dict[str, list[datetime]] = {}
        for r in await db.sent_since(conn, channel, keys, now - longest):
            recent.setdefault(r["recipient_key"], []).append(r["sent_at"])
        return recent

    def _rate_hold(self, row, now: datetime, recent: dict) -> tuple[str, datetime] | None:
        if not self.rules.limits or row["audience"] == "subscriber" or (row["audience"] == "staff" and row["urgent"]):
            return None  # bureau systems take what they subscribed to; urgent pages to staff are never held
        until = rate_limited_until(recent.get(row["recipient_key"], []), now, self.rules.limits)
        return ("rate_limited", until) if until else None

    async def _send(self, pool: asyncpg.Pool, row, now: datetime) -> Exception | None:
        sender = self.senders.get(row["channel"])
        if sender is None:
            return PermanentFailure(f"{row['channel']} channel not configured")
        try:
            payload = self.cipher.open_json(
                Sealed(row["payload_kid"], row["payload_enc"]), context=payload_context(row)
            )
            message = await self._outgoing(pool, row, payload)
            if message is None:
                return Cancelled("subscription removed")
            await asyncio.wait_for(sender.send(message), timeout=self.rules.lease.total_seconds() / 2)
            return None
        except (TemporaryFailure, PermanentFailure) as exc:
            return exc
        except TimeoutError:
            return TemporaryFailure(f"{row['channel']} send timed out")
        except Exception as exc:  # a bug or an unforeseen library error: retried, named, never the text
            log.exception("delivery_send_error", channel=row["channel"], delivery_id=row["id"])
            return TemporaryFailure(f"unexpected {type(exc).__name__}")

    async def _outgoing(self, pool: asyncpg.Pool, row, payload: dict) -> Outgoing | None:
        html = secret = None
        if row["channel"] == "email":
            html = self.templates.render(
                "email.html",
                station=row["station"],
                station_name=payload.get("station_name") or "",
                station_phone=payload.get("station_phone"),
                subject=payload.get("subject") or "",
                body=payload["body"],
                survey_url=(payload.get("links") or {}).get("survey_url") or "",
                track_url=(payload.get("links") or {}).get("track_url") or "",
            )
        if row["channel"] == "webhook":
            async with pool.acquire() as conn:
                sub = await db.subscription_secret(conn, row["recipient_key"])
            if sub is None:
                return None
            secret = self.cipher.open(
                Sealed(sub["secret_kid"], sub["secret_enc"]), context=f"webhook/{sub['id']}/secret"
            ).decode()
        return Outgoing(
            delivery_id=row["id"],
            channel=row["channel"],
            recipient=payload["to"],
            subject=payload.get("subject"),
            body=payload["body"],
            html=html,
            secret=secret,
            event_id=row["event_id"],
        )

    async def _record_sent(self, pool: asyncpg.Pool, rows, now: datetime, send_s: float) -> None:
        """`now` is the worker's clock at the claim (sent_at); `send_s` how long the sends took."""
        if not rows:
            return
        async with pool.acquire() as conn:
            await db.mark_sent(conn, [(r["id"], r["attempts"] + 1, now) for r in rows])
        if self.metrics:
            channel = rows[0]["channel"]
            self.metrics.notifications.labels(channel=channel, outcome="sent").inc(len(rows))
            for r in rows:
                self.metrics.latency.labels(channel=channel).observe(
                    max(0.0, (now - r["created_at"]).total_seconds()) + send_s
                )

    async def _record(self, pool: asyncpg.Pool, row, error: Exception, now: datetime) -> None:
        channel, attempts = row["channel"], row["attempts"] + 1
        async with pool.acquire() as conn, conn.transaction():
            if isinstance(error, TemporaryFailure) and not self.rules.backoff.exhausted(attempts):
                await db.retry_later(
                    conn, row["id"], attempts, now + self.rules.backoff.delay(attempts), str(error)[:200]
                )
                outcome = "retried"
                log.warning(
                    "delivery_retry", channel=channel, delivery_id=row["id"], attempts=attempts, error=str(error)[:200]
                )
            elif isinstance(error, Cancelled):
                await db.mark_cancelled(conn, row["id"], attempts, str(error))
                outcome = "cancelled"
            else:
                done = await db.mark_failed(conn, row["id"], attempts, now, str(error)[:200])
                outcome = "failed"
                log.warning(
                    "delivery_failed", channel=channel, delivery_id=row["id"], attempts=attempts, error=str(error)[:200]
                )
                if done and row["audience"] == "citizen" and row["station"]:
                    await self._tell_leaders(conn, row, attempts, str(error)[:200])
        if self.metrics:
            self.metrics.notifications.labels(channel=channel, outcome=outcome).inc()

    async def _tell_leaders(self, conn, row, attempts: int, error: str) -> None:
        """One notice per failed delivery; but while a channel is not configured at all, one notice
        per channel and day (the list of failed deliveries has every one)."""
        station_name = await db.station_name(conn, row["station"])
        params = dict(
            tracking_no=row["tracking_no"] or "",
            audience_label=AUDIENCE_LABELS[row["audience"]],
            channel_label=CHANNEL_LABELS[row["channel"]],
            attempts=str(attempts),
            error=error,
        )
        kind, key, tracking_no = "delivery_failed", f"{row['id']}/failed/{row['resends']}", row["tracking_no"]
        if self.senders.get(row["channel"]) is None:
            day = datetime.now(UTC).astimezone(STATION_TZ).date().isoformat()
            kind, key, tracking_no = "channel_not_configured", f"not-configured/{row['channel']}/{day}", None

        def render(name: str) -> str:
            return self.templates.render(name, station=row["station"], station_name=station_name, **params)

        for leader in await db.station_leaders(conn, row["station"]):
            await db.add_console_notification(
                conn,
                event_source=f"{SOURCE}/deliveries",
                event_id=key,
                recipient_id=leader,
                station=row["station"],
                kind=kind,
                tracking_no=tracking_no,
                title=render(f"console/{kind}.title.txt"),
                body=render(f"console/{kind}.body.txt"),
            )

    # -- housekeeping -----------------------------------------------------------------------------

    async def seal_legacy(self, pool: asyncpg.Pool) -> int:
        """Rows from before the queue kept the address and text in the clear: seal them."""
        sealed = 0
        async with pool.acquire() as conn:
            rows = await db.unsealed_deliveries(conn)
            for row in rows:
                key = self.recipient_key(row["channel"], row["recipient"])
                ctx = dict(row) | {"recipient_key": key}
                s = self.cipher.seal_json(
                    {"to": row["recipient"], "subject": None, "body": row["body"]}, context=payload_context(ctx)
                )
                async with conn.transaction():
                    sealed += await db.seal_delivery(
                        conn, row, recipient_key=key, payload_kid=s.kid, payload_enc=s.blob
                    )
        return sealed

    async def refresh_gauges(self, conn: asyncpg.Connection) -> None:
        rows = await db.queue_counts(conn)
        counts = {(r["channel"], r["status"]): r["n"] for r in rows}
        assert self.metrics is not None, "refresh_gauges runs after bind() (notify's startup)"
        for channel in CHANNELS:
            for state in ("pending", "deferred", "sending"):
                self.metrics.queue.labels(channel=channel, state=state).set(counts.get((channel, state), 0))
            self.metrics.failed.labels(channel=channel).set(counts.get((channel, "failed"), 0))


def utcnow() -> datetime:
    return datetime.now(UTC)

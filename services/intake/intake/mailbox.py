"""The mailbox channel's e-mail boxes: intake's SMTP receiver (aiosmtpd). The suggestion-box slips
and letters that staff type in are intake.slips_api.

Each station's address is its code: mail to `kz01@<any domain>` is feedback for KZ01. A message is
accepted once: a keyed hash of its Message-ID (or, without one, of the message) and the station
form the idempotency key.

The receiver is open to the internet, so every message is treated as hostile: it is parsed in a
worker process under a time limit (intake.mailtext), one message reaches at most
MAILBOX_MAX_STATIONS station mailboxes and MAILBOX_MAX_RECIPIENTS recipients, and each sender is
rate-limited (MAILBOX_SENDER_RATE_LIMIT), because every accepted message sends an acknowledgement
to an address nobody has verified."""

from __future__ import annotations

import asyncio
import hashlib
import re

import asyncpg
import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session
from email_validator import EmailNotValidError, validate_email
from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from fengqiao.constants import INTAKE_SMTP_SOURCE as SMTP_SOURCE
from fengqiao.events import FeedbackSubmitted, Reporter
from fengqiao.outbox import unit_of_work
from fengqiao.pii import BlindIndex, PiiCipher
from fengqiao.runtime import Runtime
from intake import db
from intake.additions import add_to_item, reporter_email
from intake.domain import open_for_additions, reply_text, tracking_numbers_in
from intake.mailtext import MailReader, MailUnreadable
from intake.submissions import AlreadyAccepted, UnknownStation, accept_submission

log = structlog.get_logger(__name__)

MAX_MESSAGE_BYTES = 2 * 1024 * 1024
STATION_CODE = re.compile(r"[A-Z0-9_-]{1,32}")
# One answer for every stored message: a reply added to the reporter's item, a new item, a repeat.
# Naming the item (or saying "added to your item") told anyone who guessed a tracking number and an
# address whether that address is the reporter's; the citizen learns the outcome from the
# acknowledgement e-mail and the tracking page instead.
RECEIVED = "250 OK received"
_RCPT_ATTEMPTS = "fq_rcpt_attempts"  # RCPT commands so far, on an Envelope (message) and a Session


class MailboxSettings(BaseSettings):
    """Limits of the SMTP receiver (environment variables)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    max_stations: int = Field(
        default=1,
        ge=1,
        alias="MAILBOX_MAX_STATIONS",
        description="station mailboxes one message may reach (one submission each)",
    )
    max_recipients: int = Field(
        default=10, ge=1, alias="MAILBOX_MAX_RECIPIENTS", description="RCPT commands per message, refused ones included"
    )
    sender_rate_limit: str = Field(
        default="5/hour;20/day",
        alias="MAILBOX_SENDER_RATE_LIMIT",
        description="messages per sender address (in memory, per replica)",
    )
    parse_timeout_s: float = Field(
        default=5.0,
        gt=0,
        alias="MAILBOX_PARSE_TIMEOUT_S",
        description="time one message may take to parse before it is refused",
    )


def station_of(address: str) -> str:
    return address.rsplit("@", 1)[0].strip().upper()


def reply_address(addresses: list[str]) -> str | None:
    """The one From address in its normalised form, or None: several addresses, none, or one
    email-validator refuses (`a@x.com,b@y.com`, `a@-x`). Such mail is still taken as feedback,
    without a reply address: a citizen's complaint matters more than their mail program, and an
    acknowledgement to a malformed address would only bounce or go to someone else."""
    if len(addresses) != 1:
        return None
    try:
        return validate_email(addresses[0], check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def ingress_key(index: BlindIndex, message_id: str, raw: bytes, station: str) -> str:
    """The idempotency key of a message for a station: a keyed hash of its Message-ID, so it has a
    fixed length (a 10 KB Message-ID no longer fails the unique index) and the Message-ID, which
    often names the sender, does not travel in `received` events."""
    if message_id:
        return f"mid:{index.of(message_id, purpose='mail-message-id')[:40]}:{station}"
    return f"raw:{hashlib.sha256(raw).hexdigest()[:40]}:{station}"


class SenderLimit:
    """Messages per sender in a moving window. Keys are keyed hashes, never addresses."""

    def __init__(self, spec: str, index: BlindIndex) -> None:
        self._rules = parse_many(spec) if spec.strip() else []
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._index = index

    def allow(self, sender: str) -> bool:
        key = self._index.of(sender, purpose="mail-sender")
        return all(self._limiter.hit(rule, "smtp-sender", key) for rule in self._rules)


def sender_key(sender: str | None, peer: str) -> str:
    """Whom the per-sender limit counts: the address without a `+tag` (victim+1@, victim+2@ … are one
    inbox, and each message would send it an acknowledgement from the police), or, for mail without
    any sender, the connecting host (not one bucket that every such mail shares)."""
    if not sender or "@" not in sender:
        return f"peer:{peer}"
    local, _, domain = sender.strip().lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


class MailboxHandler:
    """aiosmtpd handler: accept mail for known stations only, store it as a submission."""

    def __init__(
        self,
        rt: Runtime,
        cipher: PiiCipher,
        index: BlindIndex,
        settings: MailboxSettings | None = None,
        reader: MailReader | None = None,
    ) -> None:
        self.index = index
        self.rt = rt
        self.cipher = cipher
        self.settings = settings or MailboxSettings()
        self.reader = reader or MailReader(timeout_s=self.settings.parse_timeout_s)
        self.senders = SenderLimit(self.settings.sender_rate_limit, index)

    def _refuse(self, code: str, answer: str) -> str:
        self.rt.metrics.rejections.labels("smtp", code).inc()
        return answer

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options):
        # Every RCPT costs a database query: bound them per message, refused ones included.
        # The counters live on aiosmtpd's objects, which do not declare them (hence getattr/setattr).
        attempts: int = getattr(envelope, _RCPT_ATTEMPTS, 0) + 1
        setattr(envelope, _RCPT_ATTEMPTS, attempts)
        # RSET starts a new envelope: the connection has its own, larger bound.
        on_connection: int = getattr(session, _RCPT_ATTEMPTS, 0) + 1
        setattr(session, _RCPT_ATTEMPTS, on_connection)
        if attempts > self.settings.max_recipients or on_connection > 5 * self.settings.max_recipients:
            return self._refuse("too_many_recipients", "452 4.5.3 too many recipients")
        station = station_of(address)
        if not STATION_CODE.fullmatch(station):
            return self._refuse("unknown_mailbox", "550 5.1.1 no such station mailbox")
        stations = {station_of(a) for a in envelope.rcpt_tos}
        if station not in stations and len(stations) >= self.settings.max_stations:
            # One message, one submission (and one acknowledgement): the station it reaches
            # transfers it if another station should handle it.
            return self._refuse(
                "too_many_stations", "550 5.5.3 one station mailbox per message; the station forwards it if needed"
            )
        if station not in stations:
            async with self.rt.pool.acquire() as conn:
                known = await db.station_active(conn, station)
            if not known:
                return self._refuse("unknown_mailbox", "550 5.1.1 no such station mailbox")
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        # aiosmtpd sets original_content (bytes) together with content, which is text only with
        # decode_data=True; the server is built without it.
        assert isinstance(raw, bytes), "SMTP is created without decode_data"
        mail, refusal = await self._read(raw)
        if mail is None:
            return refusal
        sender = reply_address(mail["from_addresses"])
        if sender is None:
            log.info("smtp_no_reply_address", addresses=len(mail["from_addresses"]))
        peer = session.peer[0] if isinstance(session.peer, tuple) and session.peer else "unknown"
        if not self.senders.allow(sender_key(sender or envelope.mail_from, str(peer))):
            return self._refuse("sender_rate_limited", "450 4.7.1 too many messages from this sender, try later")
        subject = mail["subject"] or None
        content = mail["text"] or mail["subject"]
        if not content:
            return self._refuse("empty_message", "550 5.6.0 the message has neither text nor subject")
        try:
            item, refers_to = await self._reply_to(sender, mail["subject"], mail["text"])
            if item is not None:
                added = await self._add_reply(item, raw, mail["message_id"], reply_text(content))
                log.info("smtp_reply_added", added=added)
                return RECEIVED
            accepted = await self._accept(envelope, raw, mail["message_id"], sender, subject, content, refers_to)
        except (ValidationError, ValueError, UnknownStation) as exc:
            return self._refuse("invalid_message", f"550 5.6.0 rejected: {type(exc).__name__}")
        except Exception as exc:  # database down: the sender's server will retry later
            log.warning("smtp_store_failed", error=type(exc).__name__)
            return "451 4.3.0 temporary failure, try again later"
        log.info("smtp_message_accepted", submissions=len(accepted))
        return RECEIVED

    async def _read(self, raw: bytes) -> tuple[dict | None, str]:
        """The parsed message, or None and the SMTP answer refusing it."""
        try:
            return await self.reader.read(raw), ""
        except MailUnreadable as exc:
            if exc.reason == "busy":
                return None, self._refuse("smtp_busy", "451 4.3.2 too busy, try again later")
            return None, self._refuse(
                f"unreadable_{exc.reason}",
                f"554 5.6.0 message cannot be read: {exc.reason}; please send a shorter plain-text message",
            )
        except Exception as exc:  # a parser bug must not become a retry loop of the sender's server
            log.warning("smtp_parse_failed", error=type(exc).__name__)
            return None, self._refuse("unreadable", "554 5.6.0 message cannot be read")

    async def _reply_to(self, sender: str | None, subject: str, text: str) -> tuple[asyncpg.Record | None, str | None]:
        """A reply about the sender's own item: (the open item to add it to, None), or (None, the
        finished item a new one should refer to). Only the reporter's own address counts: mail naming
        a tracking number from any other address is a new item like any other, and says nothing
        about the number it named."""
        if not sender:
            return None, None
        async with self.rt.pool.acquire() as conn:
            for number in tracking_numbers_in(subject, text):
                row = await db.get_submission(conn, number)
                if row is None or reporter_email(self.cipher, row) != sender.strip().lower():
                    continue
                if open_for_additions(row["status"]):
                    return row, None
                return None, number
        return None, None

    async def _add_reply(self, item: asyncpg.Record, raw: bytes, message_id: str, text: str) -> bool:
        """The reply added to the item; False if this message was added before."""
        key = ingress_key(self.index, message_id, raw, item["station"])
        async with unit_of_work(self.rt.pool) as (conn, outbox):
            return await add_to_item(
                conn,
                outbox,
                item,
                cipher=self.cipher,
                channel="mailbox",
                source_key=key,
                text=text,
                answers_request=True,
            )

    async def _accept(
        self,
        envelope: Envelope,
        raw: bytes,
        message_id: str,
        sender: str | None,
        subject: str | None,
        content: str,
        refers_to: str | None = None,
    ) -> list[str]:
        """One submission for each station mailbox the message reached; the tracking numbers of the
        new ones (a message accepted before is skipped)."""
        accepted: list[str] = []
        stations = sorted({station_of(a) for a in envelope.rcpt_tos})[: self.settings.max_stations]
        for station in stations:
            data = FeedbackSubmitted(
                station=station,
                channel="mailbox",
                title=subject,
                content=content,
                reporter=Reporter(email=sender or ""),
            )
            key = ingress_key(self.index, message_id, raw, station)
            async with unit_of_work(self.rt.pool) as (conn, outbox):
                try:
                    receipt = await accept_submission(
                        conn,
                        outbox,
                        data,
                        cipher=self.cipher,
                        index=self.index,
                        ingress_source=SMTP_SOURCE,
                        ingress_id=key,
                    )
                except AlreadyAccepted:
                    continue
                if refers_to:  # the reporter wrote again about a finished item: a new one, linked to it
                    await db.link_submissions(conn, receipt.tracking_no, [refers_to], "follow_up_of_closed")
            self.rt.metrics.feedback_received.labels(station=station, channel="mailbox").inc()
            accepted.append(receipt.tracking_no)
        return accepted


def smtp_receiver(cipher: PiiCipher, index: BlindIndex):
    async def serve_smtp(rt: Runtime) -> None:
        """intake's SMTP receiver for station mailboxes, on SMTP_PORT."""
        loop = asyncio.get_running_loop()
        handler = MailboxHandler(rt, cipher, index)
        await handler.reader.start()
        server = await loop.create_server(
            lambda: SMTP(
                handler,
                data_size_limit=MAX_MESSAGE_BYTES,
                enable_SMTPUTF8=True,
                hostname="fengqiao",
                ident="Fengqiao intake",
            ),
            host=rt.settings.bind_host,
            port=rt.settings.smtp_port,
        )
        log.info("smtp_receiver_listening", port=rt.settings.smtp_port)
        try:
            await asyncio.Event().wait()
        finally:
            server.close()
            await server.wait_closed()
            handler.reader.close()

    return serve_smtp

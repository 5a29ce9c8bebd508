"""The mailbox channel: station e-mail boxes (an SMTP receiver, aiosmtpd) and the suggestion-box
slips and letters that staff type in.

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
import base64
import hashlib
import re
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session
from email_validator import EmailNotValidError, validate_email
from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse, Response
from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fengqiao.constants import INTAKE_SMTP_SOURCE as SMTP_SOURCE
from fengqiao.events import FeedbackSubmitted, Reporter
from fengqiao.http import StaffPrincipal, api_error
from fengqiao.outbox import unit_of_work
from fengqiao.pii import BlindIndex, PiiCipher, Sealed
from fengqiao.runtime import Runtime, RuntimeDep
from intake import db
from intake.deps import CipherDep, IndexDep
from intake.domain import may_see_reporter
from intake.mailtext import MailReader, MailUnreadable
from intake.submissions import AlreadyAccepted, UnknownStation, accept_submission

log = structlog.get_logger(__name__)

MAX_MESSAGE_BYTES = 2 * 1024 * 1024
STATION_CODE = re.compile(r"[A-Z0-9_-]{1,32}")
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
                known = await db.station_exists(conn, station)
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
            accepted = await self._accept(envelope, raw, mail["message_id"], sender, subject, content)
        except (ValidationError, ValueError, UnknownStation) as exc:
            return self._refuse("invalid_message", f"550 5.6.0 rejected: {type(exc).__name__}")
        except Exception as exc:  # database down: the sender's server will retry later
            log.warning("smtp_store_failed", error=type(exc).__name__)
            return "451 4.3.0 temporary failure, try again later"
        log.info("smtp_message_accepted", submissions=len(accepted))
        return "250 OK " + " ".join(accepted) if accepted else "250 OK (already received)"

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

    async def _accept(
        self, envelope: Envelope, raw: bytes, message_id: str, sender: str | None, subject: str | None, content: str
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


# -- suggestion-box slips and letters entered by staff ---------------------------------------------

router = APIRouter(prefix="/api/v1/mailbox", tags=["mailbox"])
MAX_SCAN_BASE64 = 4 * 1024 * 1024  # about 3 MB of image
SCAN_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg", b"%PDF-": "application/pdf"}


class MailboxItem(BaseModel):
    """A slip from the suggestion box or a letter, typed in by the staff member who opened it."""

    model_config = ConfigDict(extra="ignore")

    station: str = Field(min_length=1, max_length=32)
    kind: str = Field(pattern="^(suggestion_box|letter)$")
    content: str = Field(min_length=1, max_length=5000)
    title: str | None = Field(default=None, max_length=200)
    opened_at: datetime
    opened_by: str = Field(min_length=1, max_length=64, description="staff id of who opened the box")
    scan_url: str | None = Field(default=None, max_length=500, description="where the scanned image is kept")
    scan_image_base64: str | None = Field(
        default=None, max_length=MAX_SCAN_BASE64, description="the scanned slip or letter: PNG, JPEG or PDF, base64"
    )
    reporter: Reporter = Field(default_factory=Reporter)

    @field_validator("scan_url")
    @classmethod
    def _a_plain_link(cls, value: str | None) -> str | None:
        """Shown to staff as a link: `javascript:` and `data:` URLs would run in their browser."""
        if value is not None and urlsplit(value.strip()).scheme.lower() not in {"http", "https", "file"}:
            raise ValueError("scan_url must be an http, https or file URL")
        return value

    @field_validator("scan_image_base64")
    @classmethod
    def _an_image(cls, value: str | None) -> str | None:
        if value is not None:
            scan_type(_decode_scan(value))  # raises ValueError for anything else
        return value


def _decode_scan(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise ValueError("not valid base64") from exc


def scan_type(image: bytes) -> str:
    for magic, content_type in SCAN_TYPES.items():
        if image.startswith(magic):
            return content_type
    raise ValueError("the scan must be a PNG, JPEG or PDF file")


@router.post("/items", status_code=202)
async def enter_item(
    item: MailboxItem, rt: RuntimeDep, staff: StaffPrincipal, cipher: CipherDep, index: IndexDep
) -> JSONResponse:
    if not staff.can_see_station(item.station):
        raise api_error(403, "wrong_station", "不能代其他派出所登记。", field="station")
    data = FeedbackSubmitted(
        station=item.station,
        channel="mailbox",
        content=item.content,
        title=item.title,
        occurred_at=item.opened_at,
        reporter=item.reporter,
        external_ref=f"{item.kind}:{item.opened_by}:{item.opened_at.isoformat()}",
    )
    async with unit_of_work(rt.pool) as (conn, outbox):
        if not await db.staff_of_station(conn, item.opened_by, item.station):
            raise api_error(
                422, "unknown_staff", f"{item.station} 没有工号为 {item.opened_by} 的工作人员。", field="opened_by"
            )
        try:
            receipt = await accept_submission(conn, outbox, data, cipher=cipher, index=index)
        except UnknownStation:
            raise api_error(422, "unknown_station", f"未知的派出所代码：{item.station}", field="station") from None
        await db.record_mailbox_item(
            conn,
            tracking_no=receipt.tracking_no,
            kind=item.kind,
            opened_at=item.opened_at,
            opened_by=item.opened_by,
            entered_by=staff.staff_id,
            scan_url=item.scan_url,
        )
        if item.scan_image_base64:
            image = _decode_scan(item.scan_image_base64)
            sealed = cipher.seal(image, context=f"{receipt.tracking_no}/scan")
            await db.store_scan(conn, receipt.tracking_no, scan_type(image), sealed.kid, sealed.blob)
    rt.metrics.feedback_received.labels(station=item.station, channel="mailbox").inc()
    return JSONResponse(
        {"tracking_no": receipt.tracking_no, "access_code": receipt.access_code, "status": "received"}, status_code=202
    )


@router.get("/items/{tracking_no}/scan")
async def get_scan(
    tracking_no: Annotated[str, Path(max_length=32, pattern=r"^[0-9A-Za-z_-]+$")],
    rt: RuntimeDep,
    staff: StaffPrincipal,
    cipher: CipherDep,
) -> Response:
    """The scanned image, for staff of the item's station; every viewing is logged."""
    async with rt.pool.acquire() as conn:
        row = await db.scan(conn, tracking_no[:32])
        if (
            row is None
            or not staff.can_see_station(row["station"])
            or not may_see_reporter(staff.role, row["confidential"])
        ):
            raise api_error(404, "not_found", "没有该扫描件。")
        image = cipher.open(Sealed(row["pii_kid"], row["image_enc"]), context=f"{tracking_no}/scan")
        await db.log_personal_data_access(conn, tracking_no, staff.token_id, staff.staff_id, staff.role)
    # nosniff and a sandbox: a file that passed the magic-number check but is also HTML (a polyglot)
    # must not run as a page of intake's origin; attachment keeps PDFs out of the page context.
    extension = {"image/png": "png", "image/jpeg": "jpg", "application/pdf": "pdf"}.get(row["content_type"], "bin")
    return Response(
        image,
        media_type=row["content_type"],
        headers={
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Content-Disposition": f'attachment; filename="scan-{tracking_no[:32]}.{extension}"',
        },
    )

"""The mailbox channel: station e-mail boxes (an SMTP receiver, aiosmtpd) and the suggestion-box
slips and letters that staff type in.

Each station's address is its code: mail to `kz01@<any domain>` is feedback for KZ01. A message is
accepted once: its Message-ID (or, without one, a hash of it) is the idempotency key."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from datetime import datetime
from typing import Annotated
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr

import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from fengqiao.events import FeedbackSubmitted, PoisonMessage, Reporter
from fengqiao.http import StaffPrincipal, api_error
from fengqiao.outbox import unit_of_work
from fengqiao.pii import BlindIndex, PiiCipher, Sealed
from fengqiao.runtime import Runtime, RuntimeDep
from intake import db
from intake.api import CipherDep
from intake.domain import may_see_reporter
from intake.submissions import AlreadyAccepted, UnknownStation, accept_submission

log = structlog.get_logger(__name__)

MAX_MESSAGE_BYTES = 2 * 1024 * 1024
SMTP_SOURCE = "/fengqiao/intake/smtp"
_TAGS = re.compile(r"<[^>]+>")


def message_text(message: EmailMessage) -> str:
    """The readable text of a message: its text/plain part, else its HTML with tags removed."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    text = part.get_content()
    if part.get_content_type() == "text/html":
        text = _TAGS.sub(" ", text)
    return re.sub(r"[ \t]+", " ", text).strip()


def station_of(address: str) -> str:
    return address.split("@", 1)[0].strip().upper()


def feedback_from_email(raw: bytes, station: str) -> tuple[FeedbackSubmitted, str]:
    """Parse one message for one station; returns the submission and its idempotency key."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    subject = str(message.get("subject", "")).strip()[:200] or None
    body = message_text(message)[:5000]
    _, sender = parseaddr(str(message.get("from", "")))
    message_id = str(message.get("message-id", "")).strip() or hashlib.sha256(raw).hexdigest()
    content = body or subject or ""
    if not content:
        raise PoisonMessage("empty_message", "the message has neither text nor subject")
    data = FeedbackSubmitted(station=station, channel="mailbox", title=subject, content=content,
                             reporter=Reporter(email=sender if "@" in sender else ""))
    return data, f"{message_id}:{station}"


class MailboxHandler:
    """aiosmtpd handler: accept mail for known stations only, store it as a submission."""

    def __init__(self, rt: Runtime, cipher: PiiCipher, index: BlindIndex) -> None:
        self.index = index
        self.rt = rt
        self.cipher = cipher

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options):
        async with self.rt.pool.acquire() as conn:
            known = await db.station_exists(conn, station_of(address))
        if not known:
            self.rt.metrics.rejections.labels("smtp", "unknown_mailbox").inc()
            return "550 5.1.1 no such station mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        accepted: list[str] = []
        try:
            for station in sorted({station_of(a) for a in envelope.rcpt_tos}):
                data, key = feedback_from_email(envelope.original_content or envelope.content, station)
                async with unit_of_work(self.rt.pool) as (conn, outbox):
                    try:
                        receipt = await accept_submission(conn, outbox, data, cipher=self.cipher, index=self.index,
                                                          ingress_source=SMTP_SOURCE, ingress_id=key)
                    except AlreadyAccepted:
                        continue
                self.rt.metrics.feedback_received.labels(station=station, channel="mailbox").inc()
                accepted.append(receipt.tracking_no)
        except PoisonMessage as exc:
            self.rt.metrics.rejections.labels("smtp", exc.reason).inc()
            return f"550 5.6.0 {exc.reason}"
        except (ValueError, UnknownStation) as exc:
            self.rt.metrics.rejections.labels("smtp", "invalid_message").inc()
            return f"550 5.6.0 rejected: {type(exc).__name__}"
        except Exception as exc:  # database down: the sender's server will retry later
            log.warning("smtp_store_failed", error=type(exc).__name__)
            return "451 4.3.0 temporary failure, try again later"
        log.info("smtp_message_accepted", submissions=len(accepted))
        return "250 OK " + " ".join(accepted) if accepted else "250 OK (already received)"


def smtp_receiver(cipher: PiiCipher, index: BlindIndex):
    async def serve_smtp(rt: Runtime) -> None:
        """intake's SMTP receiver for station mailboxes, on SMTP_PORT."""
        loop = asyncio.get_running_loop()
        handler = MailboxHandler(rt, cipher, index)
        server = await loop.create_server(
            lambda: SMTP(handler, data_size_limit=MAX_MESSAGE_BYTES, enable_SMTPUTF8=True, hostname="fengqiao",
                         ident="Fengqiao intake"),
            host=rt.settings.bind_host, port=rt.settings.smtp_port)
        log.info("smtp_receiver_listening", port=rt.settings.smtp_port)
        try:
            await asyncio.Event().wait()
        finally:
            server.close()
            await server.wait_closed()

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
    scan_image_base64: str | None = Field(default=None, max_length=MAX_SCAN_BASE64,
                                          description="the scanned slip or letter: PNG, JPEG or PDF, base64")
    reporter: Reporter = Field(default_factory=Reporter)

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
async def enter_item(request: Request, item: MailboxItem, rt: RuntimeDep, staff: StaffPrincipal,
                     cipher: CipherDep) -> JSONResponse:
    if not staff.can_see_station(item.station):
        raise api_error(403, "wrong_station", "不能代其他派出所登记。", field="station")
    data = FeedbackSubmitted(station=item.station, channel="mailbox", content=item.content, title=item.title,
                             occurred_at=item.opened_at, reporter=item.reporter,
                             external_ref=f"{item.kind}:{item.opened_by}:{item.opened_at.isoformat()}")
    async with unit_of_work(rt.pool) as (conn, outbox):
        try:
            receipt = await accept_submission(conn, outbox, data, cipher=cipher,
                                              index=request.app.state.pii_index)
        except UnknownStation:
            raise api_error(422, "unknown_station", f"未知的派出所代码：{item.station}", field="station")
        await db.record_mailbox_item(conn, tracking_no=receipt.tracking_no, kind=item.kind, opened_at=item.opened_at,
                                     opened_by=item.opened_by, entered_by=staff.staff_id, scan_url=item.scan_url)
        if item.scan_image_base64:
            image = _decode_scan(item.scan_image_base64)
            sealed = cipher.seal(image, context=f"{receipt.tracking_no}/scan")
            await db.store_scan(conn, receipt.tracking_no, scan_type(image), sealed.kid, sealed.blob)
    rt.metrics.feedback_received.labels(station=item.station, channel="mailbox").inc()
    return JSONResponse({"tracking_no": receipt.tracking_no, "access_code": receipt.access_code,
                         "status": "received"}, status_code=202)


@router.get("/items/{tracking_no}/scan")
async def get_scan(tracking_no: Annotated[str, Path(max_length=32, pattern=r"^[0-9A-Za-z_-]+$")], rt: RuntimeDep,
                  staff: StaffPrincipal, cipher: CipherDep) -> Response:
    """The scanned image, for staff of the item's station; every viewing is logged."""
    async with rt.pool.acquire() as conn:
        row = await db.scan(conn, tracking_no[:32])
        if row is None or not staff.can_see_station(row["station"]) or \
                not may_see_reporter(staff.role, row["confidential"]):
            raise api_error(404, "not_found", "没有该扫描件。")
        image = cipher.open(Sealed(row["pii_kid"], row["image_enc"]), context=f"{tracking_no}/scan")
        await db.log_personal_data_access(conn, tracking_no, staff.token_id, staff.staff_id, staff.role)
    return Response(image, media_type=row["content_type"], headers={"Cache-Control": "no-store"})

"""The mailbox channel: station e-mail boxes (an SMTP receiver, aiosmtpd) and the suggestion-box
slips and letters that staff type in.

Each station's address is its code: mail to `kz01@<any domain>` is feedback for KZ01. A message is
accepted once: its Message-ID (or, without one, a hash of it) is the idempotency key."""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr

import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from fengqiao.events import FeedbackSubmitted, PoisonMessage, Reporter
from fengqiao.http import StaffPrincipal, api_error
from fengqiao.outbox import unit_of_work
from fengqiao.pii import PiiCipher
from fengqiao.runtime import Runtime, RuntimeDep
from intake import db
from intake.api import CipherDep
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

    def __init__(self, rt: Runtime, cipher: PiiCipher) -> None:
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
                        receipt = await accept_submission(conn, outbox, data, cipher=self.cipher,
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


def smtp_receiver(cipher: PiiCipher):
    async def serve_smtp(rt: Runtime) -> None:
        """intake's SMTP receiver for station mailboxes, on SMTP_PORT."""
        loop = asyncio.get_running_loop()
        handler = MailboxHandler(rt, cipher)
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
    reporter: Reporter = Field(default_factory=Reporter)


@router.post("/items", status_code=202)
async def enter_item(item: MailboxItem, rt: RuntimeDep, staff: StaffPrincipal, cipher: CipherDep) -> JSONResponse:
    if not staff.can_see_station(item.station):
        raise api_error(403, "wrong_station", "不能代其他派出所登记。", field="station")
    data = FeedbackSubmitted(station=item.station, channel="mailbox", content=item.content, title=item.title,
                             occurred_at=item.opened_at, reporter=item.reporter,
                             external_ref=f"{item.kind}:{item.opened_by}:{item.opened_at.isoformat()}")
    async with unit_of_work(rt.pool) as (conn, outbox):
        try:
            receipt = await accept_submission(conn, outbox, data, cipher=cipher)
        except UnknownStation:
            raise api_error(422, "unknown_station", f"未知的派出所代码：{item.station}", field="station")
        await db.record_mailbox_item(conn, tracking_no=receipt.tracking_no, kind=item.kind, opened_at=item.opened_at,
                                     opened_by=item.opened_by, entered_by=staff.staff_id, scan_url=item.scan_url)
    rt.metrics.feedback_received.labels(station=item.station, channel="mailbox").inc()
    return JSONResponse({"tracking_no": receipt.tracking_no, "access_code": receipt.access_code,
                         "status": "received"}, status_code=202)

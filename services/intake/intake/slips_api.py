"""The mailbox channel's paper side: suggestion-box slips and letters typed in by the staff member
who opened the box, with an optional scan of the slip (stored sealed, shown to the station's staff
only, every view logged)."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from fengqiao.events import FeedbackSubmitted, Reporter
from fengqiao.http import StaffPrincipal, api_error
from fengqiao.outbox import unit_of_work
from fengqiao.pii import Sealed
from fengqiao.runtime import RuntimeDep
from intake import db
from intake.deps import CipherDep, IndexDep
from intake.domain import may_see_reporter
from intake.staff_access import staff_opens
from intake.submissions import UnknownStation, accept_submission

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
        except UnknownStation as exc:
            raise api_error(422, exc.code, exc.message, field="station") from None
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
        item = await db.get_submission(conn, tracking_no[:32]) if row is not None else None
        if (
            row is None
            or item is None
            or not await staff_opens(conn, staff, item)  # kept out of the item: not its slip either
            or not may_see_reporter(staff.role, row["confidential"])
        ):
            raise api_error(404, "not_found", "没有该扫描件。")
        image = cipher.open(Sealed(row["pii_kid"], row["image_enc"]), context=f"{tracking_no}/scan")
        await db.log_personal_data_access(
            conn, tracking_no, staff.token_id, staff.staff_id, staff.role, station=row["station"], action="view_scan"
        )
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

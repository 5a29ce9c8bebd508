"""Notify's staff API: the console inbox (read/unread), failed deliveries with a manual resend,
and template previews."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Path, Query
from jinja2 import TemplateNotFound
from pydantic import BaseModel, Field

from fengqiao.auth import Principal
from fengqiao.http import StaffPrincipal, api_error, iso
from fengqiao.pii import PiiCipher, Sealed, normalise_phone
from fengqiao.runtime import RuntimeDep
from notify import db
from notify.deliveries import payload_context
from notify.deps import CipherDep, QueueDep, TemplatesDep
from notify.templates import STATION_CODE

router = APIRouter(prefix="/api/v1", tags=["inbox"])

# Database ids are bigint: anything outside is no row, not a database error (a 500).
RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]
DeliveryId = Annotated[int, Path(ge=1, le=2**63 - 1)]
# No control characters: PostgreSQL refuses a NUL in text, which would be a 500, not "no such staff".
StaffId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]


@router.get("/inbox")
async def my_inbox(
    rt: RuntimeDep, principal: StaffPrincipal, unread: bool = False, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> dict:
    async with rt.pool.acquire() as conn:
        rows, unread_count = await db.inbox(conn, principal.staff_id, unread_only=unread, limit=limit)
    return {
        "unread": unread_count,
        "notifications": [_notice(r) for r in rows],
    }


def _notice(row) -> dict:
    """A console notice; `withdrawn`: the case was taken from the reader since (reassigned to someone
    else, transferred, merged, closed), `withdrawn_reason` says how: nothing more to do on it."""
    notice = {k: row[k] for k in ("id", "kind", "tracking_no", "title", "body")}
    return notice | {
        "created_at": iso(row["created_at"]),
        "read_at": iso(row["read_at"]),
        "withdrawn": row["withdrawn_at"] is not None,
        "withdrawn_at": iso(row["withdrawn_at"]),
        "withdrawn_reason": row["withdrawn_reason"],
    }


class MarkRead(BaseModel):
    ids: list[RowId] | None = Field(default=None, max_length=500, description="omit to mark everything read")


@router.post("/inbox/read")
async def mark_read(body: MarkRead, rt: RuntimeDep, principal: StaffPrincipal) -> dict:
    async with rt.pool.acquire() as conn:
        changed = await db.mark_read(conn, principal.staff_id, body.ids)
        _, unread_count = await db.inbox(conn, principal.staff_id, limit=1)
    return {"marked": changed, "unread": unread_count}


# -- failed deliveries: shown to the station's leadership, resent or dismissed by hand -------------


async def leadership(principal: StaffPrincipal) -> Principal:
    # A station role without a station leads nothing: it must never fall through to "every station".
    if principal.role not in ("leader", "instructor", "bureau", "admin") or not (
        principal.sees_all_stations or principal.station
    ):
        raise api_error(403, "forbidden", "只有所领导可以处理发送失败的消息。")
    return principal


Leadership = Annotated[Principal, Depends(leadership)]


def mask(channel: str, address: str) -> str:
    """Enough to recognise a contact, not enough to use it."""
    if channel == "sms":
        return address[:-8] + "****" + address[-4:] if len(address) > 8 else "****"
    if channel == "email":
        local, _, domain = address.partition("@")
        return (local[:1] + "***@" + domain) if domain else "***"
    try:  # a webhook URL: its host only (receivers put credentials in user:password@, the path or the query)
        parts = urlsplit(address)
        return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}/…"
    except ValueError:
        return "***"


# What a webhook delivery may say about its failure (notify.channels.WebhookSender). Anything else,
# e.g. a row written before the codes, could tell which internal port answered: it is not shown.
WEBHOOK_ERRORS = frozenset(
    {
        "webhook_unreachable",
        "webhook_rejected",
        "webhook_address_not_allowed",
        "webhook_unresolvable_host",
        "webhook send timed out",
        "subscription removed",
    }
)


def shown_error(channel: str, error: str | None) -> str | None:
    if channel != "webhook" or error is None or error in WEBHOOK_ERRORS:
        return error
    return "webhook_failed"


def _delivery(cipher: PiiCipher, row) -> dict:
    payload = cipher.open_json(Sealed(row["payload_kid"], row["payload_enc"]), context=payload_context(row))
    return {
        "id": row["id"],
        "channel": row["channel"],
        "audience": row["audience"],
        "template": row["template"],
        "tracking_no": row["tracking_no"],
        "station": row["station"],
        "status": row["status"],
        "recipient": mask(row["channel"], payload["to"]),
        "attempts": row["attempts"],
        "last_error": shown_error(row["channel"], row["last_error"]),
        "created_at": iso(row["created_at"]),
        "sent_at": iso(row["sent_at"]),
        "failed_at": iso(row["failed_at"]),
        "next_attempt_at": iso(row["next_attempt_at"]),
        "held_reason": row["held_reason"],
        "resends": row["resends"],
    }


@router.get("/deliveries")
async def list_deliveries(
    rt: RuntimeDep,
    principal: Leadership,
    cipher: CipherDep,
    status: Literal["failed", "deferred", "pending", "sent", "dismissed"] = "failed",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict:
    async with rt.pool.acquire() as conn:
        rows = await db.deliveries(
            conn, all_stations=principal.sees_all_stations, station=principal.station, status=status, limit=limit
        )
    return {"deliveries": [_delivery(cipher, r) for r in rows]}


async def _own_delivery(conn, delivery_id: int, principal: Principal):
    row = await db.delivery(conn, delivery_id)
    if row is None or not (
        principal.sees_all_stations or (principal.station is not None and row["station"] == principal.station)
    ):
        raise api_error(404, "not_found", "没有这条消息。")
    return row


@router.post("/deliveries/{delivery_id}/resend")
async def resend(delivery_id: DeliveryId, rt: RuntimeDep, principal: Leadership, queue: QueueDep) -> dict:
    async with rt.pool.acquire() as conn:
        row = await _own_delivery(conn, delivery_id, principal)
        if not await db.resend(conn, delivery_id, principal.staff_id or principal.token_id):
            raise api_error(409, "not_failed", "只有发送失败的消息可以重发。")
        row = await db.delivery(conn, delivery_id)
    assert row is not None, "_own_delivery found it and deliveries are not deleted"
    queue.wake[row["channel"]].set()
    if queue.metrics:
        queue.metrics.notifications.labels(channel=row["channel"], outcome="resent").inc()
    return _delivery(queue.cipher, row)


@router.post("/deliveries/{delivery_id}/dismiss")
async def dismiss(delivery_id: DeliveryId, rt: RuntimeDep, principal: Leadership, queue: QueueDep) -> dict:
    async with rt.pool.acquire() as conn:
        await _own_delivery(conn, delivery_id, principal)
        if not await db.dismiss(conn, delivery_id, principal.staff_id or principal.token_id):
            raise api_error(409, "not_failed", "只有发送失败的消息可以标记为已处理。")
        row = await db.delivery(conn, delivery_id)
    assert row is not None, "_own_delivery found it and deliveries are not deleted"
    if queue.metrics:
        queue.metrics.notifications.labels(channel=row["channel"], outcome="dismissed").inc()
    return _delivery(queue.cipher, row)


# -- template previews -------------------------------------------------------------------------------


@router.get("/templates")
async def template_names(principal: Leadership, templates: TemplatesDep) -> dict:
    return {"templates": templates.names()}


@router.get("/templates/preview")
async def preview(
    rt: RuntimeDep,
    principal: Leadership,
    templates: TemplatesDep,
    name: Annotated[str, Query(max_length=100)],
    station: Annotated[str | None, Query(max_length=32)] = None,
) -> dict:
    """A template rendered with sample values for a station the caller may see (their own by
    default), or for the deployment (bureau and admin, without `station`)."""
    if name not in templates.names():
        raise api_error(404, "not_found", "没有这个模板。", field="name")
    station = station or principal.station
    station_name = station_phone = None
    if station is not None:
        if STATION_CODE.match(station) and principal.can_see_station(station):
            async with rt.pool.acquire() as conn:
                station_name = await db.known_station_name(conn, station)
                station_phone = await db.station_phone(conn, station)
        if station_name is None:  # unknown, malformed or another station's: all the same to the caller
            raise api_error(404, "not_found", "没有这个派出所。", field="station")
    try:
        text = templates.preview(name, station, station_name, station_phone)
    except TemplateNotFound:
        raise api_error(404, "not_found", "没有这个模板。", field="name") from None
    return {"name": name, "station": station, "text": text}


# -- staff phones for urgent pages (SMS besides the console) --------------------------------------


class Contact(BaseModel):
    phone: str = Field(min_length=3, max_length=40)


async def _may_manage(conn, principal: Principal, staff_id: str) -> None:
    station = await db.staff_station(conn, staff_id)
    own = principal.staff_id is not None and principal.staff_id == staff_id
    leads = (
        principal.role in ("leader", "instructor") and principal.station is not None and station == principal.station
    )
    if station is None or not (own or leads or principal.role == "admin"):
        raise api_error(404, "not_found", "没有这名工作人员。")


@router.put("/staff/{staff_id}/contact")
async def set_contact(
    staff_id: StaffId, body: Contact, rt: RuntimeDep, principal: StaffPrincipal, cipher: CipherDep
) -> dict:
    """The phone urgent matters are also sent to by SMS: by the person themself, their station's
    leadership, or an admin."""
    try:
        phone = normalise_phone(body.phone)
    except ValueError:
        raise api_error(422, "invalid_phone", "请填写正确的手机号码。", field="phone") from None
    sealed = cipher.seal(phone.encode(), context=f"staff/{staff_id}/phone")
    async with rt.pool.acquire() as conn:
        await _may_manage(conn, principal, staff_id)
        await db.set_staff_phone(
            conn,
            staff_id,
            phone_kid=sealed.kid,
            phone_enc=sealed.blob,
            updated_by=principal.staff_id or principal.token_id,
        )
    return {"staff_id": staff_id, "phone": mask("sms", phone)}


@router.delete("/staff/{staff_id}/contact", status_code=204)
async def remove_contact(staff_id: StaffId, rt: RuntimeDep, principal: StaffPrincipal) -> None:
    async with rt.pool.acquire() as conn:
        await _may_manage(conn, principal, staff_id)
        await db.remove_staff_phone(conn, staff_id)

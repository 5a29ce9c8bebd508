"""Intake's HTTP API (DESIGN 4.5): submit feedback and follow it."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Header, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fengqiao.auth import Principal
from fengqiao.events import FeedbackSubmitted
from fengqiao.http import (
    OptionalPrincipal,
    StaffPrincipal,
    api_error,
    check_limit,
    client_address,
    invalid_field,
    rate_limited,
)
from fengqiao.outbox import unit_of_work
from fengqiao.pii import BlindIndex
from fengqiao.runtime import RuntimeDep
from intake import db
from intake.access import AccessLocked, code_opens
from intake.deps import CipherDep, IndexDep
from intake.domain import CHANNELS_NEEDING_TOKEN, READS_DISCLOSURES, STATUS_LABELS, normalise_tracking_no
from intake.staff_access import case_file, citizen_additions, staff_opens
from intake.submissions import UnknownStation, accept_submission, open_receipt, seal_receipt

router = APIRouter(prefix="/api/v1", tags=["feedback"])


# The JSON routes' body limit (enforced before reading by the platform's BodyLimit, see app.py).
MAX_BODY_BYTES = 64 * 1024


async def _feedback_body(request: Request, rt) -> tuple[FeedbackSubmitted, bytes]:
    raw = await request.body()
    try:
        doc = json.loads(raw or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise api_error(400, "invalid_json", "请求体不是有效的 JSON。") from None
    if not isinstance(doc, dict):
        raise api_error(422, "invalid_body", "请求体必须是 JSON 对象。")
    address = (doc.get("location") or {}).get("address") if isinstance(doc.get("location"), dict) else None
    if not doc.get("station") and isinstance(address, str) and address.strip():
        # No station given: route by the address against the stations' jurisdiction names.
        async with rt.pool.acquire() as conn:
            doc["station"] = await db.station_for_address(conn, address[:300])
        if not doc["station"]:
            raise api_error(422, "unknown_station", "无法根据地址确定派出所，请填写 station。", field="station")
    try:
        return FeedbackSubmitted.model_validate(doc), raw
    except ValidationError as exc:
        raise invalid_field(exc.errors()) from None


@router.post("/feedback", status_code=202, dependencies=[rate_limited("submit")])
async def submit_feedback(
    request: Request,
    rt: RuntimeDep,
    principal: OptionalPrincipal,
    cipher: CipherDep,
    index: IndexDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    data, raw = await _feedback_body(request, rt)
    if data.channel in CHANNELS_NEEDING_TOKEN and principal is None:
        raise api_error(401, "token_required", f"渠道 {data.channel} 需要工作人员或系统令牌。", field="channel")
    if principal is not None and not principal.may_file_for(data.station):
        raise api_error(403, "wrong_station", "不能代其他派出所登记。", field="station")

    # Anonymous callers each get their own scope (a keyed hash of their address): one shared scope let
    # anyone who sent the same body with the same key read the first caller's access code.
    scope = principal.token_id if principal else "public:" + index.of(client_address(request), purpose="idempotency")
    request_hash = hashlib.sha256(raw).hexdigest()
    async with unit_of_work(rt.pool) as (conn, outbox):
        if idempotency_key:
            previous = await db.lookup_idempotent(conn, scope, idempotency_key)
            if previous is not None:
                if previous["request_hash"] != request_hash:
                    raise api_error(
                        422, "idempotency_key_reused", "该 Idempotency-Key 已用于不同的请求。", field="Idempotency-Key"
                    )
                return JSONResponse(
                    open_receipt(cipher, scope, idempotency_key, json.loads(previous["response"])), status_code=202
                )
        try:
            accepted = await accept_submission(
                conn,
                outbox,
                data,
                cipher=cipher,
                index=index,
                publish_refs=principal is not None and principal.role == "integration",
            )
        except UnknownStation as exc:
            raise api_error(422, exc.code, exc.message, field="station") from None
        body = {"tracking_no": accepted.tracking_no, "access_code": accepted.access_code, "status": "received"}
        if idempotency_key:
            await db.store_idempotent(
                conn, scope, idempotency_key, request_hash, seal_receipt(cipher, scope, idempotency_key, body)
            )
    rt.metrics.feedback_received.labels(station=accepted.station, channel=accepted.channel).inc()
    return JSONResponse(body, status_code=202)


@router.get("/feedback/{tracking_no}", dependencies=[rate_limited("track")])
async def get_feedback(
    request: Request,
    tracking_no: str,
    rt: RuntimeDep,
    principal: OptionalPrincipal,
    cipher: CipherDep,
    index: IndexDep,
    x_access_code: Annotated[str | None, Header(max_length=64)] = None,
) -> dict:
    """The item's status and timeline (citizen with X-Access-Code, or staff). Staff of the station
    also read what the citizen wrote (`title`, `content`, `address`) and who they are (`reporter`),
    personal data masked: `POST .../reveal` with a reason shows it as written, and is logged."""
    tracking_no = normalise_tracking_no(tracking_no)
    if len(tracking_no) > 32:
        raise _not_found()
    async with rt.pool.acquire() as conn:
        row = await db.get_submission(conn, tracking_no)
        if row is None:
            raise _not_found()
        staff_view = await staff_opens(conn, principal, row)
        if not staff_view and not await _access_code_opens(request, conn, index, row, principal, x_access_code):
            raise _not_found()
        timeline = await db.get_timeline(conn, tracking_no)
        assignee = await db.staff_name(conn, row["assignee_id"]) if staff_view and row["assignee_id"] else None
    words = (
        case_file(cipher, principal, row, reveal=False)
        if staff_view and principal is not None  # implied by staff_view; stated for mypy
        else {"title": None, "content": None, "address": None, "reporter": None}
    )
    return {
        "tracking_no": row["tracking_no"],
        "status": row["status"],
        "status_label": STATUS_LABELS.get(row["status"], row["status"]),
        "station": row["station"],
        "channel": row["channel"] if staff_view else None,
        "type": row["type"],
        "category": row["category"],
        "urgency": row["urgency"] if staff_view else None,
        "assignee": assignee,
        # Staff only (a confidential tip-off's reporter: the station's leadership only), masked.
        **words,
        "timeline": [{"at": t["at"].isoformat(), "status": t["status"], "note": t["note"]} for t in timeline],
    }


def _not_found() -> HTTPException:
    return api_error(404, "not_found", "未找到该编号，或查询码不正确。")


class RevealIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500, description="why the personal data is needed (logged)")


@router.post("/feedback/{tracking_no}/reveal")
async def reveal_feedback(
    tracking_no: Annotated[str, Path(max_length=32, pattern=r"^[0-9A-Za-z_-]+$")],
    body: RevealIn,
    rt: RuntimeDep,
    staff: StaffPrincipal,
    cipher: CipherDep,
) -> dict:
    """What the citizen wrote and who they are, unmasked, for staff who open the item, with what
    they added later (`additions`: tracking page, e-mail reply, follow-up call; mediation's case
    detail shows those masked); the reveal and its reason go to the station's disclosure log.
    Anyone else: 404."""
    if not body.reason.strip():
        raise api_error(422, "missing_reason", "请说明查看个人信息的理由。", field="reason")
    tracking_no = normalise_tracking_no(tracking_no)
    async with rt.pool.acquire() as conn:
        row = await db.get_submission(conn, tracking_no)
        if row is None or not await staff_opens(conn, staff, row):
            raise _not_found()
        words = case_file(cipher, staff, row, reveal=True)
        added = citizen_additions(cipher, row["tracking_no"], await db.additions(conn, tracking_no))
        await db.log_personal_data_access(
            conn,
            tracking_no,
            staff.token_id,
            staff.staff_id,
            staff.role,
            station=row["station"],
            action="reveal",
            reason=body.reason.strip(),
        )
    return {"tracking_no": tracking_no, **words, "additions": added}


@router.get("/disclosures")
async def list_disclosures(
    rt: RuntimeDep,
    staff: StaffPrincipal,
    station: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    tracking_no: Annotated[str | None, Query(max_length=32, pattern=r"^[0-9A-Za-z_-]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict:
    """The station's disclosure log, newest first: who revealed an item's personal data and why,
    who viewed a scanned slip, who was refused an item they are kept out of. The station's
    leadership (their own station) and bureau supervisors (any, or `station`)."""
    if staff.role not in READS_DISCLOSURES or (staff.staff_id is None and not staff.sees_all_stations):
        raise api_error(403, "forbidden", "只有所领导和分局可以查看个人信息查阅记录。")
    if station is not None and not staff.can_see_station(station):
        raise api_error(404, "not_found", "未找到该派出所。")
    scope = station if staff.sees_all_stations else staff.station
    number = normalise_tracking_no(tracking_no) if tracking_no else None
    async with rt.pool.acquire() as conn:
        rows = await db.disclosures(conn, scope, number, limit, reader=staff.staff_id)
    return {"entries": [{**dict(r), "at": r["at"].isoformat()} for r in rows]}


async def _access_code_opens(
    request: Request,
    conn: asyncpg.Connection,
    index: BlindIndex,
    row: asyncpg.Record,
    principal: Principal | None,
    access_code: str | None,
) -> bool:
    """Whether the access code opens the item; 429 while the item is locked after wrong codes."""
    if principal is not None:  # a token is no licence to guess codes: counted like anyone's
        check_limit(request, "track")
    try:
        return await code_opens(conn, index, row, access_code)
    except AccessLocked as exc:
        locked = api_error(
            429,
            "locked",
            f"查询码错误次数过多，该编号已暂时锁定，请 {exc.retry_after_s // 60 + 1} 分钟后再试，或致电派出所查询。",
        )
        locked.headers = {"Retry-After": str(exc.retry_after_s)}
        raise locked from None

"""Intake's HTTP API (DESIGN 4.5): submit feedback and follow it."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from fengqiao.auth import Principal
from fengqiao.events import FeedbackSubmitted
from fengqiao.http import OptionalPrincipal, api_error, check_limit, client_address, invalid_field, rate_limited
from fengqiao.outbox import unit_of_work
from fengqiao.pii import BlindIndex, PiiCipher, Sealed
from fengqiao.runtime import RuntimeDep
from intake import db
from intake.access import AccessLocked, code_opens
from intake.deps import CipherDep, IndexDep
from intake.domain import (
    CHANNELS_NEEDING_TOKEN,
    STATUS_LABELS,
    may_open_confidential,
    may_see_reporter,
    normalise_tracking_no,
)
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
        except UnknownStation:
            raise api_error(422, "unknown_station", f"未知的派出所代码：{data.station}", field="station") from None
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
    not_found = api_error(404, "not_found", "未找到该编号，或查询码不正确。")
    tracking_no = normalise_tracking_no(tracking_no)
    if len(tracking_no) > 32:
        raise not_found
    async with rt.pool.acquire() as conn:
        row = await db.get_submission(conn, tracking_no)
        if row is None:
            raise not_found
        staff_view = await _staff_view(conn, principal, row)
        if not staff_view and not await _access_code_opens(request, conn, index, row, principal, x_access_code):
            raise not_found
        timeline = await db.get_timeline(conn, tracking_no)
        assignee = await db.staff_name(conn, row["assignee_id"]) if staff_view and row["assignee_id"] else None
        reporter = None
        if (
            staff_view
            and principal is not None  # implied by staff_view; stated for mypy
            and row["reporter_enc"] is not None
            and may_see_reporter(principal.role, row["confidential"])
        ):
            reporter = await _open_reporter(conn, cipher, principal, row, tracking_no)
    return {
        "tracking_no": row["tracking_no"],
        "status": row["status"],
        "status_label": STATUS_LABELS.get(row["status"], row["status"]),
        "station": row["station"],
        "type": row["type"],
        "category": row["category"],
        "urgency": row["urgency"] if staff_view else None,
        "assignee": assignee,
        # Staff only, and for a confidential tip-off (举报) the station's leadership only; every
        # disclosure is logged.
        "reporter": reporter,
        "timeline": [{"at": t["at"].isoformat(), "status": t["status"], "note": t["note"]} for t in timeline],
    }


async def _staff_view(conn: asyncpg.Connection, principal: Principal | None, row: asyncpg.Record) -> bool:
    """Whether the caller sees the item as its station's staff (no access code needed)."""
    staff_view = principal is not None and principal.is_staff and principal.can_see_station(row["station"])
    if (
        staff_view
        and principal is not None  # implied by staff_view; stated for mypy
        and row["confidential"]
        and not may_open_confidential(
            principal.role, await db.is_confidential_handler(conn, principal.staff_id, row["station"])
        )
    ):
        staff_view = False  # and without the access code: not found, as in mediation and triage
    return staff_view


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


async def _open_reporter(
    conn: asyncpg.Connection, cipher: PiiCipher, principal: Principal, row: asyncpg.Record, tracking_no: str
) -> dict:
    """The reporter's identity, opened for staff; every disclosure is logged."""
    reporter = cipher.open_json(Sealed(row["pii_kid"], row["reporter_enc"]), context=f"{tracking_no}/reporter")
    reporter |= {"anonymous": row["anonymous"], "confidential": row["confidential"]}
    await db.log_personal_data_access(conn, tracking_no, principal.token_id, principal.staff_id, principal.role)
    return reporter

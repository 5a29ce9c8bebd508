"""The hotline channel: call records posted by call-centre software (CTI)."""

from __future__ import annotations

from datetime import datetime

import asyncpg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, field_validator, model_validator

from fengqiao.auth import Principal
from fengqiao.events import FeedbackSubmitted, Location, Reporter
from fengqiao.http import OptionalPrincipal, api_error, invalid_field
from fengqiao.outbox import unit_of_work
from fengqiao.pii import normalise_phone
from fengqiao.runtime import RuntimeDep
from intake import db
from intake.additions import add_to_item
from intake.deps import CipherDep, IndexDep
from intake.domain import CLOSED_FOR_ADDITIONS, may_open_confidential, normalise_tracking_no, open_for_additions
from intake.staff_access import staff_opens
from intake.submissions import UnknownStation, accept_submission

router = APIRouter(prefix="/api/v1/hotline", tags=["hotline"])


class HotlineCall(BaseModel):
    """One call as the CTI reports it. `call_id` is the idempotency key."""

    model_config = ConfigDict(extra="ignore")

    call_id: str = Field(min_length=1, max_length=100)
    station: str = Field(min_length=1, max_length=32)
    caller_number: str = Field(default="", max_length=40, description="withheld numbers: empty")
    line: str | None = Field(default=None, max_length=50)
    operator: str | None = Field(default=None, max_length=50, description="the operator's id, not a name")
    started_at: datetime
    ended_at: datetime | None = None
    summary: str = Field(min_length=1, max_length=5000, description="the operator's summary of the call")
    recording_url: HttpUrl | None = None
    caller_name: str = Field(default="", max_length=100)
    anonymous: bool = False
    confidential: bool = False
    address: str = Field(default="", max_length=300)
    tracking_no: str | None = Field(
        default=None,
        max_length=32,
        description="the tracking number the caller gives: the call is added to that item if it is "
        "this station's and still open (a finished one gets a new item referring to it)",
    )

    @field_validator("caller_number")
    @classmethod
    def _e164(cls, value: str) -> str:
        return normalise_phone(value) if value.strip() else ""

    @model_validator(mode="after")
    def _ordered(self) -> HotlineCall:
        if self.ended_at is not None and self.ended_at < self.started_at:
            raise ValueError("ended_at is before started_at")
        return self


@router.post("/calls", status_code=202)
async def record_call(
    request: Request, rt: RuntimeDep, principal: OptionalPrincipal, cipher: CipherDep, index: IndexDep
) -> JSONResponse:
    """Record a hotline call as a submission, or add it to the open item it follows up (the
    tracking number the caller gave, else an open item the same number called about): the answer
    says which (`added_to`). The same `call_id` again returns the same tracking number and creates
    nothing; earlier calls from the same number are linked."""
    if principal is None:
        raise api_error(401, "token_required", "需要工作人员或系统令牌。")
    call = await _read_call(request, principal)
    caller_index = index.of(call.caller_number, purpose="phone") if call.caller_number else None
    async with unit_of_work(rt.pool) as (conn, outbox):
        existing = await db.hotline_call(conn, call.call_id)
        if existing is not None:
            if existing["station"] != call.station or not principal.may_file_for(existing["station"]):
                # Another station's call: saying which item it became would leak its tracking number.
                raise api_error(409, "call_id_taken", "该通话编号已被其他派出所登记。", field="call_id")
            repeat = {"tracking_no": existing["tracking_no"], "status": "duplicate"}
            if existing["added_to_item"]:
                repeat["added_to"] = existing["tracking_no"]
            return JSONResponse(repeat, status_code=200)
        item, refers_to = await _follow_up_of(conn, call, caller_index, principal)
        if item is not None:
            # A follow-up about an open item: a note on it for the officer, not a new item (or dispute).
            await add_to_item(
                conn,
                outbox,
                item,
                cipher=cipher,
                channel="hotline",
                source_key=call.call_id,
                text=call.summary,
                answers_request=False,
            )
            await _store_call(conn, call, item["tracking_no"], caller_index, added_to_item=True)
            return JSONResponse(
                {"tracking_no": item["tracking_no"], "status": "added", "added_to": item["tracking_no"]},
                status_code=202,
            )
        data = _submission(call, refers_to)
        try:
            # The call-centre system matches its call id; a staff member typing a call in is no such system.
            accepted = await accept_submission(
                conn, outbox, data, cipher=cipher, index=index, publish_refs=principal.role == "integration"
            )
        except UnknownStation as exc:
            raise api_error(422, exc.code, exc.message, field="station") from None
        earlier = await _earlier_calls(conn, caller_index, call, principal) if caller_index else []
        await _store_call(conn, call, accepted.tracking_no, caller_index)
        if refers_to:  # first: the finished item the caller named is linked as what this follows up
            await db.link_submissions(conn, accepted.tracking_no, [refers_to], "follow_up_of_closed")
        if earlier:
            await db.link_submissions(conn, accepted.tracking_no, earlier, "same_caller")
    rt.metrics.feedback_received.labels(station=accepted.station, channel="hotline").inc()
    return JSONResponse(
        {
            "tracking_no": accepted.tracking_no,
            "access_code": accepted.access_code,
            "status": "received",
            "earlier_calls": earlier,
            "refers_to": refers_to,
        },
        status_code=202,
    )


async def _read_call(request: Request, principal: Principal) -> HotlineCall:
    """The call from the request body, if the caller may file it for its station."""
    raw = await request.body()
    try:
        call = HotlineCall.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise invalid_field(exc.errors()) from None
    if not principal.may_file_for(call.station):
        raise api_error(403, "wrong_station", "不能代其他派出所登记。", field="station")
    return call


async def _follow_up_of(
    conn: asyncpg.Connection, call: HotlineCall, caller_index: str | None, principal: Principal
) -> tuple[asyncpg.Record | None, str | None]:
    """The open item this call follows up (by the tracking number the caller gave, else by earlier
    calls from the same number to this station), or None and the finished item of this station the
    given number names (a new item refers to it). Another station's number, or one that does not
    exist, is ignored alike: the answer must not tell which numbers exist elsewhere."""
    if call.tracking_no:
        row = await db.get_submission(conn, normalise_tracking_no(call.tracking_no))
        if row is not None and row["station"] == call.station and await _may_join(conn, principal, row):
            if open_for_additions(row["status"]):
                return row, None
            return None, row["tracking_no"]
    if caller_index is None:
        return None, None
    item = await db.open_item_of_caller(
        conn,
        caller_index,
        call.station,
        sorted(CLOSED_FOR_ADDITIONS),
        include_confidential=await _sees_confidential(conn, call, principal),
    )
    return (item if item is not None and await _may_join(conn, principal, item) else None), None


async def _may_join(conn: asyncpg.Connection, principal: Principal, row: asyncpg.Record) -> bool:
    """Whether a staff member posting the call may join it to the item `row` (or name it): only if
    they may open it (intake's staff view: not kept out of it, not a confidential tip-off they may
    not see, settled). Otherwise the officer a complaint names would learn its tracking number from
    `added_to` and write into the complaint against him; the call becomes a new item instead, and
    nothing names the old one. A refusal is in the disclosure log. The call-centre system
    (integration token) is nobody and is checked by station (and confidentiality) only."""
    return not principal.is_staff or await staff_opens(conn, principal, row)


async def _sees_confidential(conn: asyncpg.Connection, call: HotlineCall, principal: Principal) -> bool:
    return principal.is_staff and may_open_confidential(
        principal.role, await db.is_confidential_handler(conn, principal.staff_id, call.station)
    )


def _submission(call: HotlineCall, refers_to: str | None = None) -> FeedbackSubmitted:
    """The call as a hotline submission: the operator's summary is its content (naming the finished
    item it follows up, if any)."""
    return FeedbackSubmitted(
        station=call.station,
        channel="hotline",
        content=f"（来电涉及已办结事项 {refers_to}）{call.summary}"[:5000] if refers_to else call.summary,
        occurred_at=call.started_at,
        external_ref=call.call_id,
        location=Location(address=call.address),
        reporter=Reporter(
            name=call.caller_name,
            phone=call.caller_number,
            anonymous=call.anonymous,
            confidential=call.confidential,
        ),
    )


async def _earlier_calls(
    conn: asyncpg.Connection, caller_index: str, call: HotlineCall, principal: Principal
) -> list[str]:
    """The earlier items from the same number at this station; confidential ones, and for staff
    any they may not open (a complaint naming them), only for those who may open them."""
    numbers = await db.earlier_calls_from(
        conn, caller_index, call.station, include_confidential=await _sees_confidential(conn, call, principal)
    )
    if not principal.is_staff:
        return numbers
    rows = [await db.get_submission(conn, n) for n in numbers]
    return [r["tracking_no"] for r in rows if r is not None and await staff_opens(conn, principal, r)]


async def _store_call(
    conn: asyncpg.Connection,
    call: HotlineCall,
    tracking_no: str,
    caller_index: str | None,
    *,
    added_to_item: bool = False,
) -> None:
    """The call record (line, operator, times, recording) beside the item it became or was added to."""
    await db.record_hotline_call(
        conn,
        call_id=call.call_id,
        tracking_no=tracking_no,
        caller_index=caller_index,
        line=call.line,
        operator=call.operator,
        started_at=call.started_at,
        ended_at=call.ended_at,
        recording_url=str(call.recording_url) if call.recording_url else None,
        added_to_item=added_to_item,
    )

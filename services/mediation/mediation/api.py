"""Mediation's staff JSON API (the console's backend): cases, their clocks, classification
corrections, the audit trail and the station rates. The case commands are in commands_api.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Annotated, Literal

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from fengqiao.auth import Principal
from fengqiao.events import CaseStatus, Category, Channel, RequestType, Urgency
from fengqiao.http import AuthoriseFirstRoute, StaffPrincipal, api_error, iso
from fengqiao.runtime import Runtime, RuntimeDep
from fengqiao.taxonomy import STATUS_LABELS
from mediation import additions, cases, db
from mediation.access import citizen_words
from mediation.commands_api import unchanged_since
from mediation.deps import TRACKING_NO_PATTERN, CipherDep, CurrentActor, TrackingNo, VisibleCase
from mediation.lifecycle import Actor, Rejected, review_label
from mediation.unit import audit, audit_refusal, staff_unit

router = APIRouter(prefix="/api/v1", tags=["cases"], route_class=AuthoriseFirstRoute)

# The HTTP status of a refused command (Rejected.code); anything else is a 422.
_STATUS_FOR_CODE = {
    "not_found": 404,
    "forbidden": 403,
    "not_your_case": 403,
    "illegal_transition": 409,
    "same_handler": 409,
    "excluded": 403,
    "same_assignee": 409,
    "illegal_extension": 409,
    "followups_pending": 409,
    "holder_excluded": 409,
    "already_excluded": 409,
    "not_excluded": 404,
    "not_waiting": 409,
}
LEADERSHIP_AND_BUREAU = frozenset({"leader", "instructor", "bureau", "admin"})


def refused(exc: Rejected) -> HTTPException:
    """A refused command as an HTTP error (registered for every route in app.py)."""
    return api_error(_STATUS_FOR_CODE.get(exc.code, 422), exc.code, exc.message)


def _may_extend(case: VisibleCase, actor: CurrentActor) -> None:
    """Extensions are the leadership's (checked before the body is read)."""
    if not actor.leads:
        raise Rejected("forbidden", "延期须经所领导批准。")


def _may_correct(case: VisibleCase, actor: CurrentActor) -> None:
    """The holder or the leadership correct a classification (checked before the body is read)."""
    if actor.staff_id != case.assignee_id and not actor.leads:
        raise Rejected("not_your_case", "只有承办人或所领导可以更正分类。")


class ExtendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    due_at: datetime
    reason: str = Field(min_length=1, max_length=1000)


class ClassificationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: RequestType | None = None
    category: Category | None = None
    urgency: Urgency | None = None
    reason: str = Field(min_length=1, max_length=500)


# The officer's queue: what `GET /cases` filters by, documented in the OpenAPI.
AssigneeQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=64,
        pattern=r"^[0-9A-Za-z_-]+$",
        description="`me` (the signed-in staff member) or a staff id of the station",
    ),
]
CaseSort = Literal["due", "-due", "submitted_at", "-submitted_at", "assigned_at", "-assigned_at"]


@router.get("/cases")
async def list_cases(
    rt: RuntimeDep,
    principal: StaffPrincipal,
    assignee: AssigneeQuery = None,
    status: Annotated[list[CaseStatus] | None, Query(description="one or more; any of them")] = None,
    type_: Annotated[RequestType | None, Query(alias="type")] = None,
    category: Category | None = None,
    urgency: Urgency | None = None,
    channel: Annotated[Channel | None, Query(description="the channel the item came in by")] = None,
    overdue: Annotated[bool | None, Query(description="true: a running clock is past its due time")] = None,
    flagged: Annotated[
        bool | None,
        Query(
            description="true: flagged for the leader: to reassign (e.g. the holder left the station) or to check "
            "a classification triage was unsure of (`assignment_reason` review:low_confidence, 请核对分类)"
        ),
    ] = None,
    since: Annotated[date | None, Query(description="submitted on or after this day (Beijing time)")] = None,
    until: Annotated[date | None, Query(description="submitted on or before this day (Beijing time)")] = None,
    sort: Annotated[CaseSort, Query(description="`due`: the running deadline, soonest first")] = "due",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict:
    """The station's cases (bureau: all), one page of them with the `total` matching, soonest
    acceptance or resolution deadline first: `assignee=me` is the officer's own queue."""
    if since and until and until < since:
        raise api_error(422, "invalid_field", "截止日期不能早于开始日期。", field="until")
    station = None if principal.sees_all_stations else principal.station
    query = db.cases.CaseQuery(
        statuses=tuple(status) if status else None,
        type=type_,
        category=category,
        urgency=urgency,
        channel=channel,
        overdue=overdue,
        flagged=flagged,
        since=since,
        until=until,
        sort=sort,
        limit=limit,
        offset=offset,
    )
    async with staff_unit(rt.pool, principal) as (conn, _):
        if assignee is not None:
            query = replace(query, assignee_id=await _assignee(conn, principal, assignee))
        rows = await db.cases.list_cases(conn, station, query)
        total = await db.cases.count_cases(conn, station, query)
    more = offset + len(rows) < total
    return {
        "cases": [{k: iso(v) for k, v in dict(r).items()} for r in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_offset": offset + len(rows) if more else None,
    }


async def _assignee(conn: asyncpg.Connection, principal: Principal, assignee: str) -> str:
    """`me`, or a staff member of the reader's station (any station for bureau)."""
    if assignee == "me":
        if not principal.staff_id:
            raise api_error(422, "invalid_field", "该令牌不属于工作人员本人，不能使用 assignee=me。", field="assignee")
        return principal.staff_id
    staff = await db.cases.staff_station(conn, assignee)
    if staff is None or not principal.can_see_station(staff["station"]):
        raise api_error(422, "invalid_field", "承办人不是本所的工作人员。", field="assignee")
    return assignee


@router.get("/cases/{tracking_no}")
async def get_case(tracking_no: TrackingNo, rt: RuntimeDep, principal: StaffPrincipal, cipher: CipherDep) -> dict:
    """A case with its history, its clocks (original and current deadlines, misses, time suspended
    waiting for the citizen), the channel, what the citizen wrote (`words`: title, content, address;
    personal data masked) and what the citizen added to it since."""
    async with staff_unit(rt.pool, principal) as (conn, _):
        row = await db.cases.get_case(conn, tracking_no)
        if row is not None and principal.can_see_station(row["station"]):
            steps = await db.cases.history(conn, tracking_no)
            clock_rows = await db.clocks.clocks(conn, tracking_no)
            words = citizen_words(cipher, tracking_no, await db.access.case_file(conn, tracking_no))
            added = await db.additions.additions(conn, tracking_no)
            await audit(conn, principal, "view_case", tracking_no, row["station"])
    if row is None or not principal.can_see_station(row["station"]):
        await audit_refusal(rt.pool, principal, tracking_no)
        raise api_error(404, "not_found", "未找到该事项。")
    waiting = next((c["suspended_at"] for c in clock_rows if c["clock"] == "resolve" and not c["done_at"]), None)
    return {
        **{k: iso(v) for k, v in dict(row).items()},
        "status_label": STATUS_LABELS.get(row["status"], row["status"]),
        # triage was not sure of the type or category: the leadership checks them (issue 14)
        "review_label": review_label(row["assignment_reason"], row["flagged"]),
        "words": words,
        # 等待群众补充材料: since when the resolution clock is suspended (null: it runs)
        "waiting_for_citizen_since": iso(waiting),
        "citizen_additions": additions.opened(added, tracking_no, cipher),
        "reopen_reason": _reopen_reason(steps),
        "history": [{k: iso(v) for k, v in dict(s).items()} for s in steps],
        "clocks": [{k: iso(v) for k, v in dict(c).items() if k != "tracking_no"} for c in clock_rows],
    }


def _reopen_reason(steps: list) -> str | None:
    """Why the case was last reopened (the citizen's dissatisfaction, or the leader's reason), shown
    to whoever handles it again."""
    reopened = [s["reason"] for s in steps if s["event"] == "reopened"]
    return reopened[-1] if reopened else None


@router.post("/cases/{tracking_no}/clocks/{clock}/extend", dependencies=[Depends(_may_extend)])
async def extend_clock(
    tracking_no: TrackingNo,
    clock: Literal["accept", "resolve", "visit"],
    body: ExtendIn,
    rt: RuntimeDep,
    principal: StaffPrincipal,
    actor: CurrentActor,
) -> dict:
    """Leader-approved extension with a reason; the original deadline stays on the clock."""
    async with staff_unit(rt.pool, principal) as (conn, _):
        await cases.extend(
            conn,
            tracking_no=tracking_no,
            actor=actor,
            clock=clock,
            due_at=body.due_at,
            reason=body.reason,
            now=datetime.now(UTC),
        )
        await audit(conn, principal, "extend_clock", tracking_no, principal.station, f"{clock} -> {body.due_at}")
    return {"tracking_no": tracking_no, "clock": clock, "due_at": body.due_at.isoformat()}


@router.get("/audit")
async def audit_trail(
    rt: RuntimeDep,
    principal: StaffPrincipal,
    tracking_no: Annotated[str | None, Query(max_length=64, pattern=TRACKING_NO_PATTERN)] = None,
    limit: int = 200,
) -> dict:
    """Who viewed and who changed what (leadership of the station, bureau and admin)."""
    if principal.role not in LEADERSHIP_AND_BUREAU:
        raise api_error(403, "forbidden", "只有所领导和分局可以查看审计记录。")
    async with staff_unit(rt.pool, principal) as (conn, _):
        rows = await db.cases.audit_entries(conn, tracking_no, min(max(limit, 1), 1000))
    return {"entries": [{k: iso(v) for k, v in dict(r).items()} for r in rows]}


@router.get("/stations/{station}/rates")
async def station_rates(station: str, rt: RuntimeDep, principal: StaffPrincipal, days: int = 30) -> dict:
    """The station's rates over the last `days` days: response (accepted on time), resolution,
    on-time resolution and satisfaction (回访满意率), with the counts behind them."""
    if not principal.can_see_station(station):
        raise api_error(404, "not_found", "未找到该派出所。")
    if not 1 <= days <= 366:
        raise api_error(422, "invalid_field", "days 须在 1 到 366 之间。", field="days")
    async with staff_unit(rt.pool, principal) as (conn, _):
        rows = await db.clocks.station_rates(conn, datetime.now(UTC), days)
    row = next((r for r in rows if r["station"] == station), None)
    rates = {
        k: (round(float(row[k]), 4) if row is not None and row[k] is not None else None)
        for k in ("response", "resolution", "on_time", "satisfaction")
    }
    return {"station": station, "days": days, **rates}


@router.put("/cases/{tracking_no}/classification", dependencies=[Depends(_may_correct)])
async def correct_classification(
    tracking_no: TrackingNo, body: ClassificationIn, rt: RuntimeDep, principal: StaffPrincipal, actor: CurrentActor
) -> dict:
    """Correct triage's classification (holder or leadership). The case takes the new labels, and
    triage keeps the correction as a labelled example for `fengqiao triage train`."""
    changes = body.model_dump(exclude_none=True, exclude={"reason"})
    if not changes:
        raise api_error(422, "invalid_field", "请至少更正类型、类别或紧急程度之一。", field="category")
    await apply_correction(rt, principal, actor, tracking_no, changes, body.reason)
    return {"tracking_no": tracking_no, **changes}


async def apply_correction(
    rt: Runtime,
    principal: Principal,
    actor: Actor,
    tracking_no: str,
    changes: dict[str, str],
    reason: str,
    *,
    expected_version: int | None = None,
) -> None:
    """A classification corrected (the API's PUT and the console's form): the case's labels, the
    labelled example for triage and the audit entry, in one transaction. Rejected if not allowed,
    StaleForm if the case changed since `expected_version`."""
    async with staff_unit(rt.pool, principal) as (conn, outbox):
        await unchanged_since(conn, tracking_no, expected_version)
        station = await cases.correct_classification(
            conn,
            outbox,
            tracking_no=tracking_no,
            actor=actor,
            changes=changes,
            reason=reason,
            now=datetime.now(UTC),
        )
        await audit(conn, principal, "correct_classification", tracking_no, station, str(changes))

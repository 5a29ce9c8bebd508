"""Mediation's staff JSON API (the console's backend): cases, their lifecycle commands and clocks."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from fengqiao.auth import Principal
from fengqiao.events import Category, EventTypes, RequestType, Topics, TriageCorrected, Urgency, new_event
from fengqiao.http import StaffPrincipal, api_error, iso
from fengqiao.outbox import unit_of_work
from fengqiao.runtime import RuntimeDep
from mediation import db
from mediation.cases import extend, perform
from mediation.lifecycle import STATUS_LABELS, Actor, Rejected

router = APIRouter(prefix="/api/v1", tags=["cases"])

# What a path may carry: a tracking number's characters (never NUL, which PostgreSQL refuses with a
# 500), and row ids within bigint (a larger one made asyncpg fail with a 500). Refused with a 422.
TRACKING_NO_PATTERN = r"^[0-9A-Za-z_-]+$"
TrackingNo = Annotated[str, Path(min_length=1, max_length=64, pattern=TRACKING_NO_PATTERN)]
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]


# Who sees confidential tip-offs (举报人保密) of their station besides the approved handlers.
SEES_CONFIDENTIAL = frozenset({"leader", "instructor", "bureau"})


class staff_unit(unit_of_work):
    """A staff request's transaction: run as the restricted role with the principal's station, and
    whether they may see confidential tip-offs, so PostgreSQL's row-level security enforces what the
    API already checks (and what a route forgot to)."""

    def __init__(self, pool, principal: Principal) -> None:
        super().__init__(pool)
        self.principal = principal
        self.station = "*" if principal.sees_all_stations else (principal.station or "-")

    async def __aenter__(self):
        conn, outbox = await super().__aenter__()
        try:
            p = self.principal
            confidential = p.role in SEES_CONFIDENTIAL or (
                p.staff_id is not None and await db.is_confidential_handler(conn, p.staff_id, p.station))
            await conn.execute("SET LOCAL ROLE fengqiao_staff_api")
            await conn.execute("SELECT set_config('fengqiao.station', $1, true), "
                               "set_config('fengqiao.confidential', $2, true)",
                               self.station, "on" if confidential else "off")
        except BaseException as exc:
            await self.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return conn, outbox


async def audit(conn, principal: Principal, action: str, tracking_no: str | None, station: str | None,
                detail: str | None = None) -> None:
    await conn.execute(
        "INSERT INTO audit_log (staff_id, role, station, action, tracking_no, detail) VALUES ($1, $2, $3, $4, $5, $6)",
        principal.staff_id or principal.token_id, principal.role, station, action, tracking_no, detail)


@router.get("/cases")
async def list_cases(rt: RuntimeDep, principal: StaffPrincipal, limit: int = 100) -> dict:
    station = None if principal.sees_all_stations else principal.station
    async with staff_unit(rt.pool, principal) as (conn, _):
        rows = await db.list_cases(conn, station, min(max(limit, 1), 500))
    return {"cases": [
        {**dict(r), "submitted_at": r["submitted_at"].isoformat(), "assigned_at": r["assigned_at"].isoformat(),
         "accept_due_at": r["accept_due_at"].isoformat()} for r in rows]}


# -- the case lifecycle ---------------------------------------------------------------------------

COMMANDS = ("accept", "note", "request_info", "start_mediation", "resolve", "return", "review_return", "reassign",
            "transfer", "escalate", "visit", "close", "reopen", "merge")
_STATUS_FOR_CODE = {"not_found": 404, "forbidden": 403, "not_your_case": 403, "illegal_transition": 409,
                    "same_handler": 409, "illegal_extension": 409}


class CommandIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(default=None, max_length=2000, description="note, or what the citizen should add")
    summary: str | None = Field(default=None, max_length=2000, description="resolve: the result told to the citizen")
    reason: str | None = Field(default=None, max_length=1000)
    assignee_id: str | None = Field(default=None, max_length=64)
    to_station: str | None = Field(default=None, max_length=32)
    approve: bool | None = None
    result: Literal["satisfied", "basically_satisfied", "dissatisfied"] | None = None
    into: str | None = Field(default=None, max_length=32, description="merge: the open case this one repeats")


class ExtendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    due_at: datetime
    reason: str = Field(min_length=1, max_length=1000)


def _actor(principal: Principal) -> Actor:
    if not principal.staff_id:
        raise api_error(403, "forbidden", "需要工作人员本人的令牌。")
    return Actor(principal.staff_id, principal.role, principal.station)


def refused(exc: Rejected):
    """A refused command as an HTTP error (registered for every route in app.py)."""
    return api_error(_STATUS_FOR_CODE.get(exc.code, 422), exc.code, exc.message)


@router.get("/cases/{tracking_no}")
async def get_case(tracking_no: TrackingNo, rt: RuntimeDep, principal: StaffPrincipal) -> dict:
    """A case with its history and its clocks (original and current deadlines, misses)."""
    async with staff_unit(rt.pool, principal) as (conn, _):
        row = await db.get_case(conn, tracking_no)
        if row is None or not principal.can_see_station(row["station"]):
            raise api_error(404, "not_found", "未找到该事项。")
        steps = await db.history(conn, tracking_no)
        clock_rows = await db.clocks(conn, tracking_no)
        await audit(conn, principal, "view_case", tracking_no, row["station"])
    return {
        **{k: iso(v) for k, v in dict(row).items()},
        "status_label": STATUS_LABELS.get(row["status"], row["status"]),
        "history": [{k: iso(v) for k, v in dict(s).items()} for s in steps],
        "clocks": [{k: iso(v) for k, v in dict(c).items() if k != "tracking_no"} for c in clock_rows],
    }


@router.post("/cases/{tracking_no}/{command}")
async def run_command(tracking_no: TrackingNo, command: str, body: CommandIn, rt: RuntimeDep,
                      principal: StaffPrincipal) -> dict:
    """Accept (签收), note, request_info, start_mediation, resolve (办结), return (退单),
    review_return, reassign, transfer, escalate, visit (回访), close, reopen, merge (并单)."""
    if command not in COMMANDS:
        raise api_error(404, "unknown_command", f"未知操作：{command}")
    actor = _actor(principal)
    now = datetime.now(timezone.utc)
    async with staff_unit(rt.pool, principal) as (conn, outbox):
        t, before = await perform(conn, outbox, tracking_no=tracking_no, actor=actor, command=command,
                                  args=body.model_dump(exclude_none=True), now=now)
        await audit(conn, principal, command, tracking_no, before["station"], t.event)
    stage = {"accepted": "accepted", "resolved": "resolved", "visited": "visited"}.get(t.event or "")
    if stage:
        rt.metrics.stage_seconds.labels(stage=stage).observe((now - before["submitted_at"]).total_seconds())
    return {"tracking_no": tracking_no, "status": t.status, "status_label": STATUS_LABELS[t.status],
            "assignee_id": t.assignee_id if t.event != "transferred" else None, "event": t.event}


@router.post("/cases/{tracking_no}/clocks/{clock}/extend")
async def extend_clock(tracking_no: TrackingNo, clock: Literal["accept", "resolve", "visit"], body: ExtendIn,
                       rt: RuntimeDep, principal: StaffPrincipal) -> dict:
    """Leader-approved extension with a reason; the original deadline stays on the clock."""
    actor = _actor(principal)
    async with staff_unit(rt.pool, principal) as (conn, outbox):
        await extend(conn, tracking_no=tracking_no, actor=actor, clock=clock, due_at=body.due_at,
                     reason=body.reason, now=datetime.now(timezone.utc))
        await audit(conn, principal, "extend_clock", tracking_no, principal.station, f"{clock} -> {body.due_at}")
    return {"tracking_no": tracking_no, "clock": clock, "due_at": body.due_at.isoformat()}


@router.get("/audit")
async def audit_trail(rt: RuntimeDep, principal: StaffPrincipal,
                      tracking_no: Annotated[str | None, Query(max_length=64, pattern=TRACKING_NO_PATTERN)] = None,
                      limit: int = 200) -> dict:
    """Who viewed and who changed what (leadership of the station, bureau and admin)."""
    if principal.role not in ("leader", "instructor", "bureau", "admin"):
        raise api_error(403, "forbidden", "只有所领导和分局可以查看审计记录。")
    async with staff_unit(rt.pool, principal) as (conn, _):
        rows = await conn.fetch(
            "SELECT at, staff_id, role, station, action, tracking_no, detail FROM audit_log "
            "WHERE ($1::text IS NULL OR tracking_no = $1) ORDER BY at DESC, id DESC LIMIT $2",
            tracking_no, min(max(limit, 1), 1000))
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
        rows = await db.station_rates(conn, datetime.now(timezone.utc), days)
    row = next((r for r in rows if r["station"] == station), None)
    rates = {k: (round(float(row[k]), 4) if row is not None and row[k] is not None else None)
             for k in ("response", "resolution", "on_time", "satisfaction")}
    return {"station": station, "days": days, **rates}


class ClassificationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: RequestType | None = None
    category: Category | None = None
    urgency: Urgency | None = None
    reason: str = Field(min_length=1, max_length=500)


@router.put("/cases/{tracking_no}/classification")
async def correct_classification(tracking_no: TrackingNo, body: ClassificationIn, rt: RuntimeDep,
                                 principal: StaffPrincipal) -> dict:
    """Correct triage's classification (holder or leadership). The case takes the new labels, and
    triage keeps the correction as a labelled example for `fengqiao triage train`."""
    actor = _actor(principal)
    changes = body.model_dump(exclude_none=True, exclude={"reason"})
    if not changes:
        raise api_error(422, "invalid_field", "请至少更正类型、类别或紧急程度之一。", field="category")
    now = datetime.now(timezone.utc)
    async with staff_unit(rt.pool, principal) as (conn, outbox):
        row = await db.case_for_update(conn, tracking_no)
        if row is None:
            raise api_error(404, "not_found", "未找到该事项。")
        if actor.staff_id != row["assignee_id"] and not actor.leads:
            raise api_error(403, "not_your_case", "只有承办人或所领导可以更正分类。")
        sets = ", ".join(f"{k} = ${i + 2}" for i, k in enumerate(changes))
        await conn.execute(f"UPDATE cases SET {sets}, updated_at = now() WHERE tracking_no = $1",
                           tracking_no, *changes.values())
        if "category" in changes:
            await conn.execute("UPDATE cases SET needs_mediation = $2 WHERE tracking_no = $1", tracking_no,
                               changes["category"] in ("neighbor_dispute", "family_dispute", "labor_dispute"))
        await conn.execute(
            "INSERT INTO case_history (tracking_no, at, status, actor, reason) VALUES ($1, $2, $3, $4, $5)",
            tracking_no, now, row["status"], actor.staff_id,
            "更正分类：" + "，".join(f"{k}={v}" for k, v in changes.items()) + f"（{body.reason}）")
        outbox.add(Topics.CORRECTIONS, new_event(EventTypes.TRIAGE_CORRECTED, TriageCorrected(
            tracking_no=tracking_no, station=row["station"], corrected_by=actor.staff_id, reason=body.reason,
            corrected_at=now, **changes), source="/fengqiao/mediation", subject=tracking_no, stationid=row["station"]))
        await audit(conn, principal, "correct_classification", tracking_no, row["station"], str(changes))
    return {"tracking_no": tracking_no, **changes}

"""Duty rosters over HTTP: a station's weekly and holiday patterns, its exceptions (leave, swaps,
extra duty) and a preview of the published days. The station's leader and admins change them; the
instructor and bureau supervisors read them; another station's roster is a 404."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from fengqiao.auth import Principal
from fengqiao.constants import STATION_TZ
from fengqiao.http import AuthoriseFirstRoute, StaffPrincipal, api_error
from fengqiao.runtime import RuntimeDep
from mediation import db, roster_ops
from mediation.rosters import MAX_SHIFTS, RosterRefused
from mediation.unit import audit, staff_unit

router = APIRouter(prefix="/api/v1/stations/{station}/roster", tags=["duty rosters"], route_class=AuthoriseFirstRoute)

StationCode = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z_-]+$")]
ExceptionId = Annotated[int, Path(ge=1, le=2**63 - 1)]
READERS = frozenset({"leader", "instructor", "bureau", "admin"})
WRITERS = frozenset({"leader", "admin"})
StaffKey = Annotated[str, Field(min_length=1, max_length=64, description="staff id or badge number")]
Clock = Annotated[str, Field(min_length=1, max_length=16, description="HH:MM, 24-hour")]
Team = Annotated[str | None, Field(default=None, max_length=64, description="if given, must be the person's team")]


def roster_refused(exc: Exception) -> HTTPException:
    """A refused roster change as the API's 422 naming the field (registered in app.py)."""
    assert isinstance(exc, RosterRefused), "registered for RosterRefused only"
    return api_error(422, exc.code, exc.message, field=exc.field)


async def _station_of(station: StationCode, rt: RuntimeDep, principal: StaffPrincipal) -> str:
    """Another station's roster, or a station that does not exist: 404, before anything else."""
    if not principal.can_see_station(station):
        raise api_error(404, "not_found", "未找到该派出所。")
    async with rt.pool.acquire() as conn:
        if not await db.rosters.station_exists(conn, station):
            raise api_error(404, "not_found", "未找到该派出所。")
    return station


async def _reader(station: Annotated[str, Depends(_station_of)], principal: StaffPrincipal) -> str:
    if principal.role not in READERS:
        raise api_error(403, "forbidden", "只有所领导和分局可以查看值班表设置。")
    return station


async def _writer(station: Annotated[str, Depends(_station_of)], principal: StaffPrincipal) -> str:
    if principal.role not in WRITERS:
        raise api_error(403, "forbidden", "只有所长和管理员可以修改值班表。")
    return station


ReadableStation = Annotated[str, Depends(_reader)]
WritableStation = Annotated[str, Depends(_writer)]


class WeeklyShiftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    weekday: int = Field(ge=1, le=7, description="ISO weekday: 1 = Monday … 7 = Sunday")
    staff: StaffKey
    start: Clock
    end: Clock = Field(description="HH:MM; not after start: the shift runs past midnight")
    team: Team = None


class HolidayShiftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    staff: StaffKey
    start: Clock
    end: Clock
    team: Team = None


class WeeklyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    shifts: list[WeeklyShiftIn] = Field(max_length=MAX_SHIFTS)
    allow_gaps: bool = Field(default=False, description="accept hours without a patrol or community officer")


class HolidayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    shifts: list[HolidayShiftIn] = Field(max_length=MAX_SHIFTS, description="empty: remove the holiday pattern")
    allow_gaps: bool = False


class LeaveIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    kind: Literal["leave"]
    staff: StaffKey
    from_: date = Field(alias="from")
    to: date
    reason: str | None = Field(default=None, max_length=500)


class SwapIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["swap"]
    day: date
    staff: StaffKey = Field(description="whose shifts of the day are given away")
    to_staff: StaffKey = Field(description="who takes them")
    reason: str | None = Field(default=None, max_length=500)


class ExtraIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["extra"]
    day: date
    staff: StaffKey
    start: Clock
    end: Clock
    reason: str | None = Field(default=None, max_length=500)


ExceptionBody = Annotated[LeaveIn | SwapIn | ExtraIn, Field(discriminator="kind")]


def _today() -> date:
    return datetime.now(STATION_TZ).date()


def _actor(principal: Principal) -> str:
    return principal.staff_id or principal.token_id


@router.get("")
async def get_patterns(station: ReadableStation, rt: RuntimeDep, principal: StaffPrincipal) -> dict:
    """The weekly pattern and the holiday pattern (null: days off follow the weekly pattern)."""
    async with staff_unit(rt.pool, principal) as (conn, _):
        rows = await db.rosters.pattern_rows(conn, station)
    weekly = [r for r in rows if r["pattern"] == "weekly"]
    holiday = [r for r in rows if r["pattern"] == "holiday"]

    def shift(r: object) -> dict:
        assert hasattr(r, "__getitem__")
        return {"staff_id": r["staff_id"], "start": r["starts"].strftime("%H:%M"), "end": r["ends"].strftime("%H:%M")}

    return {
        "station": station,
        "weekly": [{"weekday": r["weekday"], **shift(r)} for r in weekly],
        "holiday": [shift(r) for r in holiday] or None,
    }


async def _set(
    station: str, kind: Literal["weekly", "holiday"], shifts: list, allow_gaps: bool, rt: RuntimeDep, p: Principal
) -> dict:
    rows = [
        roster_ops.ShiftIn(
            staff=s.staff,
            start=s.start,
            end=s.end,
            field=f"shifts[{i}]",
            weekday=getattr(s, "weekday", None),
            team=s.team,
        )
        for i, s in enumerate(shifts)
    ]
    async with staff_unit(rt.pool, p) as (conn, outbox):
        outcome = await roster_ops.set_pattern(
            conn, outbox, station=station, kind=kind, shifts=rows, allow_gaps=allow_gaps, today=_today()
        )
        detail = f"{len(rows)} shifts" + (
            f"; accepted with gaps: {'; '.join(outcome.warnings)}" if outcome.warnings else ""
        )
        await audit(conn, p, f"roster_{kind}", None, station, detail[:2000])
    return {
        "station": station,
        "shifts": len(rows),
        "published": [d.isoformat() for d in outcome.published],
        "warnings": outcome.warnings,
    }


@router.put("/weekly")
async def put_weekly(station: WritableStation, body: WeeklyIn, rt: RuntimeDep, principal: StaffPrincipal) -> dict:
    """Replace the weekly pattern (every weekday's shifts) and publish the days it changes. Refused
    whole with a 422 naming the field: unknown staff, another station's, deactivated, a team that
    is not theirs, a time not HH:MM, one person's overlapping shifts, and `roster_gap` (the weekday
    and hours without a patrol or community officer) unless `allow_gaps`."""
    return await _set(station, "weekly", body.shifts, body.allow_gaps, rt, principal)


@router.put("/holiday")
async def put_holiday(station: WritableStation, body: HolidayIn, rt: RuntimeDep, principal: StaffPrincipal) -> dict:
    """Replace the holiday pattern: the shifts of every day the working-day calendar says is not a
    working day (statutory holidays and rest days). An empty list removes it."""
    return await _set(station, "holiday", body.shifts, body.allow_gaps, rt, principal)


@router.get("/exceptions")
async def get_exceptions(station: ReadableStation, rt: RuntimeDep, principal: StaffPrincipal) -> dict:
    """Leave, swaps and extra duty that reach today or later."""
    async with staff_unit(rt.pool, principal) as (conn, _):
        items = await roster_ops.list_exceptions(conn, station, _today())
    return {"station": station, "exceptions": items}


@router.post("/exceptions", status_code=201)
async def add_exception(
    station: WritableStation, body: ExceptionBody, rt: RuntimeDep, principal: StaffPrincipal
) -> dict:
    """Leave (a person off from `from` to `to`), a swap (the shifts of `staff` on `day` go to
    `to_staff`) or extra duty (`staff` on `day` from `start` to `end`). The days it changes are
    published at once; hours it leaves uncovered come back as `warnings`."""
    if isinstance(body, LeaveIn):
        e = roster_ops.ExceptionIn("leave", body.staff, body.from_, body.to, reason=body.reason)
    elif isinstance(body, SwapIn):
        e = roster_ops.ExceptionIn("swap", body.staff, body.day, body.day, to_staff=body.to_staff, reason=body.reason)
    else:
        e = roster_ops.ExceptionIn(
            "extra", body.staff, body.day, body.day, start=body.start, end=body.end, reason=body.reason
        )
    async with staff_unit(rt.pool, principal) as (conn, outbox):
        exception_id, outcome = await roster_ops.add_exception(
            conn, outbox, station=station, e=e, created_by=_actor(principal), today=_today()
        )
        await audit(
            conn, principal, f"roster_{e.kind}", None, station, f"#{exception_id} {e.staff} {e.day_from}..{e.day_to}"
        )
    return {
        "id": exception_id,
        "station": station,
        "published": [d.isoformat() for d in outcome.published],
        "warnings": outcome.warnings,
    }


@router.delete("/exceptions/{exception_id}")
async def delete_exception(
    station: WritableStation, exception_id: ExceptionId, rt: RuntimeDep, principal: StaffPrincipal
) -> dict:
    """Remove an exception of the station (another station's id is a 404)."""
    async with staff_unit(rt.pool, principal) as (conn, outbox):
        if not await roster_ops.remove_exception(conn, outbox, station, exception_id, _today()):
            raise api_error(404, "not_found", "未找到该值班例外。")
        await audit(conn, principal, "roster_exception_removed", None, station, f"#{exception_id}")
    return {"id": exception_id, "removed": True}


@router.get("/days")
async def get_days(
    station: ReadableStation,
    rt: RuntimeDep,
    principal: StaffPrincipal,
    days: Annotated[int, Query(ge=1, le=60, description="how many days from today")] = 15,
) -> dict:
    """The concrete day rosters from today on, as published (`published`: the last publication
    says the same), with the hours no patrol or community officer covers (`gaps`)."""
    async with staff_unit(rt.pool, principal) as (conn, _):
        items = await roster_ops.preview(conn, station, _today(), days)
    return {"station": station, "days": [{**d, "day": d["day"].isoformat()} for d in items]}

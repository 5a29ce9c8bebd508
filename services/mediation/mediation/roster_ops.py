"""Duty rosters with I/O: store a station's patterns and exceptions, and keep the concrete day
rosters published ahead (`RosterPublished` through the directory writer, as every directory change).

Everything here runs in the caller's transaction (a staff request, the CLI, the demo seed or the
daily run) under the station's advisory lock, and publishes a day only when its content changed
(`roster_days.content_hash`): any number of replicas may run it at the same time."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import asyncpg
import structlog

from fengqiao.directory import DirectoryWriter
from fengqiao.events import RosterPublished
from fengqiao.outbox import Outbox, unit_of_work
from mediation import db
from mediation.calendar import WorkCalendar
from mediation.db.rosters import minutes
from mediation.rosters import (
    COVERAGE_TEAMS,
    MAX_LEAVE_DAYS,
    WEEKDAYS,
    Pattern,
    RosterException,
    RosterRefused,
    Shift,
    check_overlaps,
    content_hash,
    day_label,
    day_shifts,
    describe_gaps,
    find_overlap,
    overlap_refusal,
    parse_hhmm,
    pattern_gaps,
    published_range,
    shift_of,
    uncovered,
)

log = structlog.get_logger(__name__)
MAX_OPEN_EXCEPTIONS = 1000  # per station, reaching today or later


@dataclass(frozen=True)
class ShiftIn:
    staff: str  # staff id or badge number
    start: str
    end: str
    field: str  # where it came from, e.g. "shifts[3]" or "line 4"
    weekday: int | None = None  # ISO 1..7; None in the holiday pattern
    team: str | None = None  # if given, must be the person's team


@dataclass(frozen=True)
class ExceptionIn:
    kind: Literal["leave", "swap", "extra"]
    staff: str
    day_from: date
    day_to: date
    to_staff: str | None = None
    start: str | None = None
    end: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Outcome:
    published: list[date]
    warnings: list[str]


# -- staff ------------------------------------------------------------------------------------------


async def resolve_staff(
    conn: asyncpg.Connection, station: str, wanted: list[tuple[str, str]], *, active: bool = True
) -> dict[str, asyncpg.Record]:
    """(key, field) pairs -> the station's staff record for each key (staff id, else badge number).
    Unknown, another station's and (with `active`) deactivated staff are refused naming the field."""
    rows = await db.rosters.staff_matching(conn, sorted({k for k, _ in wanted}))
    found: dict[str, asyncpg.Record] = {}
    for key, field in wanted:
        matches = [r for r in rows if r["staff_id"] == key] or [r for r in rows if r["badge_no"] == key]
        own = [r for r in matches if r["station"] == station]
        if not own:
            # One answer whether the key is nobody's or another station's: a leader cannot probe
            # other stations' staff ids and badge numbers through the roster.
            raise RosterRefused(
                "unknown_staff", f"字段 {field}：本所（{station}）没有工作人员「{key}」（警号或工作人员编号）。", field
            )
        if active and not own[0]["active"]:
            raise RosterRefused("staff_inactive", f"字段 {field}：「{key}」已停用，不能排班。", field)
        found[key] = own[0]
    return found


async def _teams_and_names(conn: asyncpg.Connection, station: str) -> tuple[dict[str, str | None], dict[str, str]]:
    rows = await db.rosters.station_staff(conn, station)
    return {r["staff_id"]: r["team"] for r in rows}, {r["staff_id"]: r["name"] for r in rows}


# -- patterns ---------------------------------------------------------------------------------------


async def load_pattern(conn: asyncpg.Connection, station: str) -> Pattern:
    pattern = Pattern()
    holiday: list[Shift] = []
    for r in await db.rosters.pattern_rows(conn, station):
        shift = Shift(r["staff_id"], minutes(r["starts"]), minutes(r["ends"]))
        if r["pattern"] == "weekly":
            pattern.weekly[r["weekday"]].append(shift)
        else:
            holiday.append(shift)
    pattern.holiday = holiday or None
    return pattern


async def set_pattern(
    conn: asyncpg.Connection,
    outbox: Outbox,
    *,
    station: str,
    kind: Literal["weekly", "holiday"],
    shifts: list[ShiftIn],
    allow_gaps: bool,
    today: date,
) -> Outcome:
    """Replace the station's weekly (or holiday) pattern and publish the days it changes. Refused
    whole, naming the field: unknown or another station's staff, a team that is not the person's,
    times not HH:MM, one person's overlapping shifts, and (unless `allow_gaps`) hours of a day
    without a patrol or community officer. An empty holiday pattern removes it."""
    if kind == "weekly" and not shifts:
        raise RosterRefused("missing_shifts", "字段 shifts 不能为空：每周值班表至少需要一个班次。", "shifts")
    await db.rosters.lock_station(conn, station)
    people = await resolve_staff(conn, station, [(s.staff, f"{s.field}.staff") for s in shifts])
    rows: list[tuple[int | None, Shift]] = []
    for s in shifts:
        person = people[s.staff]
        if s.team and s.team != person["team"]:
            raise RosterRefused(
                "team_mismatch",
                f"字段 {s.field}.team：{person['name']}属于「{person['team'] or '无'}」队，不是「{s.team}」。",
                f"{s.field}.team",
            )
        rows.append((s.weekday, shift_of(person["staff_id"], s.start, s.end, s.field)))
    pattern = await load_pattern(conn, station)
    if kind == "weekly":
        pattern.weekly = {d: [sh for wd, sh in rows if wd == d] for d in range(1, 8)}
    else:
        pattern.holiday = [sh for _, sh in rows] or None
    teams, names = await _teams_and_names(conn, station)
    check_overlaps(pattern, names)
    gaps = pattern_gaps(pattern, teams)
    if gaps and not allow_gaps:
        raise RosterRefused("roster_gap", gap_message(gaps), "shifts")
    await db.rosters.replace_pattern(conn, station, kind, [(wd, sh.staff_id, sh.start, sh.end) for wd, sh in rows])
    published = await materialise(conn, outbox, station, today)
    return Outcome(published, [f"值班空档：{g}" for g in gaps])


def gap_message(gaps: list[str]) -> str:
    shown = "；".join(gaps[:8]) + ("；……" if len(gaps) > 8 else "")
    teams = "、".join({"patrol": "巡逻队", "community": "社区警务队"}[t] for t in sorted(COVERAGE_TEAMS))
    return f"值班表有空档，以下时段{teams}均无人值班：{shown}。请补齐班次，或确认后以 allow_gaps 提交。"


# -- exceptions -------------------------------------------------------------------------------------


def _exception_of(r: asyncpg.Record) -> RosterException:
    return RosterException(
        id=r["id"],
        kind=r["kind"],
        staff_id=r["staff_id"],
        day_from=r["day_from"],
        day_to=r["day_to"],
        to_staff_id=r["to_staff_id"],
        start=None if r["starts"] is None else minutes(r["starts"]),
        end=None if r["ends"] is None else minutes(r["ends"]),
    )


MAX_DAYS_AHEAD = 2 * 366  # leave and swaps are planned within two years (and dates near 9999 overflow)


def _check_dates(e: ExceptionIn, today: date) -> None:
    field = "to" if e.kind == "leave" else "day"
    if e.day_to < e.day_from:
        raise RosterRefused("invalid_dates", "字段 to 不能早于 from。", "to")
    if e.day_to < today:
        raise RosterRefused("invalid_dates", f"字段 {field} 不能早于今天（{today.isoformat()}）。", field)
    if e.day_from > today + timedelta(days=MAX_DAYS_AHEAD):
        raise RosterRefused("invalid_dates", f"字段 {field} 不能晚于两年以后。", field)
    if (e.day_to - e.day_from).days >= MAX_LEAVE_DAYS:
        raise RosterRefused("invalid_dates", f"字段 to：一次最多登记 {MAX_LEAVE_DAYS} 天。", "to")


async def add_exception(
    conn: asyncpg.Connection, outbox: Outbox, *, station: str, e: ExceptionIn, created_by: str, today: date
) -> tuple[int, Outcome]:
    """Record leave, a swap (the person's shifts of a day go to another) or extra duty, and publish
    the days it changes. A swap or extra duty that makes one person's shifts overlap is refused;
    leave is a fact, accepted even when it leaves hours uncovered (they come back as warnings)."""
    _check_dates(e, today)
    await db.rosters.lock_station(conn, station)
    if await db.rosters.count_future_exceptions(conn, station, today) >= MAX_OPEN_EXCEPTIONS:
        raise RosterRefused(
            "too_many_exceptions", f"本所待生效的例外已达 {MAX_OPEN_EXCEPTIONS} 条，请先删除过期或多余的。"
        )
    wanted = [(e.staff, "staff")] + ([(e.to_staff, "to_staff")] if e.kind == "swap" and e.to_staff else [])
    people = await resolve_staff(conn, station, wanted, active=e.kind != "leave")
    staff_id = people[e.staff]["staff_id"]
    to_staff = people[e.to_staff]["staff_id"] if e.kind == "swap" and e.to_staff else None
    if e.kind == "swap" and (to_staff is None or to_staff == staff_id):
        raise RosterRefused("invalid_swap", "字段 to_staff 须为本所另一名工作人员。", "to_staff")
    start = parse_hhmm(e.start or "", "start") if e.kind == "extra" else None
    end = parse_hhmm(e.end or "", "end") if e.kind == "extra" else None
    if start is not None and start == end:
        raise RosterRefused("invalid_time", "字段 end 不能与开始时间相同。", "end")
    new = RosterException(0, e.kind, staff_id, e.day_from, e.day_to, to_staff, start, end)
    await _check_exception(conn, station, new, today)
    exception_id = await db.rosters.insert_exception(
        conn,
        station=station,
        kind=e.kind,
        staff_id=staff_id,
        to_staff_id=to_staff,
        day_from=e.day_from,
        day_to=e.day_to,
        start=start,
        end=end,
        reason=e.reason,
        created_by=created_by,
    )
    published = await materialise(conn, outbox, station, today)
    return exception_id, Outcome(published, await day_gaps(conn, station, today))


async def _check_exception(conn: asyncpg.Connection, station: str, new: RosterException, today: date) -> None:
    """A swap needs a shift to give; a swap or extra duty must not overlap the person's own shifts."""
    if new.kind == "leave":
        return
    days = [new.day_from - timedelta(days=1), new.day_from, new.day_from + timedelta(days=1)]
    before = await _plan(conn, station, days)
    after = await _plan(conn, station, days, extra=[new])
    if new.kind == "swap" and not any(s.staff_id == new.staff_id for s in before[1][2]):
        raise RosterRefused(
            "no_shift", f"字段 staff：该工作人员在{day_label(new.day_from)}没有班次，无需调班。", "staff"
        )
    who = new.to_staff_id if new.kind == "swap" else new.staff_id
    field = "to_staff" if new.kind == "swap" else "start"
    _, names = await _teams_and_names(conn, station)
    for i in (1, 2):
        clash = find_overlap(after[i][2], after[i - 1][2], only=who)
        if clash:
            raise overlap_refusal(day_label(after[i][0]), clash[0], clash[1], names, field)


async def remove_exception(
    conn: asyncpg.Connection, outbox: Outbox, station: str, exception_id: int, today: date
) -> bool:
    await db.rosters.lock_station(conn, station)
    if await db.rosters.delete_exception(conn, station, exception_id) is None:
        return False
    await materialise(conn, outbox, station, today)
    return True


async def list_exceptions(conn: asyncpg.Connection, station: str, today: date) -> list[dict]:
    return [
        {
            "id": r["id"],
            "kind": r["kind"],
            "staff_id": r["staff_id"],
            "to_staff_id": r["to_staff_id"],
            "from": r["day_from"].isoformat(),
            "to": r["day_to"].isoformat(),
            "start": None if r["starts"] is None else r["starts"].strftime("%H:%M"),
            "end": None if r["ends"] is None else r["ends"].strftime("%H:%M"),
            "reason": r["reason"],
            "created_by": r["created_by"],
            "created_at": r["created_at"].isoformat(),
        }
        for r in await db.rosters.exceptions(conn, station, today)
    ]


# -- materialisation --------------------------------------------------------------------------------


async def _plan(
    conn: asyncpg.Connection, station: str, days: list[date], extra: list[RosterException] | None = None
) -> list[tuple[date, bool, list[Shift]]]:
    """(day, working day?, shifts) of consecutive `days`, from the pattern, the calendar, the
    exceptions (plus `extra`, not yet stored) and who is active now."""
    pattern = await load_pattern(conn, station)
    cal = WorkCalendar(loaded=await db.clocks.calendar_days(conn))
    excs = [_exception_of(r) for r in await db.rosters.exceptions(conn, station, days[0])] + (extra or [])
    active = {r["staff_id"] for r in await db.rosters.station_staff(conn, station) if r["active"]}
    out = []
    for day in days:
        workday = cal.is_workday(day)
        out.append((day, workday, day_shifts(pattern, day, workday, excs, active)))
    return out


async def materialise(conn: asyncpg.Connection, outbox: Outbox, station: str, today: date) -> list[date]:
    """Publish the days from yesterday to today + 14 whose content changed; returns them. A station
    without a weekly pattern is left alone (its rosters, if any, were published some other way)."""
    await db.rosters.lock_station(conn, station)
    if not await db.rosters.has_pattern(conn, station):
        return []
    days = published_range(today)
    plan = await _plan(conn, station, days)
    hashes = await db.rosters.published_hashes(conn, station, days)
    writer = DirectoryWriter(conn, outbox)
    published = []
    for day, _, shifts in plan:
        digest = content_hash(shifts)
        if hashes.get(day) == digest:
            continue
        await writer.roster(RosterPublished(station=station, day=day.isoformat(), shifts=[s.payload() for s in shifts]))
        await db.rosters.mark_published(conn, station, day, digest)
        published.append(day)
    return published


async def materialise_all(pool: asyncpg.Pool, today: date) -> int:
    """The daily run (every replica, every few minutes): each station in its own transaction."""
    async with pool.acquire() as conn:
        stations = await db.rosters.stations_with_pattern(conn)
    total = 0
    for station in stations:
        async with unit_of_work(pool) as (conn, outbox):
            total += len(await materialise(conn, outbox, station, today))
    return total


async def day_gaps(conn: asyncpg.Connection, station: str, today: date) -> list[str]:
    """The published days' hours without a patrol or community officer (after leave, say)."""
    return [
        f"值班空档：{day_label(d['day'])} {'、'.join(d['gaps'])}"
        for d in await preview(conn, station, today, 15)
        if d["gaps"]
    ]


async def preview(conn: asyncpg.Connection, station: str, today: date, days: int) -> list[dict]:
    """The concrete days from today on as they are (or will be) published, with their gaps."""
    dates = [today + timedelta(days=n) for n in range(-1, days)]
    plan = await _plan(conn, station, dates)
    teams, names = await _teams_and_names(conn, station)
    hashes = await db.rosters.published_hashes(conn, station, dates)
    has_holiday = (await load_pattern(conn, station)).holiday is not None
    out = []
    for (_, _, yesterday), (day, workday, shifts) in itertools.pairwise(plan):
        covering = [s for s in shifts if teams.get(s.staff_id) in COVERAGE_TEAMS]
        spill = [s for s in yesterday if teams.get(s.staff_id) in COVERAGE_TEAMS]
        gaps = uncovered(covering, spill)
        out.append(
            {
                "day": day,
                "weekday": WEEKDAYS[day.isoweekday() - 1],
                "workday": workday,
                "pattern": "holiday" if not workday and has_holiday else "weekly",
                "published": hashes.get(day) == content_hash(shifts),
                "shifts": [
                    {**s.payload(), "name": names.get(s.staff_id), "team": teams.get(s.staff_id)} for s in shifts
                ],
                "gaps": [describe_gaps([g]) for g in gaps],
            }
        )
    return out

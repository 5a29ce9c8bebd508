"""Duty rosters from a weekly pattern: the rules, no I/O.

A station keeps a weekly pattern (shifts per ISO weekday), optionally a holiday pattern (the shifts
of every day the working-day calendar says is not a working day: statutory holidays and rest days),
and exceptions (leave, swaps, extra duty). `day_shifts` turns them into one concrete day's roster;
`pattern_problems` and `uncovered` say what a pattern or a day leaves uncovered. Times are minutes
after midnight; a shift whose end is not after its start runs past midnight into the next day."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

DAY = 24 * 60
HORIZON_DAYS = 14  # published ahead: yesterday (its overnight shifts run into today) .. today + 14
COVERAGE_TEAMS = frozenset({"patrol", "community"})  # someone of these is on duty around the clock
WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")  # ISO weekday 1..7
MAX_SHIFTS = 500
MAX_LEAVE_DAYS = 366
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")

ExceptionKind = Literal["leave", "swap", "extra"]


class RosterRefused(Exception):
    """Bad roster input: a stable code, a zh-CN message naming the field, and the field."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


@dataclass(frozen=True)
class Shift:
    staff_id: str
    start: int  # minutes after midnight
    end: int  # not after start: the shift ends the next day
    row: str | None = None  # the input field it came from (for messages)

    @property
    def overnight(self) -> bool:
        return self.end <= self.start

    def today_part(self) -> tuple[int, int]:
        return (self.start, DAY if self.overnight else self.end)

    def payload(self) -> dict[str, str]:
        return {"staff_id": self.staff_id, "start": hhmm(self.start), "end": hhmm(self.end)}


@dataclass(frozen=True)
class RosterException:
    id: int
    kind: ExceptionKind
    staff_id: str
    day_from: date
    day_to: date
    to_staff_id: str | None = None  # swap: who takes the shifts
    start: int | None = None  # extra duty
    end: int | None = None

    def covers(self, day: date) -> bool:
        return self.day_from <= day <= self.day_to


@dataclass
class Pattern:
    weekly: dict[int, list[Shift]] = field(default_factory=lambda: {d: [] for d in range(1, 8)})
    holiday: list[Shift] | None = None  # None: rest days and holidays follow the weekly pattern


def parse_hhmm(value: str, field_name: str) -> int:
    m = _HHMM.match(value.strip()) if isinstance(value, str) else None
    if m is None:
        raise RosterRefused(
            "invalid_time", f"字段 {field_name} 须为 HH:MM 格式的时间（如 08:00），收到「{value}」。", field_name
        )
    return int(m.group(1)) * 60 + int(m.group(2))


def hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def shift_of(staff_id: str, start: str, end: str, row: str) -> Shift:
    """A shift from its input strings; the same start and end time is refused (not a 24 h shift)."""
    s, e = parse_hhmm(start, f"{row}.start"), parse_hhmm(end, f"{row}.end")
    if s == e:
        raise RosterRefused(
            "invalid_time", f"字段 {row}.end 不能与开始时间相同（24 小时请分为两个班次）。", f"{row}.end"
        )
    return Shift(staff_id, s, e, row)


def _merge(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for a, b in sorted(intervals):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def uncovered(today: Sequence[Shift], yesterday: Sequence[Shift]) -> list[tuple[int, int]]:
    """The periods of a day nobody of `today`'s shifts nor `yesterday`'s overnight shifts covers."""
    covered = [s.today_part() for s in today] + [(0, s.end) for s in yesterday if s.overnight]
    gaps, at = [], 0
    for a, b in _merge(covered):
        if a > at:
            gaps.append((at, a))
        at = max(at, b)
    if at < DAY:
        gaps.append((at, DAY))
    return gaps


def describe_gaps(gaps: Sequence[tuple[int, int]]) -> str:
    return "、".join(f"{hhmm(a)}–{'24:00' if b == DAY else hhmm(b)}" for a, b in gaps)


def _covering(shifts: Sequence[Shift], teams: Mapping[str, str | None]) -> list[Shift]:
    return [s for s in shifts if teams.get(s.staff_id) in COVERAGE_TEAMS]


def pattern_gaps(pattern: Pattern, teams: Mapping[str, str | None]) -> list[str]:
    """Every kind of day the pattern leaves without a patrol or community officer, named by its
    weekday (and, with a holiday pattern, the day before it), with the hours not covered."""
    week = {d: _covering(s, teams) for d, s in pattern.weekly.items()}
    found: list[str] = []

    def check(label: str, today: list[Shift], yesterday: list[Shift]) -> None:
        gaps = uncovered(today, yesterday)
        if gaps:
            found.append(f"{label} {describe_gaps(gaps)}")

    for d in range(1, 8):
        check(WEEKDAYS[d - 1], week[d], week[7 if d == 1 else d - 1])
    if pattern.holiday is not None:
        holiday = _covering(pattern.holiday, teams)
        check("节假日", holiday, holiday)
        for d in range(1, 8):
            check(f"{WEEKDAYS[d - 1]}后的节假日", holiday, week[d])
            check(f"节假日后的{WEEKDAYS[d - 1]}", week[d], holiday)
    return list(dict.fromkeys(found))


def find_overlap(
    shifts: Sequence[Shift], yesterday: Sequence[Shift], only: str | None = None
) -> tuple[Shift, Shift] | None:
    """Two shifts of one person (of `only`, if given) that overlap on a day (yesterday's overnight
    part included)."""
    parts = [((0, s.end), s) for s in yesterday if s.overnight] + [(s.today_part(), s) for s in shifts]
    parts = [p for p in parts if only is None or p[1].staff_id == only]
    by_staff: dict[str, list[tuple[tuple[int, int], Shift]]] = {}
    for p in parts:
        by_staff.setdefault(p[1].staff_id, []).append(p)
    for items in by_staff.values():
        items.sort(key=lambda p: p[0])
        for (a, first), (b, second) in itertools.pairwise(items):
            if b[0] < a[1]:
                return first, second
    return None


def check_overlaps(pattern: Pattern, names: Mapping[str, str]) -> None:
    """Refuse a pattern in which one person's shifts overlap (on a weekday or into the next)."""
    days: list[tuple[str, list[Shift], list[Shift]]] = [
        (WEEKDAYS[d - 1], pattern.weekly[d], pattern.weekly[7 if d == 1 else d - 1]) for d in range(1, 8)
    ]
    if pattern.holiday is not None:
        days.append(("节假日", pattern.holiday, pattern.holiday))
    for label, today, yesterday in days:
        clash = find_overlap(today, yesterday)
        if clash:
            raise overlap_refusal(label, clash[0], clash[1], names)


def overlap_refusal(
    label: str, a: Shift, b: Shift, names: Mapping[str, str], field_name: str | None = None
) -> RosterRefused:
    row = field_name or b.row or a.row or "shifts"
    who = f"{names.get(b.staff_id, b.staff_id)}（{b.staff_id}）"
    return RosterRefused(
        "overlapping_shifts",
        f"字段 {row}：{who}在{label}的班次 {hhmm(b.start)}–{hhmm(b.end)} 与 {hhmm(a.start)}–{hhmm(a.end)} 重叠。",
        row,
    )


# -- materialisation ------------------------------------------------------------------------------


def base_shifts(pattern: Pattern, day: date, workday: bool) -> list[Shift]:
    """The pattern's shifts of a day: the holiday pattern on a day off (if there is one), else the
    weekly pattern of its weekday (an adjusted working day on a weekend takes that weekend day's)."""
    if not workday and pattern.holiday is not None:
        return list(pattern.holiday)
    return list(pattern.weekly[day.isoweekday()])


def day_shifts(
    pattern: Pattern, day: date, workday: bool, exceptions: Sequence[RosterException], active: set[str]
) -> list[Shift]:
    """One concrete day: the pattern's shifts, then swaps (A's shifts to B), extra duty, and last
    leave (whoever is on leave is off, swapped-in shifts included); inactive staff are never on duty."""
    shifts = base_shifts(pattern, day, workday)
    todays = sorted((e for e in exceptions if e.covers(day)), key=lambda e: e.id)
    for e in todays:
        if e.kind == "swap" and e.to_staff_id:
            shifts = [Shift(e.to_staff_id, s.start, s.end) if s.staff_id == e.staff_id else s for s in shifts]
    for e in todays:
        if e.kind == "extra" and e.start is not None and e.end is not None:
            shifts.append(Shift(e.staff_id, e.start, e.end))
    off = {e.staff_id for e in todays if e.kind == "leave"}
    seen: set[tuple[str, int]] = set()
    result = []
    for s in sorted(shifts, key=lambda s: (s.start, s.end, s.staff_id)):
        key = (s.staff_id, s.start)
        if s.staff_id in off or s.staff_id not in active or key in seen:
            continue
        seen.add(key)
        result.append(Shift(s.staff_id, s.start, s.end))
    return result


def content_hash(shifts: Sequence[Shift]) -> str:
    """What a published day says, for publishing a day only when it changes (idempotent replicas)."""
    return hashlib.sha256(json.dumps([s.payload() for s in shifts], sort_keys=True).encode()).hexdigest()


def published_range(today: date) -> list[date]:
    return [today + timedelta(days=n) for n in range(-1, HORIZON_DAYS + 1)]


def day_label(day: date) -> str:
    return f"{day.isoformat()}（{WEEKDAYS[day.isoweekday() - 1]}）"

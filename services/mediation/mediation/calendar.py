"""The working-day calendar and the deadlines of DESIGN 5. Pure.

Working days come from, in order: a deployment's loaded schedule (the `calendar_days` table, fed
by `fengqiao calendar load FILE` once the State Council publishes a year's holidays and adjusted
working days), the `chinese-calendar` package (2004–2026 in 1.11.0), else Monday–Friday. A year
nobody loaded never crashes a clock: it falls back to Monday–Friday and says so, so the deadline
note can tell the officer and the service can raise an operator alert."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import chinese_calendar

from fengqiao.constants import STATION_TZ

FALLBACK_NOTE = "{year}年法定节假日安排未加载，按周一至周五计算工作日"


@dataclass
class WorkCalendar:
    loaded: dict[date, bool] = field(default_factory=dict)  # day -> is a working day
    fallback_years: set[int] = field(default_factory=set)  # years computed Monday–Friday

    def __post_init__(self) -> None:
        self._years = {d.year for d in self.loaded}

    def is_workday(self, day: date) -> bool:
        if day in self.loaded:
            return self.loaded[day]
        if day.year in self._years:
            return day.weekday() < 5  # a loaded year lists its exceptions; other days are ordinary
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            self.fallback_years.add(day.year)
            return day.weekday() < 5

    def add_working_days(self, start: datetime, n: int) -> datetime:
        """The same local time `n` working days after `start` (days off skipped)."""
        local = start.astimezone(STATION_TZ)
        day = local.date()
        counted = 0
        while counted < n:
            day += timedelta(days=1)
            if self.is_workday(day):
                counted += 1
        return datetime.combine(day, local.timetz().replace(tzinfo=None), STATION_TZ)

    def missing_years(self, today: date, horizon_days: int = 60) -> list[int]:
        """Years within the horizon that neither a loaded schedule nor chinese-calendar knows:
        the operator must load them before deadlines reach them."""
        missing = []
        for year in range(today.year, (today + timedelta(days=horizon_days)).year + 1):
            if year in self._years:
                continue
            try:
                chinese_calendar.is_workday(date(year, 6, 1))
            except NotImplementedError:
                missing.append(year)
        return missing

    def notes(self) -> list[str]:
        return [FALLBACK_NOTE.format(year=y) for y in sorted(self.fallback_years)]


# -- the clocks of DESIGN 5 -------------------------------------------------------------------------

ACCEPT = timedelta(hours=1)
URGENT_RESOLVE = timedelta(hours=2)
MEDIATION = timedelta(days=30)
SUPERVISION_WORKING_DAYS = 5


@dataclass(frozen=True)
class Deadline:
    clock: str  # accept | resolve | visit
    due_at: datetime
    remind_at: datetime
    note: str


def _remind(start: datetime, due: datetime) -> datetime:
    """Remind when three quarters of the time are gone (at least 10 minutes before)."""
    span = due - start
    return min(start + span * 3 / 4, due - timedelta(minutes=10))


Window = tuple[time, time]
MAX_DAYS_WITHOUT_DUTY = 60  # a clock never searches further for on-duty time: it counts wall-clock


@dataclass(frozen=True)
class DutyHours:
    """A station's on-duty hours: `starts`–`ends` every day, except the weekdays listed in
    `weekdays` (ISO 1 = Monday: their own window, or None = no duty that day) and, if
    `holidays_set`, the days off of the working-day calendar (holidays and rest days), which take
    `holidays` (None = no duty)."""

    starts: time
    ends: time
    weekdays: dict[int, Window | None] = field(default_factory=dict)
    holidays: Window | None = None
    holidays_set: bool = False

    def window(self, day: date, cal: WorkCalendar | None) -> Window | None:
        if self.holidays_set and cal is not None and not cal.is_workday(day):
            return self.holidays
        return self.weekdays.get(day.isoweekday(), (self.starts, self.ends))

    @property
    def uniform(self) -> bool:
        return not self.weekdays and not self.holidays_set


def _window(value: Any) -> Window | None:
    return None if value == "off" else (time.fromisoformat(value["starts"]), time.fromisoformat(value["ends"]))


def duty_of(starts: time, ends: time, schedule: dict[str, Any]) -> DutyHours:
    """The clock's duty hours from the station's stored schedule (as directory_admin.DutyHours)."""
    weekdays = {int(day): _window(v) for day, v in (schedule.get("weekdays") or {}).items()}
    holidays = schedule.get("holidays")
    return DutyHours(starts, ends, weekdays, _window(holidays) if holidays is not None else None, holidays is not None)


def on_duty_after(start: datetime, span: timedelta, duty: DutyHours, cal: WorkCalendar | None = None) -> datetime:
    """The moment `span` of on-duty time has passed after `start`, day by day with each day's
    window (a day without duty is skipped). Beyond MAX_DAYS_WITHOUT_DUTY days: wall-clock time."""
    t = start.astimezone(STATION_TZ)
    remaining = span
    for _ in range(MAX_DAYS_WITHOUT_DUTY):
        window = duty.window(t.date(), cal)
        if window is not None:
            window_start = datetime.combine(t.date(), window[0], STATION_TZ)
            window_end = datetime.combine(t.date(), window[1], STATION_TZ)
            t = max(t, window_start)
            if t < window_end:
                if remaining <= window_end - t:
                    return t + remaining
                remaining -= window_end - t
        t = datetime.combine(t.date() + timedelta(days=1), time(0), STATION_TZ)
    return start + span


def accept_deadline(
    assigned_at: datetime, duty: DutyHours | None = None, urgent: bool = False, cal: WorkCalendar | None = None
) -> Deadline:
    if duty is None or urgent:
        due = assigned_at + ACCEPT
        return Deadline("accept", due, _remind(assigned_at, due), "签收时限：分派后1小时内")
    due = on_duty_after(assigned_at, ACCEPT, duty, cal)
    hours = f"{duty.starts:%H:%M}–{duty.ends:%H:%M}" + ("" if duty.uniform else "，周末及节假日按本所安排")
    return Deadline("accept", due, due - timedelta(minutes=15), f"签收时限：在岗时间1小时内（值班时间 {hours}）")


# A walk-in visitor (来访) came to the station in person: the answer is due the same day, by the end
# of the day's duty hours; one who came too close to that end still gets a real afternoon's work.
WALK_IN_AT_LEAST = timedelta(hours=2)
END_OF_DAY = time(23, 59)


def walk_in_due(start: datetime, duty: DutyHours | None, cal: WorkCalendar | None = None) -> tuple[datetime, str]:
    """The same-day target of a walk-in and its note: the end of today's duty hours (midnight on a
    day without any), or WALK_IN_AT_LEAST after the visit if that end is too close."""
    local = start.astimezone(STATION_TZ)
    window = duty.window(local.date(), cal) if duty is not None else None
    end = datetime.combine(local.date(), window[1] if window else END_OF_DAY, STATION_TZ)
    if end - start < WALK_IN_AT_LEAST:
        return start + WALK_IN_AT_LEAST, "来访事项：当日办结（来访时已近下班，2小时内办结）"
    return end, "来访事项：当日办结（本所值班时间结束前）" if window else "来访事项：当日办结"


def resolve_deadline(
    cal: WorkCalendar,
    start: datetime,
    type_: str,
    urgency: str,
    needs_mediation: bool,
    *,
    channel: str | None = None,
    duty: DutyHours | None = None,
) -> Deadline:
    """The resolution clock. A walk-in's is the same day unless it is urgent (two hours is sooner)
    or a dispute to mediate (parties cannot be brought together within the day)."""
    if urgency == "urgent":
        due, note = start + URGENT_RESOLVE, "紧急事项：2小时内办结"
    elif channel == "walk_in" and not needs_mediation:
        due, note = walk_in_due(start, duty, cal)
    elif urgency == "high":
        local = start.astimezone(STATION_TZ)
        due, note = datetime.combine(local.date(), time(23, 59), STATION_TZ), "较急事项：当日办结"
    elif needs_mediation:
        due, note = start + MEDIATION, "矛盾纠纷调解：30日内办结"
    elif type_ in ("help", "inquiry"):
        due, note = cal.add_working_days(start, 3), "求助、咨询：3个工作日内办结"
    else:
        due, note = cal.add_working_days(start, 13), "投诉、举报、建议：13个工作日内办结"
    extra = cal.notes()
    return Deadline("resolve", due, _remind(start, due), "；".join([note, *extra]))


def visit_deadline(cal: WorkCalendar, resolved_at: datetime) -> Deadline:
    due = cal.add_working_days(resolved_at, 1)
    return Deadline("visit", due, _remind(resolved_at, due), "；".join(["回访时限：办结后1个工作日内", *cal.notes()]))


def supervision_at(cal: WorkCalendar, breached_at: datetime) -> datetime:
    """Bureau supervision (督办) 5 working days after a missed deadline."""
    return cal.add_working_days(breached_at, SUPERVISION_WORKING_DAYS)

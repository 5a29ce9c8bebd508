"""Working days and deadlines, including a statutory holiday, an adjusted working day and a year
nobody loaded."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from mediation.calendar import (
    STATION_TZ,
    WorkCalendar,
    accept_deadline,
    resolve_deadline,
    supervision_at,
    visit_deadline,
)


def local(*args) -> datetime:
    return datetime(*args, tzinfo=STATION_TZ)


def test_national_day_holiday_is_skipped():
    cal = WorkCalendar()
    # Wed 2026-09-30 + 3 working days: Oct 1-7 are holidays (Oct 3/4 a weekend), Oct 8 (Thu) works.
    due = cal.add_working_days(local(2026, 9, 30, 10), 3)
    assert due == local(2026, 10, 10, 10)  # Oct 8, 9, then Saturday Oct 10, an adjusted working day
    assert cal.is_workday(date(2026, 10, 10)) and not cal.is_workday(date(2026, 10, 1))


def test_an_adjusted_working_day_on_a_sunday_counts():
    cal = WorkCalendar()
    # Fri 2026-09-18 + 1 working day: Saturday is off, Sunday 2026-09-20 is an adjusted working day.
    assert cal.add_working_days(local(2026, 9, 18, 9), 1) == local(2026, 9, 20, 9)
    # ...and Friday 2026-09-25 is a holiday (Mid-Autumn): Thu 09-24 + 1 -> Mon 09-28.
    assert cal.add_working_days(local(2026, 9, 24, 9), 1) == local(2026, 9, 28, 9)


def test_a_year_nobody_loaded_falls_back_to_monday_to_friday_and_says_so():
    cal = WorkCalendar()
    due = cal.add_working_days(local(2027, 1, 1, 9), 1)  # Friday -> Monday 2027-01-04
    assert due == local(2027, 1, 4, 9)
    assert cal.fallback_years == {2027}
    d = resolve_deadline(cal, local(2027, 1, 4, 9), "inquiry", "normal", False)
    assert "2027年法定节假日安排未加载" in d.note


def test_a_loaded_schedule_wins():
    cal = WorkCalendar(loaded={date(2027, 1, 4): False, date(2027, 1, 9): True})
    assert not cal.is_workday(date(2027, 1, 4)) and cal.is_workday(date(2027, 1, 9))
    assert cal.is_workday(date(2027, 1, 5)) and not cal.fallback_years


def test_deadlines_by_type_and_urgency():
    cal = WorkCalendar()
    start = local(2026, 11, 27, 10)  # a Friday
    assert accept_deadline(start).due_at == start + timedelta(hours=1)
    assert resolve_deadline(cal, start, "help", "urgent", False).due_at == start + timedelta(hours=2)
    assert resolve_deadline(cal, start, "help", "high", False).due_at == local(2026, 11, 27, 23, 59)
    assert resolve_deadline(cal, start, "inquiry", "normal", False).due_at == local(2026, 12, 2, 10)
    assert resolve_deadline(cal, start, "complaint", "normal", False).due_at == local(2026, 12, 16, 10)
    assert resolve_deadline(cal, start, "help", "normal", True).due_at == start + timedelta(days=30)
    assert visit_deadline(cal, start).due_at == local(2026, 11, 30, 10)
    assert supervision_at(cal, start) == local(2026, 12, 4, 10)
    d = accept_deadline(start.astimezone(UTC))
    assert d.remind_at < d.due_at


def test_missing_years_are_reported_ahead_and_a_loaded_year_is_not_missing():
    assert WorkCalendar().missing_years(date(2026, 11, 29)) == [2027]
    assert WorkCalendar().missing_years(date(2026, 6, 1)) == []
    assert WorkCalendar(loaded={date(2027, 1, 1): False}).missing_years(date(2026, 11, 29)) == []


def test_schedule_files_are_parsed_with_clear_errors():
    import click
    import pytest

    from mediation.cli import parse_schedule

    rows = parse_schedule("date,kind,name\n# 2027\n2027-01-01,holiday,元旦\n2027-02-07,workday,春节调休\n")
    assert rows == [(date(2027, 1, 1), False, "元旦"), (date(2027, 2, 7), True, "春节调休")]
    with pytest.raises(click.ClickException, match="line 1"):
        parse_schedule("2027-13-01,holiday\n")
    with pytest.raises(click.ClickException, match="holiday or workday"):
        parse_schedule("2027-01-01,vacation\n")


def test_acceptance_counts_on_duty_time_only():
    from datetime import time as t

    from mediation.calendar import DutyHours, on_duty_after

    duty = DutyHours(t(8, 30), t(17, 30))
    # Assigned at 17:00: 30 minutes today, the other 30 tomorrow from 08:30.
    assert accept_deadline(local(2026, 11, 27, 17), duty).due_at == local(2026, 11, 28, 9)
    # Assigned at night: the hour starts when the duty day does.
    assert accept_deadline(local(2026, 11, 27, 22), duty).due_at == local(2026, 11, 28, 9, 30)
    assert accept_deadline(local(2026, 11, 27, 10), duty).due_at == local(2026, 11, 27, 11)
    # Urgent items count wall-clock time; no duty hours means around the clock.
    assert accept_deadline(local(2026, 11, 27, 22), duty, urgent=True).due_at == local(2026, 11, 27, 23)
    assert accept_deadline(local(2026, 11, 27, 22)).due_at == local(2026, 11, 27, 23)
    assert "值班时间 08:30–17:30" in accept_deadline(local(2026, 11, 27, 22), duty).note
    assert on_duty_after(local(2026, 11, 27, 9), timedelta(hours=10), duty) == local(2026, 11, 28, 10)


def test_acceptance_follows_the_weekday_and_holiday_duty_hours():
    from datetime import time as t

    from mediation.calendar import DutyHours

    # Weekdays 08:30–17:30, Saturday mornings only, no duty on Sunday; holidays 10:00–12:00.
    duty = DutyHours(t(8, 30), t(17, 30), weekdays={6: (t(9), t(12)), 7: None})
    # Friday 2026-11-27 17:00: 30 minutes on Friday, 30 on Saturday from 09:00.
    assert accept_deadline(local(2026, 11, 27, 17), duty).due_at == local(2026, 11, 28, 9, 30)
    # Saturday 11:30: 30 minutes on Saturday, Sunday has no duty, Monday from 08:30.
    assert accept_deadline(local(2026, 11, 28, 11, 30), duty).due_at == local(2026, 11, 30, 9)
    cal = WorkCalendar()
    holidays = DutyHours(t(8, 30), t(17, 30), holidays=(t(10), t(12)), holidays_set=True)
    # Thursday 2026-10-01 (National Day, a holiday) 09:00: the holiday hours start at 10:00.
    assert accept_deadline(local(2026, 10, 1, 9), holidays, cal=cal).due_at == local(2026, 10, 1, 11)
    # Saturday 2026-10-10 is an adjusted working day: the ordinary hours.
    assert accept_deadline(local(2026, 10, 10, 8), holidays, cal=cal).due_at == local(2026, 10, 10, 9, 30)
    closed = DutyHours(t(8, 30), t(17, 30), holidays=None, holidays_set=True)
    # No duty through the National Day week: Thursday 2026-10-08 is the next working day.
    assert accept_deadline(local(2026, 9, 30, 17), closed, cal=cal).due_at == local(2026, 10, 8, 9)
    assert "周末及节假日按本所安排" in accept_deadline(local(2026, 9, 30, 17), closed, cal=cal).note
    never = DutyHours(t(8, 30), t(17, 30), weekdays=dict.fromkeys(range(1, 8)))
    assert accept_deadline(local(2026, 11, 27, 17), never).due_at == local(2026, 11, 27, 18)  # wall-clock

"""A walk-in visitor (来访) gets a same-day resolution target (issue 16)."""

from __future__ import annotations

from datetime import datetime, time

from mediation.calendar import STATION_TZ, DutyHours, WorkCalendar, resolve_deadline

DUTY = DutyHours(time(8, 30), time(17, 30))


def local(*args) -> datetime:
    return datetime(*args, tzinfo=STATION_TZ)


def test_a_walk_in_is_due_by_the_end_of_the_days_duty_hours():
    start = local(2025, 6, 10, 9, 15)
    d = resolve_deadline(WorkCalendar(), start, "inquiry", "normal", False, channel="walk_in", duty=DUTY)
    assert d.due_at == local(2025, 6, 10, 17, 30)
    assert d.note.startswith("来访事项：当日办结")
    # the same item by the web form keeps its 3 working days
    web = resolve_deadline(WorkCalendar(), start, "inquiry", "normal", False, channel="web", duty=DUTY)
    assert web.due_at.date() > start.date()


def test_a_late_walk_in_still_gets_two_hours():
    d = resolve_deadline(WorkCalendar(), local(2025, 6, 10, 17), "help", "normal", False, channel="walk_in", duty=DUTY)
    assert d.due_at == local(2025, 6, 10, 19)


def test_urgent_and_mediated_walk_ins_keep_their_own_clocks():
    late = local(2025, 6, 10, 17)
    urgent = resolve_deadline(WorkCalendar(), late, "help", "urgent", False, channel="walk_in", duty=DUTY)
    assert urgent.note.startswith("紧急事项")
    dispute = resolve_deadline(WorkCalendar(), late, "complaint", "normal", True, channel="walk_in", duty=DUTY)
    assert dispute.note.startswith("矛盾纠纷调解")


def test_a_station_without_duty_hours_has_until_midnight():
    d = resolve_deadline(WorkCalendar(), local(2025, 6, 10, 9), "help", "normal", False, channel="walk_in")
    assert d.due_at == local(2025, 6, 10, 23, 59)

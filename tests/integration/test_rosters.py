"""Duty rosters from a weekly pattern against the real database with a controlled "today": the days
published ahead, holidays and rest days from the calendar, exceptions, inactive staff, refusals
that name the field and change nothing, and replicas that publish each change once."""

from __future__ import annotations

import asyncio
import json
from datetime import date, timedelta

import pytest

from fengqiao.directory import upsert_staff
from fengqiao.events import StaffUpserted
from fengqiao.outbox import unit_of_work
from mediation import db
from mediation.app import MIGRATIONS
from mediation.roster_ops import (
    ExceptionIn,
    ShiftIn,
    add_exception,
    materialise,
    preview,
    remove_exception,
    set_pattern,
)
from mediation.rosters import RosterRefused
from tests.integration.helpers import service_schema

TODAY = date(2026, 9, 28)  # a Monday; National Day (Oct 1–7) and an adjusted working Saturday ahead
TEAMS = {"C1": "community", "C2": "community", "N1": "patrol", "N2": "patrol", "LD": None}


@pytest.fixture
async def pool(infra):
    async with service_schema(infra.dsn, "rst", MIGRATIONS) as pool:
        async with pool.acquire() as conn:
            for suffix, team in TEAMS.items():
                role = "leader" if suffix == "LD" else "officer"
                await upsert_staff(
                    conn,
                    StaffUpserted(
                        staff_id=f"KZ01-{suffix}",
                        station="KZ01",
                        name=f"民警{suffix}",
                        role=role,
                        team=team,
                        badge_no=f"01{suffix}",
                    ),
                )
            await upsert_staff(
                conn, StaffUpserted(staff_id="KZ02-C1", station="KZ02", name="外所", role="officer", team="community")
            )
            await db.clocks.upsert_calendar_days(
                conn,
                [(date(2026, 10, d), False, "国庆节") for d in range(1, 8)] + [(date(2026, 10, 10), True, "国庆调休")],
            )
        yield pool


def week(*shifts: tuple[str, str, str], days=range(1, 8)) -> list[ShiftIn]:
    return [
        ShiftIn(staff=f"KZ01-{who}", start=start, end=end, field=f"shifts[{i}]", weekday=d)
        for i, (d, (who, start, end)) in enumerate((d, s) for d in days for s in shifts)
    ]


DAY_AND_NIGHT = (("C1", "08:00", "20:00"), ("C2", "08:00", "20:00"), ("N1", "20:00", "08:00"))


async def put(pool, kind="weekly", shifts=None, allow_gaps=False, today=TODAY):
    async with unit_of_work(pool) as (conn, outbox):
        outcome = await set_pattern(
            conn,
            outbox,
            station="KZ01",
            kind=kind,
            shifts=week(*DAY_AND_NIGHT) if shifts is None else shifts,
            allow_gaps=allow_gaps,
            today=today,
        )
        return outcome, [json.loads(v) for _, _, v, _ in outbox.events]


async def day(pool, d: date) -> list[tuple[str, str, str]]:
    """The day as published: mediation's copy of the directory roster."""
    rows = await pool.fetch(
        "SELECT staff_id, starts, ends FROM roster WHERE station = 'KZ01' AND day = $1 ORDER BY starts, staff_id", d
    )
    return [(r["staff_id"].split("-")[1], f"{r['starts']:%H:%M}", f"{r['ends']:%H:%M}") for r in rows]


async def test_a_pattern_publishes_yesterday_to_two_weeks_ahead_and_a_repeat_publishes_nothing(pool):
    outcome, events = await put(pool)
    assert outcome.published == [TODAY + timedelta(days=n) for n in range(-1, 15)]
    assert {e["type"] for e in events} == {"fengqiao.directory.roster_published"}
    assert [e["data"]["day"] for e in events] == [d.isoformat() for d in outcome.published]
    assert await day(pool, TODAY + timedelta(days=14)) == [
        ("C1", "08:00", "20:00"),
        ("C2", "08:00", "20:00"),
        ("N1", "20:00", "08:00"),
    ]
    again, events = await put(pool)
    assert again.published == [] and events == []
    # the next day the daily run publishes only the day that came into the horizon
    async with unit_of_work(pool) as (conn, outbox):
        assert await materialise(conn, outbox, "KZ01", TODAY + timedelta(days=1)) == [TODAY + timedelta(days=15)]


async def test_days_off_take_the_holiday_pattern_and_an_adjusted_working_saturday_the_weekly_one(pool):
    await put(pool)
    holiday = [ShiftIn("KZ01-N2", "08:00", "20:00", "shifts[0]"), ShiftIn("KZ01-N2", "20:00", "08:00", "shifts[1]")]
    await put(pool, "holiday", holiday)
    weekly = [("C1", "08:00", "20:00"), ("C2", "08:00", "20:00"), ("N1", "20:00", "08:00")]
    assert await day(pool, date(2026, 9, 30)) == weekly  # Wednesday, a working day
    assert await day(pool, date(2026, 10, 1)) == [("N2", "08:00", "20:00"), ("N2", "20:00", "08:00")]  # 国庆节
    assert await day(pool, date(2026, 10, 10)) == weekly  # Saturday, an adjusted working day (调休)
    assert await day(pool, date(2026, 10, 11)) == [("N2", "08:00", "20:00"), ("N2", "20:00", "08:00")]  # Sunday
    async with pool.acquire() as conn:
        days = {d["day"]: d for d in await preview(conn, "KZ01", TODAY, 15)}
    assert days[date(2026, 10, 1)]["pattern"] == "holiday" and not days[date(2026, 10, 1)]["workday"]
    assert days[date(2026, 10, 10)]["pattern"] == "weekly" and all(d["published"] for d in days.values())
    # an empty holiday pattern removes it: days off follow the weekly pattern again
    await put(pool, "holiday", [])
    assert await day(pool, date(2026, 10, 1)) == weekly


async def test_a_holiday_pattern_that_leaves_the_morning_after_a_holiday_uncovered_is_refused(pool):
    await put(pool)
    holiday = [ShiftIn("KZ01-N2", "00:00", "12:00", "shifts[0]"), ShiftIn("KZ01-N2", "12:00", "00:00", "shifts[1]")]
    with pytest.raises(RosterRefused) as refused:
        await put(pool, "holiday", holiday)
    assert refused.value.code == "roster_gap"
    assert "节假日后的周一 00:00–08:00" in refused.value.message


async def test_leave_swap_and_extra_duty_and_inactive_staff(pool):
    await put(pool)
    async with unit_of_work(pool) as (conn, outbox):
        leave_id, outcome = await add_exception(
            conn,
            outbox,
            station="KZ01",
            created_by="KZ01-LD",
            today=TODAY,
            e=ExceptionIn("leave", "01C1", date(2026, 9, 29), date(2026, 9, 30)),  # by badge number
        )
    assert outcome.published == [date(2026, 9, 29), date(2026, 9, 30)] and outcome.warnings == []
    assert await day(pool, date(2026, 9, 29)) == [("C2", "08:00", "20:00"), ("N1", "20:00", "08:00")]
    async with unit_of_work(pool) as (conn, outbox):
        await add_exception(
            conn,
            outbox,
            station="KZ01",
            created_by="KZ01-LD",
            today=TODAY,
            e=ExceptionIn("swap", "KZ01-N1", date(2026, 10, 2), date(2026, 10, 2), to_staff="KZ01-N2"),
        )
        await add_exception(
            conn,
            outbox,
            station="KZ01",
            created_by="KZ01-LD",
            today=TODAY,
            e=ExceptionIn("extra", "KZ01-LD", date(2026, 10, 3), date(2026, 10, 3), start="09:00", end="12:00"),
        )
    assert await day(pool, date(2026, 10, 2)) == [
        ("C1", "08:00", "20:00"),
        ("C2", "08:00", "20:00"),
        ("N2", "20:00", "08:00"),
    ]
    assert ("LD", "09:00", "12:00") in await day(pool, date(2026, 10, 3))
    # extra duty overlapping the person's own shift (N1's night runs into Oct 4 until 08:00)
    async with unit_of_work(pool) as (conn, outbox):
        with pytest.raises(RosterRefused) as refused:
            await add_exception(
                conn,
                outbox,
                station="KZ01",
                created_by="KZ01-LD",
                today=TODAY,
                e=ExceptionIn("extra", "KZ01-N1", date(2026, 10, 4), date(2026, 10, 4), start="07:00", end="09:00"),
            )
    assert refused.value.code == "overlapping_shifts" and refused.value.field == "start"
    # leave of the only night officer leaves hours uncovered: accepted, with the hours as warnings
    async with unit_of_work(pool) as (conn, outbox):
        _, outcome = await add_exception(
            conn,
            outbox,
            station="KZ01",
            created_by="KZ01-LD",
            today=TODAY,
            e=ExceptionIn("leave", "KZ01-N1", date(2026, 10, 5), date(2026, 10, 5)),
        )
    assert "值班空档：2026-10-05（周一） 20:00–24:00" in outcome.warnings
    async with unit_of_work(pool) as (conn, outbox):
        assert await remove_exception(conn, outbox, "KZ01", leave_id, TODAY)
    assert await day(pool, date(2026, 9, 29)) == [
        ("C1", "08:00", "20:00"),
        ("C2", "08:00", "20:00"),
        ("N1", "20:00", "08:00"),
    ]
    # a deactivated officer is never put on duty (the daily run takes them off every day)
    async with pool.acquire() as conn:
        await upsert_staff(
            conn,
            StaffUpserted(
                staff_id="KZ01-C2", station="KZ01", name="民警C2", role="officer", team="community", active=False
            ),
        )
    async with unit_of_work(pool) as (conn, outbox):
        published = await materialise(conn, outbox, "KZ01", TODAY)
    assert len(published) == 16
    for n in range(-1, 15):
        assert "C2" not in [who for who, _, _ in await day(pool, TODAY + timedelta(days=n))]


@pytest.mark.parametrize(
    ("shifts", "code", "field", "words"),
    [
        (
            week(("C1", "08:00", "20:00"), ("N1", "20:00", "08:00"), days=[1, 2, 4, 5, 6, 7]),
            "roster_gap",
            "shifts",
            ["周三 08:00–24:00", "周四 00:00–08:00"],
        ),
        (week(("C1", "08:00", "20:00"), ("N1", "21:00", "08:00")), "roster_gap", "shifts", ["周一 20:00–21:00"]),
        ([ShiftIn("KZ01-X9", "08:00", "20:00", "shifts[0]", 1)], "unknown_staff", "shifts[0].staff", ["KZ01-X9"]),
        (
            [ShiftIn("KZ02-C1", "08:00", "20:00", "shifts[0]", 1)],
            "unknown_staff",  # the same answer as for nobody's id: other stations' staff are not probed
            "shifts[0].staff",
            ["KZ02-C1"],
        ),
        ([ShiftIn("KZ01-C1", "8:00", "20:00", "shifts[0]", 1)], "invalid_time", "shifts[0].start", ["HH:MM"]),
        ([ShiftIn("KZ01-C1", "08:00", "24:00", "shifts[0]", 1)], "invalid_time", "shifts[0].end", ["HH:MM"]),
        (
            week(("C1", "08:00", "20:00"), ("N1", "20:00", "08:00"), ("N1", "06:00", "09:00")),
            "overlapping_shifts",
            "shifts[2]",
            ["重叠"],
        ),
        (
            [ShiftIn("KZ01-C1", "08:00", "20:00", "shifts[0]", 1, team="patrol")],
            "team_mismatch",
            "shifts[0].team",
            ["community"],
        ),
    ],
)
async def test_bad_patterns_are_refused_naming_the_field_and_nothing_changes(pool, shifts, code, field, words):
    await put(pool)
    before = await pool.fetch("SELECT * FROM roster_patterns ORDER BY weekday, starts, staff_id")
    outbox_before = await pool.fetchval("SELECT count(*) FROM outbox")
    with pytest.raises(RosterRefused) as refused:
        await put(pool, shifts=shifts)
    assert (refused.value.code, refused.value.field) == (code, field)
    assert all(w in refused.value.message for w in words), refused.value.message
    assert await pool.fetch("SELECT * FROM roster_patterns ORDER BY weekday, starts, staff_id") == before
    assert await pool.fetchval("SELECT count(*) FROM outbox") == outbox_before


async def test_a_gap_is_accepted_with_allow_gaps_and_comes_back_as_a_warning(pool):
    outcome, _ = await put(pool, shifts=week(("C1", "08:00", "20:00")), allow_gaps=True)
    assert "值班空档：周一 00:00–08:00、20:00–24:00" in outcome.warnings


async def test_two_replicas_publish_each_changed_day_once(pool):
    await put(pool)
    async with pool.acquire() as conn:  # the pattern changes behind the publisher's back (as a calendar load does)
        await db.rosters.replace_pattern(
            conn,
            "KZ01",
            "weekly",
            [(3, "KZ01-N2", 600, 660)]
            + [(d, f"KZ01-{w}", s, e) for d in range(1, 8) for w, s, e in ((("C1", 480, 1200), ("N1", 1200, 480)))],
        )

    async def replica() -> list[date]:
        async with unit_of_work(pool) as (conn, outbox):
            return await materialise(conn, outbox, "KZ01", TODAY)

    first, second = await asyncio.gather(replica(), replica())
    assert sorted(first + second) == [TODAY + timedelta(days=n) for n in range(-1, 15)]
    assert not (first and second)


async def test_leave_and_extra_duty_far_in_the_future_are_refused_not_a_500(pool):
    """9999-12-31 overflowed the day arithmetic (a 500); plans go at most two years ahead."""
    await put(pool)
    for e in (
        ExceptionIn("extra", "KZ01-C1", date(9999, 12, 31), date(9999, 12, 31), start="08:00", end="09:00"),
        ExceptionIn("leave", "KZ01-C1", TODAY + timedelta(days=800), TODAY + timedelta(days=801)),
    ):
        async with unit_of_work(pool) as (conn, outbox):
            with pytest.raises(RosterRefused) as refused:
                await add_exception(conn, outbox, station="KZ01", created_by="KZ01-LD", today=TODAY, e=e)
        assert refused.value.code == "invalid_dates"

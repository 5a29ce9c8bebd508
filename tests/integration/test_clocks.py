"""Deadline timers against the real database with a controllable clock: the right deadlines on
the statutory calendar, each step fired once even with two replicas firing at the same time,
and missed clocks staying missed."""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import datetime, timedelta
from unittest.mock import ANY

import pytest

from fengqiao.db import create_pool, migrate
from fengqiao.events import CaseAssigned
from fengqiao.outbox import unit_of_work
from mediation import db
from mediation.app import MIGRATIONS
from mediation.calendar import STATION_TZ, WorkCalendar
from mediation.cases import perform, start_clocks
from mediation.commands import Accept, Reassign, Reopen, Resolve, Transfer
from mediation.lifecycle import Actor
from mediation.timers import fire_due


def local(*args) -> datetime:
    return datetime(*args, tzinfo=STATION_TZ)


@pytest.fixture
async def pool(infra):
    schema = f"clk_{secrets.token_hex(4)}"
    await migrate(infra.dsn, schema, MIGRATIONS)
    pool = await create_pool(infra.dsn, schema)
    try:
        yield pool
    finally:
        await pool.execute(f"DROP SCHEMA {schema} CASCADE")
        await pool.close()


async def open_case(pool, no: str, assigned_at: datetime, type_="inquiry", urgency="normal") -> None:
    async with pool.acquire() as conn, conn.transaction():
        await db.cases.insert_case(
            conn,
            CaseAssigned(
                tracking_no=no,
                station="KZ01",
                assignee_id="KZ01-P1",
                assignee_role="officer",
                type=type_,
                category="other",
                urgency=urgency,
                needs_mediation=False,
                reason="test",
                submitted_at=assigned_at,
            ),
            assigned_at=assigned_at,
            accept_due_at=assigned_at + timedelta(hours=1),
        )
        await start_clocks(
            conn,
            {"tracking_no": no, "station": "KZ01", "type": type_, "urgency": urgency, "needs_mediation": False},
            assigned_at,
            WorkCalendar(),
        )


async def fire(pool, now: datetime) -> tuple[list, list]:
    async with unit_of_work(pool) as (conn, outbox):
        breaches = await fire_due(conn, outbox, now, WorkCalendar())
        events = [(topic, json.loads(value)["type"]) for topic, _, value, _ in outbox.events]
    return breaches, events


async def test_deadlines_follow_the_holiday_calendar_and_each_step_fires_once_across_replicas(pool):
    # Wednesday 2026-09-30 10:00, an inquiry: 3 working days over National Day -> Saturday Oct 10,
    # an adjusted working day.
    await open_case(pool, "FQCLOCK001", local(2026, 9, 30, 10))
    clocks = {r["clock"]: r for r in await pool.fetch("SELECT * FROM case_clocks")}
    assert clocks["accept"]["due_at"] == local(2026, 9, 30, 11)
    assert clocks["resolve"]["due_at"] == local(2026, 10, 10, 10)
    assert "3个工作日" in clocks["resolve"]["note"]

    # Two replicas fire at the same instants: every step happens exactly once.
    all_events: list = []
    all_breaches: list = []
    for now in (
        local(2026, 9, 30, 10, 50),
        local(2026, 9, 30, 11, 5),
        local(2026, 10, 8, 9),
        local(2026, 10, 10, 10, 1),
        local(2026, 10, 16, 10, 1),
        local(2026, 10, 20),
    ):
        results = await asyncio.gather(fire(pool, now), fire(pool, now))
        for breaches, events in results:
            all_breaches += breaches
            all_events += events
    types = [t for _, t in all_events]
    assert types.count("fengqiao.staff.reminder") == 2  # accept (10:45) and resolve
    assert types.count("fengqiao.case.overdue") == 2  # accept at 11:00, resolve on Oct 10
    assert all_breaches == [("KZ01", "accept"), ("KZ01", "resolve")]
    # Supervision 5 working days after each missed deadline: accept (Sep 30 11:00 -> Oct 13,
    # after the holiday and counting Saturday Oct 10) and resolve (Oct 10 -> Oct 16).
    clocks = {r["clock"]: r for r in await pool.fetch("SELECT * FROM case_clocks")}
    assert clocks["accept"]["supervise_at"] == local(2026, 10, 13, 11)
    assert clocks["resolve"]["supervise_at"] == local(2026, 10, 16, 10)
    escalations = [t for t in types if t == "fengqiao.case.escalated"]
    assert len(escalations) == 4  # leader twice (at each miss), bureau twice (supervision)
    assert clocks["resolve"]["breached_at"] is not None


async def test_a_clock_done_in_time_never_fires_and_a_missed_one_stays_missed(pool):
    await open_case(pool, "FQCLOCK002", local(2026, 11, 27, 10), urgency="urgent")
    async with pool.acquire() as conn:
        await db.clocks.stop_clock(conn, "FQCLOCK002", "accept", local(2026, 11, 27, 10, 20))
    breaches, events = await fire(pool, local(2026, 11, 27, 13))  # resolve due at 12:00 (urgent: 2 h)
    assert breaches == [("KZ01", "resolve")]
    async with pool.acquire() as conn:
        await db.clocks.stop_clock(conn, "FQCLOCK002", "resolve", local(2026, 11, 27, 14))
    row = await pool.fetchrow("SELECT * FROM case_clocks WHERE clock = 'resolve'")
    assert row["done_at"] and row["breached_at"]  # resolved late: still a miss
    breaches, events = await fire(pool, local(2026, 12, 31))
    assert breaches == [] and events == []  # done clocks are never supervised


async def test_a_stations_duty_hours_shape_the_acceptance_clock(pool):
    await pool.execute("INSERT INTO station_duty_hours (station, starts, ends) VALUES ('KZ01', '08:30', '17:30')")
    await open_case(pool, "FQCLOCK003", local(2026, 11, 27, 22))
    await open_case(pool, "FQCLOCK004", local(2026, 11, 27, 22), urgency="urgent")
    due = {r["tracking_no"]: r["due_at"] for r in await pool.fetch("SELECT * FROM case_clocks WHERE clock = 'accept'")}
    assert due["FQCLOCK003"] == local(2026, 11, 28, 9, 30)  # the hour starts with the duty day
    assert due["FQCLOCK004"] == local(2026, 11, 27, 23)  # urgent: wall-clock


async def act(pool, no: str, actor, command, now: datetime) -> None:
    async with unit_of_work(pool) as (conn, outbox):
        await perform(conn, outbox, tracking_no=no, actor=actor, command=command, now=now)


async def test_a_miss_stays_a_miss_through_reassign_transfer_and_reopen_and_the_rates_count_it(pool):
    await pool.execute("INSERT INTO stations (code, name) VALUES ('KZ01', '矿中所'), ('KZ02', '新华所')")
    await pool.execute(
        "INSERT INTO staff (staff_id, station, name, role) VALUES ('KZ01-LD', 'KZ01', '所长', 'leader'), "
        "('KZ01-P2', 'KZ01', '民警二', 'officer'), ('KZ02-LD', 'KZ02', '所长', 'leader'), "
        "('KZ02-P1', 'KZ02', '民警一', 'officer')"
    )
    kz01, kz02 = Actor("KZ01-LD", "leader", "KZ01"), Actor("KZ02-LD", "leader", "KZ02")
    no = "FQCLOCK005"
    await open_case(pool, no, local(2026, 11, 23, 10))  # Monday; an inquiry: resolve by Thursday 10:00
    assert await fire(pool, local(2026, 11, 23, 11, 5)) == ([("KZ01", "accept")], ANY)  # not accepted in time
    await act(pool, no, kz01, Reassign(assignee_id="KZ01-P2"), local(2026, 11, 23, 11, 10))
    await act(pool, no, kz01, Transfer(to_station="KZ02"), local(2026, 11, 23, 11, 15))
    await act(pool, no, kz02, Accept(), local(2026, 11, 23, 11, 20))  # the new clocks are met...
    assert (await fire(pool, local(2026, 11, 26, 10, 5)))[0] == [("KZ02", "resolve")]
    await act(pool, no, kz02, Resolve(summary="已答复。"), local(2026, 11, 26, 11))
    await act(pool, no, kz02, Reopen(reason="答复不完整"), local(2026, 11, 26, 12))
    await act(pool, no, kz02, Reassign(assignee_id="KZ02-P1"), local(2026, 11, 26, 12, 5))
    officer = Actor("KZ02-P1", "officer", "KZ02")
    await act(pool, no, officer, Accept(), local(2026, 11, 26, 12, 10))
    await act(pool, no, officer, Resolve(summary="已补充答复。"), local(2026, 11, 26, 13))  # ...and this one

    async with pool.acquire() as conn:
        (rates,) = await db.clocks.station_rates(conn, local(2026, 11, 27), 30)
    assert rates["station"] == "KZ02"
    assert rates["response"] == 0 and rates["on_time"] == 0  # both misses counted, once
    clocks = {r["clock"]: r for r in await pool.fetch("SELECT * FROM case_clocks WHERE tracking_no = $1", no)}
    assert clocks["accept"]["missed_before_at"] == local(2026, 11, 23, 11, 5)
    assert clocks["resolve"]["missed_before_at"] == local(2026, 11, 26, 10, 5)

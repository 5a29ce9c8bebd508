"""The resolution clock waits for the citizen (issue 13, item 2), driven by the controllable clock of
the clock tests: suspended from the request for information until the citizen's answer (or the
officer resumes it), never reminded or breached meanwhile, its deadline moved by the time waited,
suspended once however often the officer asks, and a miss before the wait kept."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from fengqiao.events import CitizenAdded
from fengqiao.outbox import unit_of_work
from fengqiao.pii import PiiCipher, new_key_setting
from mediation.additions import record_addition
from mediation.app import MIGRATIONS
from mediation.commands import Accept, RequestInfo, ResumeClock
from mediation.lifecycle import Actor, Rejected
from tests.integration.helpers import service_schema
from tests.integration.test_clocks import act, fire, local, open_case

OFFICER = Actor("KZ01-P1", "officer", "KZ01")


@pytest.fixture
async def pool(infra):
    async with service_schema(infra.dsn, "wait", MIGRATIONS) as pool:
        yield pool


CIPHER = PiiCipher.from_setting(new_key_setting("test"))


async def resolve_clock(pool, no: str):
    return await pool.fetchrow("SELECT * FROM case_clocks WHERE tracking_no = $1 AND clock = 'resolve'", no)


async def history(pool, no: str) -> list[str]:
    return [r["reason"] for r in await pool.fetch("SELECT reason FROM case_history WHERE tracking_no = $1", no)]


async def citizen_answers(pool, no: str, at, channel="web", answers_request=True) -> list[str]:
    """The citizen's answer arrives from intake; the types of the events it causes."""
    data = CitizenAdded(
        tracking_no=no,
        station="KZ01",
        channel=channel,
        text="补充：监控在东门",
        answers_request=answers_request,
        added_at=at,
    )
    async with unit_of_work(pool) as (conn, outbox):
        await record_addition(conn, outbox, data, event_id=f"ev-{no}-{at.isoformat()}", cipher=CIPHER)
        return [json.loads(value)["type"] for _, _, value, _ in outbox.events]


async def test_the_resolution_clock_waits_for_the_citizen_and_its_deadline_moves_by_the_wait(pool):
    no = "FQWAIT0001"
    await open_case(pool, no, local(2026, 11, 23, 10))  # Monday; an inquiry: resolve by Thursday 10:00
    await act(pool, no, OFFICER, Accept(), local(2026, 11, 23, 10, 10))
    assert (await resolve_clock(pool, no))["due_at"] == local(2026, 11, 26, 10)

    await act(pool, no, OFFICER, RequestInfo(text="请提供事发时间"), local(2026, 11, 24, 10))
    await act(pool, no, OFFICER, RequestInfo(text="另请提供照片"), local(2026, 11, 24, 12))  # while waiting
    clock = await resolve_clock(pool, no)
    assert clock["suspended_at"] == local(2026, 11, 24, 10)  # the second request did not suspend again
    assert (await history(pool, no)).count("等待群众补充材料，办理时限暂停") == 1

    # Past the reminder (three quarters) and the deadline while waiting: nothing fires.
    assert await fire(pool, local(2026, 11, 26, 10, 5)) == ([], [])

    events = await citizen_answers(pool, no, local(2026, 11, 27, 10))  # after three days of waiting
    assert events == ["fengqiao.staff.citizen_added"]  # the holder is told
    clock = await resolve_clock(pool, no)
    assert clock["suspended_at"] is None and clock["suspended_seconds"] == timedelta(days=3).total_seconds()
    assert clock["due_at"] == local(2026, 11, 29, 10) and clock["breached_at"] is None
    steps = await history(pool, no)
    assert "群众已补充材料（进度查询页）" in steps
    assert "群众已补充，办理时限恢复，办结期限顺延至 2026-11-29 10:00" in steps

    # It runs again: reminded before, breached at the moved deadline.
    breaches, events = await fire(pool, local(2026, 11, 29, 10, 5))
    assert breaches == [("KZ01", "resolve")]
    assert "fengqiao.case.overdue" in [t for _, t in events]


async def test_a_miss_before_the_wait_stays_a_miss_and_the_officer_may_resume_the_clock(pool):
    no = "FQWAIT0002"
    await open_case(pool, no, local(2026, 11, 23, 10))
    await act(pool, no, OFFICER, Accept(), local(2026, 11, 23, 10, 10))
    with pytest.raises(Rejected) as refused:  # nothing to resume while the clock runs
        await act(pool, no, OFFICER, ResumeClock(), local(2026, 11, 23, 11))
    assert refused.value.code == "not_waiting"
    assert (await fire(pool, local(2026, 11, 26, 10, 5)))[0] == [("KZ01", "resolve")]  # missed

    await act(pool, no, OFFICER, RequestInfo(text="请提供照片"), local(2026, 11, 26, 11))
    # a follow-up call is a note: the clock keeps waiting until the officer resumes it
    assert await citizen_answers(pool, no, local(2026, 11, 26, 15), "hotline", answers_request=False) == [
        "fengqiao.staff.citizen_added"
    ]
    assert (await resolve_clock(pool, no))["suspended_at"] == local(2026, 11, 26, 11)
    await act(pool, no, OFFICER, ResumeClock(reason="群众已电话说明"), local(2026, 11, 26, 16))
    clock = await resolve_clock(pool, no)
    assert clock["suspended_at"] is None and clock["due_at"] == local(2026, 11, 26, 15)  # moved by 5 hours
    assert clock["breached_at"] == local(2026, 11, 26, 10, 5)  # the miss stays a miss
    assert "群众来电跟进，已记入本事项" in await history(pool, no)
    assert "办理时限恢复，办结期限顺延至 2026-11-26 15:00" in await history(pool, no)
    assert (await fire(pool, local(2026, 11, 26, 17)))[0] == []  # a miss fires once

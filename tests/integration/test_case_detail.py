"""What the case detail page reads (issue 16, migration 0021), on a real PostgreSQL: triage's
reasons and the early warnings as mediation's handlers keep them, the same reporter's earlier cases,
each visible only to the case's own station (row-level security), and a stale form refused."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fengqiao.auth import Principal
from fengqiao.events import AlertRaised, CaseTriaged, EventTypes, TriageRequested, new_event
from fengqiao.outbox import unit_of_work
from fengqiao.pii import PiiCipher, new_key_setting
from mediation import db
from mediation.app import MIGRATIONS
from mediation.commands import Accept
from mediation.commands_api import StaleForm, unchanged_since
from mediation.handlers import on_alert_raised, on_case_triaged, on_triage_requested
from mediation.lifecycle import Actor
from mediation.unit import staff_unit
from tests.integration.helpers import service_schema
from tests.integration.test_clocks import act, local, open_case

CIPHER = PiiCipher.from_setting(new_key_setting("test"))
KZ01 = Principal(token_id="t1", role="officer", station="KZ01", staff_id="KZ01-P1")
KZ02 = Principal(token_id="t2", role="leader", station="KZ02", staff_id="KZ02-LD")


@pytest.fixture
async def pool(infra):
    async with service_schema(infra.dsn, "detail", MIGRATIONS) as pool:
        yield pool


async def handle(pool, handler, event) -> None:
    async with unit_of_work(pool) as (conn, outbox):
        await handler(event, conn, outbox)


async def file_words(pool, no: str, at, reporter_key: str | None) -> None:
    data = TriageRequested(
        tracking_no=no, station="KZ01", channel="web", content="内容", submitted_at=at, reporter_key=reporter_key
    )
    async with unit_of_work(pool) as (conn, outbox):
        await on_triage_requested(new_event(EventTypes.TRIAGE_REQUESTED, data, source="t"), conn, outbox, cipher=CIPHER)


async def test_reasons_alerts_and_the_reporters_earlier_cases_are_kept_for_the_station_only(pool):
    day = local(2026, 11, 23, 10)
    for i, no in enumerate(("FQDET00001", "FQDET00002", "FQDET00003")):
        await file_words(pool, no, day + timedelta(hours=i), "key-a" if no != "FQDET00003" else "key-b")
        await open_case(pool, no, day + timedelta(hours=i))
        await pool.execute("INSERT INTO case_access (tracking_no, station) VALUES ($1, 'KZ01')", no)
    triaged = CaseTriaged(
        tracking_no="FQDET00002",
        station="KZ01",
        type="complaint",
        category="noise",
        urgency="normal",
        needs_mediation=False,
        confidence=0.62,
        model_version="m1",
        reasons=["rule:category=noise:noise#1", "model:category=noise:p=0.62"],
        submitted_at=day,
    )
    await handle(pool, on_case_triaged, new_event(EventTypes.CASE_TRIAGED, triaged, source="triage"))
    await handle(pool, on_case_triaged, new_event(EventTypes.CASE_TRIAGED, triaged, source="triage"))  # redelivered
    alert = AlertRaised(
        alert_id="AL-1",
        station="KZ01",
        kind="cluster",
        level="yellow",
        category="noise",
        members=["FQDET00001", "FQDET00002"],
        reporters=3,
        window_hours=24,
        explanation="同一地点 24 小时内 3 人反映",
        raised_at=day,
    )
    await handle(pool, on_alert_raised, new_event(EventTypes.ALERT_RAISED, alert, source="triage"))
    risen = alert.model_copy(update={"level": "orange", "raised_at": day + timedelta(hours=1)})
    await handle(pool, on_alert_raised, new_event(EventTypes.ALERT_RAISED, risen, source="triage"))

    async with staff_unit(pool, KZ01) as (conn, _):
        t = await db.detail.triage(conn, "FQDET00002")
        alerts = await db.detail.alerts_of(conn, "FQDET00002")
        earlier = await db.detail.earlier_of_reporter(conn, "FQDET00002")
        assert await db.detail.earlier_of_reporter(conn, "FQDET00001") == []  # nothing before the first
    assert t is not None and t["reasons"] == ["rule:category=noise:noise#1", "model:category=noise:p=0.62"]
    assert [(a["alert_id"], a["level"]) for a in alerts] == [("AL-1", "orange")]  # the latest level, once
    assert [r["tracking_no"] for r in earlier] == ["FQDET00001"]  # not FQDET00003: another reporter
    async with staff_unit(pool, KZ02) as (conn, _):
        assert await db.detail.triage(conn, "FQDET00002") is None
        assert await db.detail.alerts_of(conn, "FQDET00002") == []
        assert await db.detail.earlier_of_reporter(conn, "FQDET00002") == []


async def test_a_form_rendered_before_a_change_is_stale(pool):
    no = "FQDET00009"
    await open_case(pool, no, local(2026, 11, 23, 10))
    await pool.execute("INSERT INTO case_access (tracking_no, station) VALUES ($1, 'KZ01')", no)
    async with staff_unit(pool, KZ01) as (conn, _):
        version = await db.detail.version(conn, no)
        await unchanged_since(conn, no, version)  # nothing since: no refusal
    await act(pool, no, Actor("KZ01-P1", "officer", "KZ01"), Accept(), local(2026, 11, 23, 10, 5))
    async with staff_unit(pool, KZ01) as (conn, _):
        with pytest.raises(StaleForm) as stale:
            await unchanged_since(conn, no, version)
    assert [s["event"] for s in stale.value.steps] == ["accepted"]

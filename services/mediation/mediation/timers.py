"""Deadline timers: reminders before a deadline, escalation to the leader at it, bureau
supervision (督办) five working days later. Stored in `case_clocks`, never only in memory; each
step fires once across replicas (rows claimed FOR UPDATE SKIP LOCKED, stamped in the same
transaction as the events). `now` is a parameter so tests drive the clock."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import asyncpg

from fengqiao.constants import MEDIATION_CLOCK_SOURCE as SOURCE
from fengqiao.events import CaseUpdated, EventTypes, StaffReminder, Topics, new_event
from fengqiao.outbox import Outbox
from mediation import db
from mediation.calendar import WorkCalendar, supervision_at

ACTOR = "system:clock"


async def fire_due(conn: asyncpg.Connection, outbox: Outbox, now: datetime, cal: WorkCalendar) -> list[tuple[str, str]]:
    """Fire every due step; returns the (station, clock) of each deadline missed now."""
    breaches: list[tuple[str, str]] = []
    for r in await db.clocks.claim_due_clocks(conn, now):
        if r["reminded_at"] is None and r["remind_at"] <= now:
            await _remind(conn, outbox, r, now)
        if r["breached_at"] is None and r["due_at"] <= now:
            await _breach(conn, outbox, r, now, cal)
            breaches.append((r["station"], r["clock"]))
        elif (
            r["breached_at"] is not None
            and r["supervised_at"] is None
            and r["supervise_at"] is not None
            and r["supervise_at"] <= now
        ):
            await _supervise(conn, outbox, r, now)
    await _followup_reminders(conn, outbox, now)
    return breaches


async def _remind(conn: asyncpg.Connection, outbox: Outbox, r: asyncpg.Record, now: datetime) -> None:
    """Three quarters of the time gone: the holder is reminded (unless the deadline has passed)."""
    no, clock, station = r["tracking_no"], r["clock"], r["station"]
    await db.clocks.mark_clock(conn, no, clock, reminded_at=now)
    if r["due_at"] > now and r["assignee_id"]:
        outbox.add(
            Topics.STAFF_REMINDERS,
            new_event(
                EventTypes.STAFF_REMINDER,
                StaffReminder(
                    tracking_no=no,
                    station=station,
                    recipient_id=r["assignee_id"],
                    clock=clock,
                    due_at=r["due_at"],
                ),
                source=SOURCE,
                subject=no,
                stationid=station,
            ),
        )


async def _breach(
    conn: asyncpg.Connection, outbox: Outbox, r: asyncpg.Record, now: datetime, cal: WorkCalendar
) -> None:
    """The deadline is missed: marked, escalated to the leader, supervision scheduled."""
    no, clock, station = r["tracking_no"], r["clock"], r["station"]
    await db.clocks.mark_clock(conn, no, clock, breached_at=now, supervise_at=supervision_at(cal, r["due_at"]))
    await db.cases.mark_escalated(conn, no, now)
    await db.cases.add_history(
        conn,
        no,
        at=now,
        status=r["status"],
        actor=ACTOR,
        reason=f"{clock} 时限已过（{r['due_at'].isoformat()}），上报所领导",
        event="overdue",
        assignee_id=r["assignee_id"],
    )
    steps: tuple[tuple[str, Literal["leader"] | None], ...] = (("overdue", None), ("escalated", "leader"))
    for event, level in steps:
        outbox.add(
            Topics.CASE_EVENTS,
            new_event(
                f"fengqiao.case.{event}",
                CaseUpdated(
                    tracking_no=no,
                    station=station,
                    status=r["status"],
                    assignee_id=r["assignee_id"],
                    actor_id=ACTOR,
                    at=now,
                    clock=clock,
                    due_at=r["due_at"],
                    level=level,
                ),
                source=SOURCE,
                subject=no,
                stationid=station,
            ),
        )


async def _supervise(conn: asyncpg.Connection, outbox: Outbox, r: asyncpg.Record, now: datetime) -> None:
    """督办: still not done five working days after the miss; the bureau supervises."""
    no, clock, station = r["tracking_no"], r["clock"], r["station"]
    await db.clocks.mark_clock(conn, no, clock, supervised_at=now)
    await db.cases.add_history(
        conn,
        no,
        at=now,
        status=r["status"],
        actor=ACTOR,
        reason=f"{clock} 超时5个工作日仍未完成，分局督办",
        event="escalated",
        assignee_id=r["assignee_id"],
    )
    outbox.add(
        Topics.CASE_EVENTS,
        new_event(
            EventTypes.CASE_ESCALATED,
            CaseUpdated(
                tracking_no=no,
                station=station,
                status=r["status"],
                assignee_id=r["assignee_id"],
                actor_id=ACTOR,
                at=now,
                clock=clock,
                due_at=r["due_at"],
                level="bureau",
            ),
            source=SOURCE,
            subject=no,
            stationid=station,
        ),
    )


async def _followup_reminders(conn: asyncpg.Connection, outbox: Outbox, now: datetime) -> None:
    """Agreement follow-up: remind the mediator of performance checks and of the 30-day window
    for court confirmation (司法确认)."""
    for r in await db.records.claim_due_followups(conn, now):
        await db.records.mark_followup_reminded(conn, r["followup_id"], now)
        outbox.add(
            Topics.STAFF_REMINDERS,
            new_event(
                EventTypes.STAFF_REMINDER,
                StaffReminder(
                    tracking_no=r["tracking_no"],
                    station=r["station"],
                    recipient_id=r["mediator_id"],
                    clock=r["kind"],
                    due_at=r["due_at"],
                ),
                source=SOURCE,
                subject=r["tracking_no"],
                stationid=r["station"],
            ),
        )

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
    clock = r["clock"]
    await db.clocks.mark_clock(
        conn, r["tracking_no"], clock, breached_at=now, supervise_at=supervision_at(cal, r["due_at"])
    )
    await db.cases.mark_escalated(conn, r["tracking_no"], now)
    reason = f"{clock} 时限已过（{r['due_at'].isoformat()}），上报所领导"
    await _clock_step(
        conn, outbox, r, now, reason, history_event="overdue", public=(("overdue", None), ("escalated", "leader"))
    )


async def _supervise(conn: asyncpg.Connection, outbox: Outbox, r: asyncpg.Record, now: datetime) -> None:
    """督办: still not done five working days after the miss; the bureau supervises."""
    await db.clocks.mark_clock(conn, r["tracking_no"], r["clock"], supervised_at=now)
    reason = f"{r['clock']} 超时5个工作日仍未完成，分局督办"
    await _clock_step(conn, outbox, r, now, reason, history_event="escalated", public=(("escalated", "bureau"),))


async def _clock_step(
    conn: asyncpg.Connection,
    outbox: Outbox,
    r: asyncpg.Record,
    now: datetime,
    reason: str,
    *,
    history_event: str,
    public: tuple[tuple[str, Literal["leader", "bureau"] | None], ...],
) -> None:
    """A step the clock took on a case: one entry in its history, and the public events (step, level)."""
    no, station = r["tracking_no"], r["station"]
    await db.cases.add_history(
        conn,
        no,
        at=now,
        status=r["status"],
        actor=ACTOR,
        reason=reason,
        event=history_event,
        assignee_id=r["assignee_id"],
    )
    for step, level in public:
        outbox.add(
            Topics.CASE_EVENTS,
            new_event(
                f"fengqiao.case.{step}",
                CaseUpdated(
                    tracking_no=no,
                    station=station,
                    status=r["status"],
                    assignee_id=r["assignee_id"],
                    actor_id=ACTOR,
                    at=now,
                    clock=r["clock"],
                    due_at=r["due_at"],
                    level=level,
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

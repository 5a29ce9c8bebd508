"""Mediation's event handlers."""

from __future__ import annotations

import asyncpg

from fengqiao.events import CaseAssigned, CaseMerged, CloudEvent, EventTypes, SurveyAnswered
from fengqiao.metrics import Metrics
from fengqiao.outbox import Outbox
from mediation import db
from mediation.calendar import accept_deadline
from mediation.cases import calendar, perform, start_clocks
from mediation.lifecycle import Actor, Rejected


async def on_case_assigned(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox) -> None:
    """A new case: its acceptance and resolution clocks start at the assignment."""
    data = event.payload(CaseAssigned)
    if await db.open_case(conn, data, assigned_at=event.time, accept_due_at=accept_deadline(event.time).due_at):
        await start_clocks(conn, {"tracking_no": data.tracking_no, "station": data.station, "type": data.type,
                                  "urgency": data.urgency, "needs_mediation": data.needs_mediation}, event.time,
                           await calendar(conn))


async def on_case_merged(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox) -> None:
    await db.record_duplicate(conn, event.payload(CaseMerged), event.time)


async def on_survey_answered(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox) -> None:
    """The citizen answered the return-visit survey: visited, or back to the leader when
    dissatisfied (the reason is kept in the history)."""
    data = event.payload(SurveyAnswered)
    row = await db.get_case(conn, data.tracking_no)
    if row is None:
        return
    try:
        await perform(conn, outbox, tracking_no=data.tracking_no, actor=Actor("citizen:survey", "citizen", row["station"]),
                      command="survey", args={"result": data.result, "reason": data.reason}, now=event.time)
    except Rejected:
        return  # e.g. answered twice, or the case is still open: the answer stays in intake


def handlers(metrics: Metrics) -> dict:
    return {EventTypes.CASE_ASSIGNED: on_case_assigned, EventTypes.CASE_MERGED: on_case_merged,
            EventTypes.SURVEY_ANSWERED: on_survey_answered}

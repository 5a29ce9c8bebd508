"""Triage's event handlers."""

from __future__ import annotations

from datetime import datetime, timezone
from functools import partial
from zoneinfo import ZoneInfo

import asyncpg

from fengqiao.directory import READ_MODEL_HANDLERS
from fengqiao.events import CaseAssigned, CaseTriaged, CloudEvent, EventTypes, Topics, TriageRequested, new_event
from fengqiao.metrics import Metrics
from fengqiao.outbox import Outbox
from triage import db
from triage.domain import choose_assignee, classify

SOURCE = "/fengqiao/triage"
STATION_TZ = ZoneInfo("Asia/Shanghai")


async def on_triage_requested(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox, *,
                              metrics: Metrics) -> None:
    data: TriageRequested = event.payload()
    c = classify(data.title, data.content)
    await db.record_decision(conn, data.tracking_no, data.station, c, data.submitted_at)
    now = datetime.now(timezone.utc)
    candidates = await db.candidates(conn, data.station, now.astimezone(STATION_TZ))
    a = choose_assignee(c, candidates)
    await db.record_assignment(conn, data.tracking_no, data.station, a)

    common = dict(source=SOURCE, subject=data.tracking_no, stationid=data.station, correlationid=event.correlationid)
    outbox.add(Topics.CASE_EVENTS, new_event(EventTypes.CASE_TRIAGED, CaseTriaged(
        tracking_no=data.tracking_no, station=data.station, type=c.type, category=c.category, urgency=c.urgency,
        needs_mediation=c.needs_mediation, confidence=c.confidence, model_version=c.model_version,
        reasons=c.reasons, submitted_at=data.submitted_at,
    ), **common))
    outbox.add(Topics.CASE_EVENTS, new_event(EventTypes.CASE_ASSIGNED, CaseAssigned(
        tracking_no=data.tracking_no, station=data.station, assignee_id=a.assignee_id,
        assignee_role=a.assignee_role, team=a.team, type=c.type, category=c.category, urgency=c.urgency,
        needs_mediation=c.needs_mediation, reason=a.reason, flagged=a.flagged, submitted_at=data.submitted_at,
    ), **common))
    elapsed = (now - data.submitted_at).total_seconds()
    outbox.after_commit(lambda: (metrics.stage_seconds.labels(stage="triaged").observe(elapsed),
                                 metrics.stage_seconds.labels(stage="assigned").observe(elapsed)))


def handlers(metrics: Metrics) -> dict:
    """The HANDLERS table: event type -> handler, dependencies bound."""
    return {
        EventTypes.TRIAGE_REQUESTED: partial(on_triage_requested, metrics=metrics),
        **READ_MODEL_HANDLERS,
    }

"""Intake's event handlers: the ingress topic, and case events that keep the citizen's view current."""

from __future__ import annotations

from functools import partial

import asyncpg

from fengqiao.directory import READ_MODEL_HANDLERS
from fengqiao.events import CaseAssigned, CaseMerged, CaseTriaged, CloudEvent, EventTypes, PoisonMessage
from fengqiao.metrics import Metrics
from fengqiao.outbox import Outbox
from fengqiao.pii import BlindIndex, PiiCipher
from intake import db
from intake.domain import TIMELINE_NOTES
from intake.submissions import AlreadyAccepted, UnknownStation, accept_submission


async def on_feedback_submitted(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox, *,
                                metrics: Metrics, cipher: PiiCipher, index: BlindIndex) -> None:
    """Another bureau system published feedback on the ingress topic."""
    data = event.payload()
    try:
        await accept_submission(conn, outbox, data, cipher=cipher, index=index, ingress_source=event.source,
                                ingress_id=event.id, correlation_id=event.correlationid)
    except AlreadyAccepted:
        return  # e.g. through POST /api/v1/events first: (source, id) is the identity
    except UnknownStation as exc:
        raise PoisonMessage("unknown_station", exc.station) from exc
    outbox.after_commit(metrics.feedback_received.labels(station=data.station, channel=data.channel).inc)


async def on_case_triaged(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox) -> None:
    data: CaseTriaged = event.payload()
    await db.record_progress(conn, data.tracking_no, "triaged", event.time, TIMELINE_NOTES["triaged"], event.id,
                             type=data.type, category=data.category, urgency=data.urgency)


async def on_case_assigned(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox) -> None:
    data: CaseAssigned = event.payload()
    await db.record_progress(conn, data.tracking_no, "assigned", event.time, TIMELINE_NOTES["assigned"], event.id,
                             assignee_id=data.assignee_id)


async def on_case_merged(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox) -> None:
    """A repeat of an open case: the citizen keeps their tracking number and sees the merge."""
    data: CaseMerged = event.payload()
    await db.record_progress(conn, data.tracking_no, "merged", event.time, TIMELINE_NOTES["merged"], event.id)


async def on_station_upserted(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox, *, metrics: Metrics) -> None:
    await READ_MODEL_HANDLERS[EventTypes.STATION_UPSERTED](event, conn, outbox)
    code = event.payload().code
    outbox.after_commit(lambda: metrics.init_station_series([code]))


def make_handlers(cipher: PiiCipher, index: BlindIndex):
    """The HANDLERS table (event type -> handler) with this process's dependencies bound."""

    def handlers(metrics: Metrics) -> dict:
        return {
            EventTypes.FEEDBACK_SUBMITTED: partial(on_feedback_submitted, metrics=metrics, cipher=cipher, index=index),
            EventTypes.CASE_TRIAGED: on_case_triaged,
            EventTypes.CASE_ASSIGNED: on_case_assigned,
            EventTypes.CASE_MERGED: on_case_merged,
            **READ_MODEL_HANDLERS,
            EventTypes.STATION_UPSERTED: partial(on_station_upserted, metrics=metrics),
        }

    return handlers

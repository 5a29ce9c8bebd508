"""Intake's event handlers: the ingress topic, and case events that keep the citizen's view current."""

from __future__ import annotations

from functools import partial
from typing import Literal

import asyncpg

from fengqiao.constants import INTAKE_SOURCE
from fengqiao.directory import READ_MODEL_HANDLERS
from fengqiao.events import (
    CaseAccessChanged,
    CaseAssigned,
    CaseMerged,
    CaseTriaged,
    CaseUpdated,
    CitizenMessageRequested,
    CitizenUpdate,
    CloudEvent,
    EventTypes,
    FeedbackSubmitted,
    PoisonMessage,
    StationUpserted,
    Topics,
    new_event,
)
from fengqiao.metrics import Metrics
from fengqiao.outbox import Outbox
from fengqiao.pii import BlindIndex, PiiCipher, Sealed
from intake import db
from intake.domain import CITIZEN_VISIBLE, STAFF_VISIT_NOTES, TIMELINE_NOTES
from intake.submissions import AlreadyAccepted, UnknownStation, accept_submission


async def on_feedback_submitted(
    event: CloudEvent,
    conn: asyncpg.Connection,
    outbox: Outbox,
    *,
    metrics: Metrics,
    cipher: PiiCipher,
    index: BlindIndex,
) -> None:
    """Another bureau system published feedback on the ingress topic."""
    data = event.payload(FeedbackSubmitted)
    try:
        await accept_submission(
            conn,
            outbox,
            data,
            cipher=cipher,
            index=index,
            ingress_source=event.source,
            ingress_id=event.id,
            correlation_id=event.correlationid,
            publish_refs=True,
        )
    except AlreadyAccepted:
        return  # e.g. through POST /api/v1/events first: (source, id) is the identity
    except UnknownStation as exc:
        raise PoisonMessage(exc.code, exc.station) from exc
    outbox.after_commit(metrics.feedback_received.labels(station=data.station, channel=data.channel).inc)


async def on_case_triaged(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox) -> None:
    data = event.payload(CaseTriaged)
    await db.record_progress(
        conn,
        data.tracking_no,
        "triaged",
        event.time,
        TIMELINE_NOTES["triaged"],
        event.id,
        type=data.type,
        category=data.category,
        urgency=data.urgency,
    )


async def on_case_assigned(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox) -> None:
    data = event.payload(CaseAssigned)
    await db.record_progress(
        conn,
        data.tracking_no,
        "assigned",
        event.time,
        TIMELINE_NOTES["assigned"],
        event.id,
        assignee_id=data.assignee_id,
    )


async def on_case_merged(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox) -> None:
    """A repeat of an open case: the citizen keeps their tracking number and sees the merge."""
    data = event.payload(CaseMerged)
    await db.record_progress(conn, data.tracking_no, "merged", event.time, TIMELINE_NOTES["merged"], event.id)


async def on_case_updated(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox) -> None:
    """A lifecycle step the citizen should see on the tracking page."""
    data = event.payload(CaseUpdated)
    step = event.type.rsplit(".", 1)[1]
    status = CITIZEN_VISIBLE[step]
    if step == "closed" and data.status == "voided":  # 作废 is announced as `closed` (DESIGN 4.4's types are fixed)
        status = "voided"
    fields = {"assignee_id": data.assignee_id} if step in ("reassigned", "transferred") else {}
    if step == "transferred":
        fields["station"] = data.station
    note = TIMELINE_NOTES[status]
    if step == "visited" and data.visit_method:  # the station called or called on them: no survey was answered
        note = STAFF_VISIT_NOTES[data.visit_method]
    await db.record_progress(conn, data.tracking_no, status, event.time, note, event.id, **fields)


NAME_PLACEHOLDER = "{称呼}"


def addressed(text: str, name: str | None) -> str:
    """A reply's {称呼} as the citizen's own name ("{称呼}您好": 王芳您好; no name given: 您好)."""
    return text.replace(NAME_PLACEHOLDER, name.strip() if name and name.strip() else "")


async def on_citizen_update(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox, *, cipher: PiiCipher) -> None:
    """The result (办结) or a request for more information: on the tracking page, and sent on the
    channel the citizen gave (never for anonymous reporters without a contact)."""
    data = event.payload(CitizenUpdate)
    # a reusable reply's {称呼} (issue 16): the citizen's name in the message to them, not on the page
    shown = data.text.replace(NAME_PLACEHOLDER, "")
    template: Literal["result", "rectified", "more_info"]
    if data.kind == "resolved":
        status, note, template = "resolved", f"办理结果：{shown}", "result"
    elif data.kind == "rectified":
        status, note, template = None, f"您提出的意见已整改：{shown}", "rectified"
    else:
        status, note, template = "in_progress", f"需要您补充：{shown}", "more_info"
        await db.record_info_requested(conn, data.tracking_no, event.time)  # the tracking page offers the form
    if status is None:
        await db.add_timeline_note(conn, data.tracking_no, event.time, note, event.id)
    else:
        await db.record_progress(conn, data.tracking_no, status, event.time, note, event.id)
    row = await db.get_submission(conn, data.tracking_no)
    if row is None or row["reporter_enc"] is None:
        return
    reporter = cipher.open_json(Sealed(row["pii_kid"], row["reporter_enc"]), context=f"{data.tracking_no}/reporter")
    if reporter.get("phone") or reporter.get("email"):
        outbox.add(
            Topics.CITIZEN_MESSAGES,
            new_event(
                EventTypes.CITIZEN_MESSAGE_REQUESTED,
                CitizenMessageRequested(
                    tracking_no=data.tracking_no,
                    station=row["station"],
                    template=template,
                    phone=reporter.get("phone") or None,
                    email=reporter.get("email") or None,
                    params={"text": addressed(data.text, reporter.get("name"))}
                    | ({"resolution": str(data.resolution)} if data.resolution else {}),
                ),
                source=INTAKE_SOURCE,
                subject=data.tracking_no,
                stationid=row["station"],
            ),
        )


async def on_case_access_changed(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox) -> None:
    """Who may not open an item: staff named in a complaint (triage, which also settles the item:
    the station's staff open it from now on) or kept out by the station's leader."""
    data = event.payload(CaseAccessChanged)
    await db.change_exclusions(
        conn,
        data.tracking_no,
        data.origin,
        data.excluded,
        data.restored,
        settle=data.station if data.origin == "triage" else None,
    )


async def on_station_upserted(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox, *, metrics: Metrics) -> None:
    await READ_MODEL_HANDLERS[EventTypes.STATION_UPSERTED](event, conn, outbox)
    code = event.payload(StationUpserted).code
    outbox.after_commit(lambda: metrics.init_station_series([code]))


def make_handlers(cipher: PiiCipher, index: BlindIndex):
    """The HANDLERS table (event type -> handler) with this process's dependencies bound."""

    def handlers(metrics: Metrics) -> dict:
        return {
            EventTypes.FEEDBACK_SUBMITTED: partial(on_feedback_submitted, metrics=metrics, cipher=cipher, index=index),
            EventTypes.CASE_TRIAGED: on_case_triaged,
            EventTypes.CASE_ASSIGNED: on_case_assigned,
            EventTypes.CASE_MERGED: on_case_merged,
            **{f"fengqiao.case.{step}": on_case_updated for step in CITIZEN_VISIBLE},
            EventTypes.CITIZEN_UPDATE: partial(on_citizen_update, cipher=cipher),
            EventTypes.CASE_ACCESS_CHANGED: on_case_access_changed,
            **READ_MODEL_HANDLERS,
            EventTypes.STATION_UPSERTED: partial(on_station_upserted, metrics=metrics),
        }

    return handlers

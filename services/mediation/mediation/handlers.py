"""Mediation's event handlers, and the HANDLERS table from event type to handler."""

from __future__ import annotations

from functools import partial

import asyncpg

from fengqiao.events import (
    AlertRaised,
    CaseAccessChanged,
    CaseAssigned,
    CaseMerged,
    CaseTriaged,
    CitizenAdded,
    CloudEvent,
    EventTypes,
    SurveyAnswered,
    TriageRequested,
)
from fengqiao.metrics import Metrics
from fengqiao.outbox import Outbox
from fengqiao.pii import BlindIndex, PiiCipher
from mediation import access, db, search
from mediation.access import store_words
from mediation.additions import record_addition
from mediation.cases import open_case, perform, walk_in_arrived_late
from mediation.commands import Survey
from mediation.lifecycle import Actor, Rejected

SURVEY_ACTOR = "citizen:survey"


async def on_case_assigned(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox) -> None:
    """A new case: its acceptance and resolution clocks start at the assignment."""
    data = event.payload(CaseAssigned)
    await open_case(conn, data, event.time)
    await db.access.take_channel(conn, data.tracking_no)


async def on_triage_requested(
    event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox, *, cipher: PiiCipher, index: BlindIndex | None = None
) -> None:
    """The citizen's words and the channel, kept sealed for the case detail (the request intake
    sends triage: mediation reads no other service's tables), and their keyed pairs for the
    console's search."""
    data = event.payload(TriageRequested)
    await store_words(conn, cipher, data)
    if index is not None:
        keys = search.word_keys(index, data.title, data.content, data.address)
        await db.search.store(conn, data.tracking_no, data.station, keys)
    if data.channel == "walk_in":
        await walk_in_arrived_late(conn, data.tracking_no)


async def on_case_access_changed(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox) -> None:
    """Staff named in a complaint, from triage: kept out of the case, which the station's staff may
    open from now on (after a transfer: the receiving station's, who may take it from a holder the
    complaint names). The leader's own exclusions were written here when made."""
    data = event.payload(CaseAccessChanged)
    if data.origin != "triage":
        return
    await access.settled(conn, outbox, data, at=event.time)


async def on_case_merged(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox) -> None:
    await db.cases.record_duplicate(conn, event.payload(CaseMerged), event.time)


async def on_case_triaged(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox) -> None:
    """Triage's decision with its reasons (rule ids, model labels), for the case detail."""
    await db.detail.store_triage(conn, event.payload(CaseTriaged), event.time)


async def on_alert_raised(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox) -> None:
    """An early warning (预警) naming cases of a station, shown on those cases."""
    await db.detail.store_alert(conn, event.payload(AlertRaised))


async def on_survey_answered(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox) -> None:
    """The citizen answered the return-visit survey of the case's latest resolution: visited, or
    back to the leader when dissatisfied (the reason is kept in the history)."""
    data = event.payload(SurveyAnswered)
    row = await db.cases.get_case(conn, data.tracking_no)
    if row is None:
        return
    if data.resolution and data.resolution != await db.resolutions.count_resolutions(conn, data.tracking_no):
        return  # an answer about an earlier resolution: the case has been resolved again since
    try:
        await perform(
            conn,
            outbox,
            tracking_no=data.tracking_no,
            actor=Actor(SURVEY_ACTOR, "citizen", row["station"]),
            command=Survey(result=data.result, reason=data.reason or ""),
            now=event.time,
        )
    except Rejected:
        return  # e.g. answered twice, or the case is still open: the answer stays in intake


async def on_citizen_added(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox, *, cipher: PiiCipher) -> None:
    """The citizen added to their case: the answer to a request for information, an e-mail reply or
    a follow-up call (kept sealed; the holder is told)."""
    await record_addition(conn, outbox, event.payload(CitizenAdded), event_id=event.id, cipher=cipher)


def make_handlers(cipher: PiiCipher, index: BlindIndex | None = None):
    """The HANDLERS table with this process's dependencies bound once, as keyword arguments."""

    def handlers(metrics: Metrics) -> dict:
        return {
            EventTypes.CASE_ASSIGNED: on_case_assigned,
            EventTypes.CASE_MERGED: on_case_merged,
            EventTypes.CASE_TRIAGED: on_case_triaged,
            EventTypes.ALERT_RAISED: on_alert_raised,
            EventTypes.SURVEY_ANSWERED: on_survey_answered,
            EventTypes.TRIAGE_REQUESTED: partial(on_triage_requested, cipher=cipher, index=index),
            EventTypes.CASE_ACCESS_CHANGED: on_case_access_changed,
            EventTypes.CITIZEN_ADDED: partial(on_citizen_added, cipher=cipher),
        }

    return handlers

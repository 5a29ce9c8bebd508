"""Triage's event handlers: classify, merge repeats, warn early, assign; learn from corrections;
release open work when a case is resolved or closed."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial

import asyncpg

from fengqiao.constants import STATION_TZ
from fengqiao.constants import TRIAGE_SOURCE as SOURCE
from fengqiao.directory import READ_MODEL_HANDLERS
from fengqiao.events import (
    AlertRaised,
    CaseAccessChanged,
    CaseAssigned,
    CaseMerged,
    CaseTriaged,
    CaseUpdated,
    CloudEvent,
    EventTypes,
    StaffUpserted,
    Topics,
    TriageCorrected,
    TriageRequested,
    new_event,
)
from fengqiao.metrics import Metrics
from fengqiao.outbox import Outbox
from triage import alerts, db
from triage.assign import Assignment, Candidate, choose_assignee, excluded_staff
from triage.assign import Item as AssignItem
from triage.duplicates import Item as DupItem
from triage.duplicates import Merge, find_primary, signature
from triage.engine import DISPUTES, Classification, classify, public_reasons
from triage.labels import (
    is_alert_kind,
    is_alert_level,
    is_category,
    is_optional_category,
    is_optional_role,
    is_request_type,
    is_urgency,
)
from triage.metrics import TriageMetrics
from triage.review import low_confidence_heads
from triage.state import EngineState
from triage.station import StationSettings, station_inactive
from triage.text import mask_personal_data, normalise, place_key, shingles

# Merge rules as the public stream names them. The detail (same reporter, same place) links two
# citizens' submissions to one person or address: it stays in triage's decision for staff.
_PUBLIC_MERGE = {"near_identical": "rule:duplicate:near_identical"}


def public_merge_reason(reason: str) -> str:
    return _PUBLIC_MERGE.get(reason, "rule:duplicate:similar_open_case")


DUPLICATE_WINDOW = timedelta(days=7)


async def on_triage_requested(
    event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox, *, metrics: Metrics, state: EngineState
) -> None:
    """Classify the item and warn early; then merge it into the open case it repeats, or assign it."""
    data = event.payload(TriageRequested)
    await db.use_custom_plans(conn)
    engine = await state.current(conn)
    station = await db.station_settings(conn, data.station)
    text = normalise(f"{data.title or ''} {data.content}")
    c, classify_seconds = _classify(data, engine)
    place = place_key(data.address, data.lat, data.lon)
    await db.record_decision(
        conn,
        data.tracking_no,
        data.station,
        c,
        data.submitted_at,
        text_masked=mask_personal_data(text),
        reporter_key=data.reporter_key,
        place_key=place,
        confidential=data.confidential,
    )
    common = dict(source=SOURCE, subject=data.tracking_no, stationid=data.station, correlationid=event.correlationid)
    _publish_triaged(outbox, data, c, common)
    raised = await _early_warning(conn, outbox, data, c, place, engine, station, event.correlationid)
    grams = shingles(text)
    item = DupItem(
        data.tracking_no, signature(text, grams), c.category, data.reporter_key, place, data.submitted_at, len(grams)
    )
    merge = await _repeat_of(conn, data, c, item)
    now = datetime.now(UTC)
    observe = partial(
        _observe,
        metrics,
        data,
        c,
        classify_seconds=classify_seconds,
        elapsed=(now - data.submitted_at).total_seconds(),
        raised=raised,
    )
    if merge is not None:
        candidates = await db.candidates(conn, data.station, now.astimezone(STATION_TZ))
        excluded = excluded_staff(AssignItem(c.type, c.category, c.urgency, text, data.confidential), candidates)
        await _settle_access(conn, outbox, data, excluded, common)
        await _merge(conn, outbox, data, merge, common)
        outbox.after_commit(partial(observe, merge_reason=merge.reason))
        return
    if not data.confidential:
        await db.add_fingerprint(conn, data.station, item)
    a = await _assign(conn, outbox, data, c, text, engine, station, now, common)
    outbox.after_commit(partial(observe, assignment_rule=a.reason.split(";")[0].split(":")[1]))


def _classify(data: TriageRequested, engine: EngineState) -> tuple[Classification, float]:
    """The classification and the seconds it took."""
    started = time.perf_counter()
    c = classify(
        data.title,
        data.content,
        station=data.station,
        rules=engine.rules,
        model=engine.model,
        model_version=engine.version,
    )
    return c, time.perf_counter() - started


def _publish_triaged(outbox: Outbox, data: TriageRequested, c: Classification, common: dict) -> None:
    # classify() picks each label from the taxonomy (CaseTriaged validates them again).
    assert is_request_type(c.type) and is_category(c.category) and is_urgency(c.urgency), "taxonomy labels"
    outbox.add(
        Topics.CASE_EVENTS,
        new_event(
            EventTypes.CASE_TRIAGED,
            CaseTriaged(
                tracking_no=data.tracking_no,
                station=data.station,
                type=c.type,
                category=c.category,
                urgency=c.urgency,
                needs_mediation=c.needs_mediation,
                confidence=c.confidence,
                model_version=c.model_version,
                reasons=public_reasons(c.reasons),
                submitted_at=data.submitted_at,
                sentiment=c.sentiment,
                confidences=c.confidences,
            ),
            **common,
        ),
    )


async def _repeat_of(conn: asyncpg.Connection, data: TriageRequested, c: Classification, item: DupItem) -> Merge | None:
    """The open case this item repeats, if any. An urgent report is always looked at on its own; a
    confidential tip-off too, and it is never the case others are merged into: a merge would route it
    past its approved handlers, or hand its result to another reporter."""
    if c.urgency == "urgent" or data.confidential:
        return None
    return find_primary(
        item, await db.duplicate_candidates(conn, data.station, item, data.submitted_at - DUPLICATE_WINDOW)
    )


async def _merge(conn: asyncpg.Connection, outbox: Outbox, data: TriageRequested, merge: Merge, common: dict) -> None:
    await db.record_merge(conn, data.tracking_no, merge.into, f"rule:duplicate:{merge.reason}")
    outbox.add(
        Topics.CASE_EVENTS,
        new_event(
            EventTypes.CASE_MERGED,
            CaseMerged(
                tracking_no=data.tracking_no,
                station=data.station,
                merged_into=merge.into,
                similarity=merge.similarity,
                reason=public_merge_reason(merge.reason),
                submitted_at=data.submitted_at,
            ),
            **common,
        ),
    )


async def _assign(
    conn: asyncpg.Connection,
    outbox: Outbox,
    data: TriageRequested,
    c: Classification,
    text: str,
    engine: EngineState,
    station: StationSettings,
    now: datetime,
    common: dict,
) -> Assignment:
    candidates = await db.candidates(conn, data.station, now.astimezone(STATION_TZ))
    item = AssignItem(
        c.type,
        c.category,
        c.urgency,
        text,
        data.confidential,
        low_confidence_heads(c.urgency, c.confidences, engine.review_below(data.station)),
    )
    if station.active:
        a = choose_assignee(item, candidates, station.team_for_category(engine.team_for_category(data.station)))
    else:  # deactivated while the item was on its way: nobody there gets new work (triage/station.py)
        a = replace(station_inactive(), excluded=excluded_staff(item, candidates))
    await db.record_assignment(conn, data.tracking_no, data.station, a)
    await _settle_access(conn, outbox, data, a.excluded, common)  # in the outbox before the assignment
    # Labels from the taxonomy, roles from the staff directory (CaseAssigned validates them again).
    assert is_request_type(c.type) and is_category(c.category) and is_urgency(c.urgency), "taxonomy labels"
    assert is_optional_role(a.assignee_role), "a directory role"
    outbox.add(
        Topics.CASE_EVENTS,
        new_event(
            EventTypes.CASE_ASSIGNED,
            CaseAssigned(
                tracking_no=data.tracking_no,
                station=data.station,
                assignee_id=a.assignee_id,
                assignee_role=a.assignee_role,
                team=a.team,
                type=c.type,
                category=c.category,
                urgency=c.urgency,
                needs_mediation=c.needs_mediation,
                reason=a.reason,
                flagged=a.flagged,
                submitted_at=data.submitted_at,
                notify_leader=a.notify_leader,
                confidential=data.confidential,
            ),
            **common,
        ),
    )
    return a


async def _settle_access(
    conn: asyncpg.Connection, outbox: Outbox, data: TriageRequested, excluded: frozenset[str], common: dict
) -> None:
    """Who the item names, on the internal case-access topic, for every item (an empty list settles
    it too: intake and mediation keep an item from the station's staff until this arrives). Written
    to the outbox before the assignment, so it is published first; never on the public stream."""
    if excluded:
        await db.change_exclusions(conn, data.tracking_no, sorted(excluded), [])
    outbox.add(
        Topics.CASE_ACCESS,
        new_event(
            EventTypes.CASE_ACCESS_CHANGED,
            CaseAccessChanged(
                tracking_no=data.tracking_no,
                station=data.station,
                origin="triage",
                excluded=sorted(excluded),
                at=datetime.now(UTC),
            ),
            **common,
        ),
    )


async def on_case_access_changed(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox) -> None:
    """The leader kept staff out of a case (or let them in again): not its decision either."""
    data = event.payload(CaseAccessChanged)
    if data.origin == "leader":
        await db.change_exclusions(conn, data.tracking_no, data.excluded, data.restored)


def _observe(
    metrics: Metrics,
    data: TriageRequested,
    c: Classification,
    *,
    classify_seconds: float,
    elapsed: float,
    raised: list[str],
    merge_reason: str | None = None,
    assignment_rule: str | None = None,
) -> None:
    """After the commit: the decision, the merge or the assignment, the stage timings, new alerts."""
    tm = TriageMetrics.of(metrics)
    tm.observe_decision(
        dict(station=data.station, type=c.type, category=c.category, urgency=c.urgency), classify_seconds
    )
    if merge_reason is not None:
        tm.merges.labels(station=data.station, reason=merge_reason).inc()
    if assignment_rule is not None:
        tm.assignments.labels(station=data.station, rule=assignment_rule).inc()
    metrics.stage_seconds.labels(stage="triaged").observe(elapsed)
    if assignment_rule is not None:
        metrics.stage_seconds.labels(stage="assigned").observe(elapsed)
    for kind in raised:
        metrics.alerts_raised.labels(station=data.station, kind=kind).inc()


async def _early_warning(
    conn: asyncpg.Connection,
    outbox: Outbox,
    data: TriageRequested,
    c: Classification,
    place: str | None,
    engine: EngineState,
    station: StationSettings,
    correlation_id: str | None,
) -> list[str]:
    """Evaluate the three alert kinds for this item; emit each alert that is new or rose a level."""
    drafts = await _draft_alerts(conn, data, c, place, engine, station)
    return await _raise_alerts(conn, outbox, data, drafts, correlation_id)


async def _draft_alerts(
    conn: asyncpg.Connection,
    data: TriageRequested,
    c: Classification,
    place: str | None,
    engine: EngineState,
    station: StationSettings,
) -> list[alerts.Draft]:
    """The cluster, trend and repeat-dispute drafts this item completes (each only if its threshold
    is set: the station's own first, then triage's table)."""
    now = data.submitted_at
    drafts: list[alerts.Draft] = []
    threshold = partial(engine.threshold, data.station)
    t = station.threshold(c.category, "cluster", threshold)
    if t and place and c.category != "other":
        members, reporters = await db.cluster_members(
            conn, data.station, c.category, place, now - timedelta(hours=t.window_hours), now
        )
        label = "该地点（约500米范围）" if place.startswith("grid:") else place.removeprefix("addr:")
        if d := alerts.cluster(c.category, place, label, members, reporters, t):
            drafts.append(d)
    t = station.threshold(c.category, "trend", threshold)
    if t and c.category != "other" and engine.trend_due(data.station, c.category):
        members, daily_mean = await db.trend_counts(conn, data.station, c.category, now)
        if d := alerts.trend(c.category, len(members), daily_mean, members, t):
            drafts.append(d)
    t = station.threshold(c.category, "repeat_dispute", threshold)
    if t and data.reporter_key and c.category in DISPUTES:
        members, categories = await db.repeat_members(
            conn, data.station, data.reporter_key, now - timedelta(hours=t.window_hours), now
        )
        if d := alerts.repeat_dispute(data.reporter_key, members, categories, t):
            drafts.append(d)
    return drafts


async def _raise_alerts(
    conn: asyncpg.Connection,
    outbox: Outbox,
    data: TriageRequested,
    drafts: list[alerts.Draft],
    correlation_id: str | None,
) -> list[str]:
    """Store each draft; those new or risen a level go out as AlertRaised. Returns their kinds."""
    now = data.submitted_at
    raised = []
    for d in drafts:
        alert_id, is_raised = await db.upsert_alert(conn, data.station, d, now, alerts.rank)
        if not is_raised:
            continue
        raised.append(d.kind)
        # alerts.py drafts only these kinds and levels, for a taxonomy category (AlertRaised validates them again).
        assert is_alert_kind(d.kind) and is_alert_level(d.level) and is_optional_category(d.category), "alert labels"
        outbox.add(
            Topics.CASE_EVENTS,
            new_event(
                EventTypes.ALERT_RAISED,
                AlertRaised(
                    alert_id=alert_id,
                    station=data.station,
                    kind=d.kind,
                    level=d.level,
                    category=d.category,
                    members=d.members,
                    reporters=d.reporters,
                    window_hours=d.window_hours,
                    explanation=d.public,
                    raised_at=now,
                ),
                source=SOURCE,
                subject=alert_id,
                stationid=data.station,
                correlationid=correlation_id,
            ),
            key=alert_id,
        )
    return raised


async def on_triage_corrected(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox) -> None:
    """A correction becomes a labelled example (with the text triage kept, personal data masked)."""
    data = event.payload(TriageCorrected)
    row = await db.decision(conn, data.tracking_no)
    if row is None or not row["text_masked"]:
        return  # never classified here (or before texts were kept): nothing to learn from
    await db.store_correction(
        conn,
        tracking_no=data.tracking_no,
        station=data.station,
        text=row["text_masked"],
        type_=data.type or row["type"],
        category=data.category or row["category"],
        urgency=data.urgency or row["urgency"],
        corrected_by=data.corrected_by,
        reason=data.reason,
        corrected_at=data.corrected_at,
    )


async def on_case_moved(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox) -> None:
    """Reassigned or transferred: the open work moves to the new holder; a transferred item's
    decision, assignment and fingerprint move to the new station (its staff see them, the old
    station's no longer do)."""
    data = event.payload(CaseUpdated)
    await db.move_item(conn, data.tracking_no, data.assignee_id, data.station)


async def on_case_transferred(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox) -> None:
    """A transferred item moves (as on_case_moved), and the complaint is matched against the
    receiving station's staff: its access event for that station settles the case there (intake
    and mediation keep it from the station's staff until it arrives, and mediation takes it from a
    receiving leader it names). Sent for every transfer, an empty list included."""
    data = event.payload(CaseUpdated)
    await db.move_item(conn, data.tracking_no, data.assignee_id, data.station)
    row = await db.decision(conn, data.tracking_no)
    excluded: frozenset[str] = frozenset()
    if row is not None and row["text_masked"]:
        candidates = await db.candidates(conn, data.station, datetime.now(STATION_TZ))
        item = AssignItem(row["type"], row["category"], row["urgency"], row["text_masked"], row["confidential"])
        excluded = excluded_staff(item, candidates)
    _announce_access(outbox, data.tracking_no, data.station, excluded, event.correlationid)
    if excluded:
        await db.change_exclusions(conn, data.tracking_no, sorted(excluded), [])


# How far back a member of staff joining a station is matched against its complaints.
JOINER_LOOKBACK = timedelta(days=365)


async def on_staff_upserted(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox) -> None:
    """The directory copy, and: a member of staff new at a station (created there, or transferred
    in) is matched against the station's complaints of the last year; those naming them keep them
    out from now on (access events, as at triage)."""
    s = event.payload(StaffUpserted)
    before = await db.staff_station(conn, s.staff_id)
    await READ_MODEL_HANDLERS[EventTypes.STAFF_UPSERTED](event, conn, outbox)
    if not s.active or s.station is None or before == s.station:
        return
    since = datetime.now(UTC) - JOINER_LOOKBACK
    candidate = [Candidate(s.staff_id, s.role, s.team, 0, False, s.name, s.badge_no)]
    for row in await db.complaints_naming(conn, s.station, s.staff_id, s.name, s.badge_no, since):
        item = AssignItem(row["type"], row["category"], row["urgency"], row["text_masked"], row["confidential"])
        if excluded_staff(item, candidate):
            await db.change_exclusions(conn, row["tracking_no"], [s.staff_id], [])
            _announce_access(outbox, row["tracking_no"], s.station, frozenset({s.staff_id}), event.correlationid)


def _announce_access(
    outbox: Outbox, tracking_no: str, station: str, excluded: frozenset[str], correlationid: str | None
) -> None:
    """Who a complaint names among `station`'s staff (internal case-access topic, origin triage)."""
    outbox.add(
        Topics.CASE_ACCESS,
        new_event(
            EventTypes.CASE_ACCESS_CHANGED,
            CaseAccessChanged(
                tracking_no=tracking_no,
                station=station,
                origin="triage",
                excluded=sorted(excluded),
                at=datetime.now(UTC),
            ),
            source=SOURCE,
            subject=tracking_no,
            stationid=station,
            correlationid=correlationid,
        ),
    )


async def on_case_merged_by_staff(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox) -> None:
    """A repeat merged by hand in the console: it stops being open work (triage's own merges were
    never assigned)."""
    data = event.payload(CaseMerged)
    if data.reason.startswith("manual:"):
        await db.close_item(conn, data.tracking_no)


async def on_case_closed(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox) -> None:
    await db.close_item(conn, event.payload(CaseUpdated).tracking_no)


def make_handlers(state: EngineState):
    def handlers(metrics: Metrics) -> dict:
        """The HANDLERS table: event type -> handler, dependencies bound."""
        return {
            EventTypes.TRIAGE_REQUESTED: partial(on_triage_requested, metrics=metrics, state=state),
            EventTypes.TRIAGE_CORRECTED: on_triage_corrected,
            EventTypes.CASE_ACCESS_CHANGED: on_case_access_changed,
            EventTypes.CASE_RESOLVED: on_case_closed,
            EventTypes.CASE_CLOSED: on_case_closed,
            EventTypes.CASE_REASSIGNED: on_case_moved,
            EventTypes.CASE_MERGED: on_case_merged_by_staff,
            **READ_MODEL_HANDLERS,
            EventTypes.CASE_TRANSFERRED: on_case_transferred,
            EventTypes.STAFF_UPSERTED: on_staff_upserted,
        }

    return handlers

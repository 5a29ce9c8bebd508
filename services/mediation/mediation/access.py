"""Who may open a case, and what staff read of the citizen's words (issue 13).

Staff named in a complaint (triage finds them) and staff the station's leader keeps out (with a
reason) do not see the case: row-level security hides it from them as from another station (see
migration 0011), and every refusal is audited. The exclusions come from triage on the internal
case-access topic; the leader's go out on it to intake and triage. The citizen's words arrive
sealed from intake's triage request and are shown masked."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from fengqiao.constants import MEDIATION_SOURCE as SOURCE
from fengqiao.events import (
    CaseAccessChanged,
    CaseUpdated,
    EventTypes,
    StaffNotice,
    Topics,
    TriageRequested,
    new_event,
)
from fengqiao.outbox import Outbox
from fengqiao.pii import PiiCipher, Sealed, mask_text
from mediation import db
from mediation.lifecycle import Actor, Rejected

ACCESS_ACTOR = "system:access"


async def settled(conn: asyncpg.Connection, outbox: Outbox, data: CaseAccessChanged, *, at: datetime) -> None:
    """Triage has matched the item against `data.station`'s staff: the named are kept out and the
    station's staff may open the case while it is there. If the case is there now and its holder is
    among those kept out (a transfer handed it to the receiving leader the complaint names), it goes
    to the station's leadership not kept out, else to nobody (flagged: the bureau assigns). A held
    transfer notice goes out then, to the holder it ends with."""
    no = data.tracking_no
    await db.access.add_exclusions(conn, no, data.station, data.excluded, origin="triage")
    await db.access.settle(conn, no, data.station)
    row = await db.cases.case_for_update(conn, no)
    if row is None or row["station"] != data.station:
        return  # not assigned yet, or moved on since: the next check is for the next station
    assignee = row["assignee_id"]
    if assignee is not None and await db.access.is_excluded(conn, no, assignee):
        assignee = await _away_from_excluded(conn, outbox, row, at)
    held = await db.access.take_transfer_notice(conn, no, data.station)
    if held is not None:
        notice = StaffNotice.model_validate_json(held).model_copy(update={"assignee_id": assignee})
        outbox.add(
            Topics.STAFF_REMINDERS,
            new_event(EventTypes.STAFF_NOTICE, notice, source=SOURCE, subject=no, stationid=data.station),
        )


async def _away_from_excluded(
    conn: asyncpg.Connection, outbox: Outbox, row: asyncpg.Record, at: datetime
) -> str | None:
    """The case leaves a holder kept out of it: the leadership not kept out, else nobody (flagged)."""
    no, station = row["tracking_no"], row["station"]
    assignee = await db.cases.unexcluded_leadership(conn, no, station)
    await db.cases.update_case_state(
        conn, no, status=row["status"], assignee_id=assignee, station=station, changes={"flagged": True}, at=at
    )
    why = "原承办人须回避本事项，改由本所领导承办" if assignee else "本所领导均须回避本事项，待分局指定承办人"
    await db.cases.add_history(
        conn, no, at=at, status=row["status"], actor=ACCESS_ACTOR, reason=why, event="reassigned", assignee_id=assignee
    )
    outbox.add(
        Topics.CASE_EVENTS,
        new_event(
            EventTypes.CASE_REASSIGNED,
            CaseUpdated(
                tracking_no=no,
                station=station,
                status=row["status"],
                previous_status=row["status"],
                assignee_id=assignee,
                previous_assignee_id=row["assignee_id"],
                actor_id=ACCESS_ACTOR,
                at=at,
            ),
            source=SOURCE,
            subject=no,
            stationid=station,
        ),
    )
    return assignee


def words_context(tracking_no: str) -> str:
    return f"{tracking_no}/words"


async def store_words(conn: asyncpg.Connection, cipher: PiiCipher, data: TriageRequested) -> None:
    """The citizen's words as intake sent them to triage, sealed, and the channel."""
    words = {"title": data.title, "content": data.content, "address": data.address}
    sealed = cipher.seal_json(words, context=words_context(data.tracking_no))
    await db.access.store_case_file(
        conn, data.tracking_no, data.station, data.channel, sealed.kid, sealed.blob, data.reporter_key
    )


def citizen_words(
    cipher: PiiCipher, tracking_no: str, row: asyncpg.Record | None, *, reveal: bool = False
) -> dict[str, Any] | None:
    """Title, content and address with phones, ID numbers and e-mails masked (None before the
    case file arrived). Names in free text are not recognised; a logged reveal (intake's, or the
    console's with a reason: `reveal`) shows all."""
    if row is None:
        return None
    words = cipher.open_json(Sealed(row["pii_kid"], row["words_enc"]), context=words_context(tracking_no))
    shown = (lambda v: v) if reveal else mask_text
    return {k: shown(v) if isinstance(v, str) and v else None for k, v in words.items()}


async def exclude(
    conn: asyncpg.Connection,
    outbox: Outbox,
    *,
    case: asyncpg.Record,
    actor: Actor,
    staff_id: str,
    reason: str,
    now: datetime,
) -> None:
    """The leader keeps a member of the station's staff out of the case."""
    _leader_only(actor)
    target = await db.cases.staff_station(conn, staff_id)
    if target is None or target["station"] != case["station"] or staff_id == actor.staff_id:
        raise Rejected("invalid_staff", "只能排除本所的其他工作人员。")
    if staff_id in (case["assignee_id"], case["handled_by"]):
        raise Rejected("holder_excluded", "不能排除该事项的承办人，请先改派。")
    if not await db.access.add_exclusions(
        conn, case["tracking_no"], case["station"], [staff_id], origin="leader", reason=reason, added_by=actor.staff_id
    ):
        raise Rejected("already_excluded", "该人员已被排除。")
    _announce(outbox, case, actor, now, excluded=[staff_id])


async def restore(
    conn: asyncpg.Connection, outbox: Outbox, *, case: asyncpg.Record, actor: Actor, staff_id: str, now: datetime
) -> None:
    """The leader lets a member of staff open the case again (also one triage found named: a
    namesake, say); the reason is audited by the caller."""
    _leader_only(actor)
    if not await db.access.remove_exclusion(conn, case["tracking_no"], staff_id):
        raise Rejected("not_excluded", "该人员未被排除。")
    _announce(outbox, case, actor, now, restored=[staff_id])


def _leader_only(actor: Actor) -> None:
    if actor.role != "leader":
        raise Rejected("forbidden", "只有所长可以设置事项的回避人员。")


def _announce(
    outbox: Outbox,
    case: asyncpg.Record,
    actor: Actor,
    now: datetime,
    *,
    excluded: list[str] | None = None,
    restored: list[str] | None = None,
) -> None:
    """Intake and triage keep the same people out (internal topic only: it names who is kept out)."""
    outbox.add(
        Topics.CASE_ACCESS,
        new_event(
            EventTypes.CASE_ACCESS_CHANGED,
            CaseAccessChanged(
                tracking_no=case["tracking_no"],
                station=case["station"],
                origin="leader",
                excluded=excluded or [],
                restored=restored or [],
                changed_by=actor.staff_id,
                at=now,
            ),
            source=SOURCE,
            subject=case["tracking_no"],
            stationid=case["station"],
        ),
    )

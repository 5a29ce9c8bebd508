"""Mediation records (大调解): parties, sessions, outcome, the agreement and its follow-up.
Personal data is sealed with the deployment's keys, bound to the case (`{no}/party/{id}` ...)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg

from fengqiao.constants import MEDIATION_SOURCE as SOURCE
from fengqiao.events import CaseUpdated, EventTypes, Topics, new_event
from fengqiao.outbox import Outbox
from fengqiao.pii import BlindIndex, PiiCipher, Sealed, normalise_phone
from mediation import db
from mediation.cases import case_of, perform
from mediation.commands import StartMediation
from mediation.lifecycle import Actor, Case, Rejected

CONFIRMATION_WINDOW = timedelta(days=30)  # 司法确认: apply within 30 days of the agreement
MEDIATOR_CHANGERS = frozenset({"leader", "instructor"})  # the station's leadership changes the mediator


def party_keys(index: BlindIndex, phone: str, id_no: str) -> list[str]:
    keys = []
    if phone:
        keys.append(index.of(normalise_phone(phone), purpose="phone"))
    if id_no:
        keys.append(index.of(id_no.strip().upper(), purpose="id_no"))
    return keys


def may_mediate(case: Case, actor: Actor) -> None:
    """Whether this staff member may work on the case's mediation (holder, mediator or leadership):
    Rejected `not_found` for another station's case, `not_your_case` for anyone else."""
    if actor.role not in ("bureau", "admin") and actor.station != case.station:
        raise Rejected("not_found", "未找到该事项。")
    if actor.staff_id != case.assignee_id and actor.role not in ("leader", "instructor", "mediator"):
        raise Rejected("not_your_case", "只有承办人、调解员或所领导可以办理调解。")


def may_change_mediator(case: Case, actor: Actor) -> None:
    may_mediate(case, actor)
    if actor.role not in MEDIATOR_CHANGERS:
        raise Rejected("forbidden", "只有所领导可以更换调解员。")


async def _case(conn: asyncpg.Connection, actor: Actor, tracking_no: str) -> asyncpg.Record:
    """The case, if this staff member may work on its mediation (holder, mediator or leadership)."""
    row = await db.cases.get_case(conn, tracking_no)
    if row is None:
        raise Rejected("not_found", "未找到该事项。")
    may_mediate(case_of(row), actor)
    return row


async def record(conn: asyncpg.Connection, tracking_no: str) -> asyncpg.Record:
    row = await db.records.get_mediation(conn, tracking_no)
    if row is None:
        raise Rejected("no_mediation", "该事项尚未建立调解记录。")
    return row


async def open_record(
    conn: asyncpg.Connection, outbox: Outbox, actor: Actor, tracking_no: str, mediator_id: str, now: datetime
) -> str:
    """Open the mediation record; the case moves to `mediating` if it is not already. Returns the station.
    A case has one record: opening it again is refused (`already_open`, naming the mediator), never
    answered as if a new mediator had been named; `change_mediator` does that."""
    case = await _case(conn, actor, tracking_no)
    existing = await db.records.get_mediation(conn, tracking_no)
    if existing is not None:
        raise Rejected(
            "already_open", f"该事项已建立调解记录，调解员为 {existing['mediator_id']}；更换调解员须由所领导办理。"
        )
    if case["status"] in ("accepted", "in_progress"):
        await perform(
            conn, outbox, tracking_no=tracking_no, actor=actor, command=StartMediation(text="建立调解记录"), now=now
        )
    elif case["status"] != "mediating":
        raise Rejected("illegal_transition", "签收后才能建立调解记录。")
    await _check_mediator(conn, case["station"], mediator_id)
    await db.records.insert_mediation(conn, tracking_no, case["station"], mediator_id, now)
    return case["station"]


async def _check_mediator(conn: asyncpg.Connection, station: str, mediator_id: str) -> None:
    mediator = await db.cases.staff_station(conn, mediator_id)
    if mediator is None or not mediator["active"] or mediator["station"] != station:
        raise Rejected("invalid_mediator", "调解员须为本所在岗人员。")


async def change_mediator(
    conn: asyncpg.Connection, actor: Actor, tracking_no: str, mediator_id: str, reason: str, now: datetime
) -> tuple[str, str]:
    """The station's leadership names another mediator; written to the case's history.
    Returns the station and the previous mediator."""
    case = await _case(conn, actor, tracking_no)
    may_change_mediator(case_of(case), actor)
    current = await record(conn, tracking_no)
    if current["mediator_id"] == mediator_id:
        raise Rejected("same_mediator", f"{mediator_id} 已是该调解的调解员。")
    await _check_mediator(conn, case["station"], mediator_id)
    await db.records.set_mediator(conn, tracking_no, mediator_id)
    await db.cases.add_history(
        conn,
        tracking_no,
        at=now,
        status=case["status"],
        actor=actor.staff_id,
        reason=f"更换调解员：{current['mediator_id']} → {mediator_id}（{reason}）",
        event=None,
        assignee_id=case["assignee_id"],
    )
    return case["station"], current["mediator_id"]


async def add_party(
    conn: asyncpg.Connection,
    cipher: PiiCipher,
    index: BlindIndex,
    actor: Actor,
    tracking_no: str,
    *,
    role: str,
    name: str,
    phone: str,
    id_no: str,
    address: str,
) -> tuple[str, int, list[str]]:
    """Returns the station, the party id and the earlier cases the same person was party to."""
    case = await _case(conn, actor, tracking_no)
    await record(conn, tracking_no)
    keys = party_keys(index, phone, id_no)
    party_id = await db.records.next_party_id(conn)
    sealed = cipher.seal_json(
        {"name": name, "phone": phone, "id_no": id_no, "address": address}, context=f"{tracking_no}/party/{party_id}"
    )
    await db.records.insert_party(conn, party_id, tracking_no, role, sealed.kid, sealed.blob, keys)
    return case["station"], party_id, await db.records.earlier_cases(conn, keys, tracking_no)


async def schedule_session(
    conn: asyncpg.Connection,
    outbox: Outbox,
    actor: Actor,
    tracking_no: str,
    *,
    scheduled_at: datetime,
    place: str,
    attendees: list[str],
    now: datetime,
) -> tuple[str, int]:
    """Returns the station and the session id; the case's history and `mediation_scheduled` say when and where."""
    case = await _case(conn, actor, tracking_no)
    await record(conn, tracking_no)
    session_id = await db.records.insert_session(conn, tracking_no, scheduled_at, place, attendees)
    await db.cases.add_history(
        conn,
        tracking_no,
        at=now,
        status=case["status"],
        actor=actor.staff_id,
        reason=f"调解安排：{scheduled_at.isoformat()} {place}",
        event="mediation_scheduled",
        assignee_id=case["assignee_id"],
    )
    outbox.add(
        Topics.CASE_EVENTS,
        new_event(
            EventTypes.CASE_MEDIATION_SCHEDULED,
            CaseUpdated(
                tracking_no=tracking_no,
                station=case["station"],
                status=case["status"],
                assignee_id=case["assignee_id"],
                actor_id=actor.staff_id,
                at=now,
                due_at=scheduled_at,
            ),
            source=SOURCE,
            subject=tracking_no,
            stationid=case["station"],
        ),
    )
    return case["station"], session_id


async def record_minutes(
    conn: asyncpg.Connection,
    cipher: PiiCipher,
    actor: Actor,
    tracking_no: str,
    session_id: int,
    *,
    minutes: str,
    held_at: datetime,
) -> str:
    case = await _case(conn, actor, tracking_no)
    sealed = cipher.seal(minutes.encode(), context=f"{tracking_no}/session/{session_id}")
    if not await db.records.record_minutes(conn, tracking_no, session_id, sealed.kid, sealed.blob, held_at):
        raise Rejected("not_found", "未找到该调解场次。")
    return case["station"]


async def record_agreement(
    conn: asyncpg.Connection,
    cipher: PiiCipher,
    actor: Actor,
    tracking_no: str,
    agreement: dict[str, Any],
    *,
    signed_at: datetime,
    performance_checks: list[datetime],
) -> tuple[str, bool]:
    """The agreement (人民调解协议书) and its follow-up: performance checks on the dates given,
    and a reminder of the 30-day window for applying for court confirmation (司法确认).
    Saving it again corrects it: one set of follow-ups, pending ones moved to the new dates, done
    ones kept. Returns the station and whether the outcome is new (counted once)."""
    case = await _case(conn, actor, tracking_no)
    m = await db.records.lock_mediation(conn, tracking_no)
    if m is None:
        raise Rejected("no_mediation", "该事项尚未建立调解记录。")
    parties = {r["party_id"] for r in await db.records.parties(conn, tracking_no)}
    signers = {s["party_id"] for s in agreement["signatures"]}
    if len(parties) < 2 or not signers <= parties or signers != parties:
        raise Rejected("unsigned", "调解协议须由全部当事人签名。")
    sealed = cipher.seal_json(agreement, context=f"{tracking_no}/agreement")
    await db.records.upsert_agreement(conn, tracking_no, sealed.kid, sealed.blob, signed_at, actor.staff_id)
    await db.records.set_outcome(conn, tracking_no, "agreement", None, signed_at)
    window = signed_at + CONFIRMATION_WINDOW
    wanted = [("confirmation_window", window, window - timedelta(days=7))]
    wanted += [("performance_check", due, due - timedelta(days=1)) for due in sorted(set(performance_checks))]
    await db.records.delete_pending_followups_except(conn, tracking_no, wanted)
    await db.records.insert_missing_followups(conn, tracking_no, wanted)
    return case["station"], m["outcome"] != "agreement"


async def set_outcome(
    conn: asyncpg.Connection, actor: Actor, tracking_no: str, outcome: str, referral: str | None, now: datetime
) -> str:
    case = await _case(conn, actor, tracking_no)
    if outcome == "agreement":
        raise Rejected("use_agreement", "达成协议请录入调解协议。")
    if outcome == "no_agreement" and referral is None:
        raise Rejected("missing_referral", "未达成协议须写明引导去向（法院或人民调解委员会）。")
    await record(conn, tracking_no)
    await db.records.set_outcome(conn, tracking_no, outcome, referral, now)
    return case["station"]


async def complete_followup(
    conn: asyncpg.Connection, actor: Actor, tracking_no: str, followup_id: int, result: str, now: datetime
) -> str:
    case = await _case(conn, actor, tracking_no)
    if not await db.records.complete_followup(conn, tracking_no, followup_id, result, now):
        raise Rejected("not_found", "未找到待办的回访履行事项。")
    return case["station"]


async def view(
    conn: asyncpg.Connection, cipher: PiiCipher, actor: Actor, tracking_no: str
) -> tuple[str, dict[str, Any]]:
    """The case's station, and the whole record with its personal data opened (the caller audits the view)."""
    case = await _case(conn, actor, tracking_no)
    m = await db.records.lock_mediation(conn, tracking_no)
    if m is None:
        raise Rejected("no_mediation", "该事项尚未建立调解记录。")
    parties = []
    for p in await db.records.parties(conn, tracking_no):
        data = cipher.open_json(Sealed(p["pii_kid"], p["sealed"]), context=f"{tracking_no}/party/{p['party_id']}")
        earlier = await db.records.earlier_cases(conn, list(p["party_keys"] or []), tracking_no)
        parties.append({"party_id": p["party_id"], "role": p["role"], **data, "earlier_cases": earlier})
    sessions = []
    for s in await db.records.sessions(conn, tracking_no):
        minutes = (
            cipher.open(Sealed(s["pii_kid"], s["minutes"]), context=f"{tracking_no}/session/{s['session_id']}")
            if s["minutes"] is not None
            else None
        )
        sessions.append(
            {
                "session_id": s["session_id"],
                "scheduled_at": s["scheduled_at"],
                "place": s["place"],
                "attendees": list(s["attendees"]),
                "held_at": s["held_at"],
                "minutes": minutes.decode() if minutes else None,
            }
        )
    a = await db.records.get_agreement(conn, tracking_no)
    agreement = None
    if a is not None:
        agreement = {
            **cipher.open_json(Sealed(a["pii_kid"], a["sealed"]), context=f"{tracking_no}/agreement"),
            "signed_at": a["signed_at"],
            "recorded_by": a["recorded_by"],
        }
    followups = [dict(f) for f in await db.records.followups(conn, tracking_no)]
    return case["station"], {
        "tracking_no": tracking_no,
        "station": m["station"],
        "mediator_id": m["mediator_id"],
        "opened_at": m["opened_at"],
        "outcome": m["outcome"],
        "referral": m["referral"],
        "outcome_at": m["outcome_at"],
        "parties": parties,
        "sessions": sessions,
        "agreement": agreement,
        "followups": followups,
    }


async def printable_agreement(
    conn: asyncpg.Connection, cipher: PiiCipher, actor: Actor, tracking_no: str
) -> tuple[str, dict[str, Any]]:
    """What the printed agreement shows: the record, the station's and the mediator's names."""
    station, data = await view(conn, cipher, actor, tracking_no)
    return station, {
        **data,
        "station_name": await db.cases.station_name(conn, station),
        "mediator_name": await db.cases.staff_name(conn, data["mediator_id"]),
    }

"""Mediation records (大调解): parties, sessions, outcome, the agreement and its follow-up.
Personal data is sealed with the deployment's keys, bound to the case (`{no}/party/{id}` ...)."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from fengqiao.events import CaseUpdated, EventTypes, Topics, new_event
from fengqiao.constants import MEDIATION_SOURCE as SOURCE
from fengqiao.outbox import Outbox
from fengqiao.pii import BlindIndex, PiiCipher, Sealed, normalise_phone
from mediation.lifecycle import Rejected

CONFIRMATION_WINDOW = timedelta(days=30)  # 司法确认: apply within 30 days of the agreement


def party_keys(index: BlindIndex, phone: str, id_no: str) -> list[str]:
    keys = []
    if phone:
        keys.append(index.of(normalise_phone(phone), purpose="phone"))
    if id_no:
        keys.append(index.of(id_no.strip().upper(), purpose="id_no"))
    return keys


async def open_record(conn: asyncpg.Connection, case, mediator_id: str, now: datetime) -> bool:
    mediator = await conn.fetchrow("SELECT station, role, active FROM staff WHERE staff_id = $1", mediator_id)
    if mediator is None or not mediator["active"] or mediator["station"] != case["station"]:
        raise Rejected("invalid_mediator", "调解员须为本所在岗人员。")
    done = await conn.execute(
        "INSERT INTO mediations (tracking_no, station, mediator_id, opened_at) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (tracking_no) DO NOTHING", case["tracking_no"], case["station"], mediator_id, now)
    return done.endswith(" 1")


async def record(conn: asyncpg.Connection, tracking_no: str) -> asyncpg.Record:
    row = await conn.fetchrow("SELECT * FROM mediations WHERE tracking_no = $1", tracking_no)
    if row is None:
        raise Rejected("no_mediation", "该事项尚未建立调解记录。")
    return row


async def add_party(conn: asyncpg.Connection, cipher: PiiCipher, index: BlindIndex, tracking_no: str, *, role: str,
                    name: str, phone: str, id_no: str, address: str) -> tuple[int, list[str]]:
    """Returns the party id and the earlier cases (tracking numbers) the same person was party to."""
    await record(conn, tracking_no)
    keys = party_keys(index, phone, id_no)
    party_id = await conn.fetchval("SELECT nextval(pg_get_serial_sequence('mediation_parties', 'party_id'))")
    sealed = cipher.seal_json({"name": name, "phone": phone, "id_no": id_no, "address": address},
                              context=f"{tracking_no}/party/{party_id}")
    await conn.execute(
        "INSERT INTO mediation_parties (party_id, tracking_no, role, pii_kid, sealed, party_keys) "
        "VALUES ($1, $2, $3, $4, $5, $6)", party_id, tracking_no, role, sealed.kid, sealed.blob, keys)
    earlier = await conn.fetch(
        "SELECT DISTINCT tracking_no FROM mediation_parties WHERE party_keys && $1::text[] AND tracking_no <> $2 "
        "ORDER BY tracking_no", keys, tracking_no) if keys else []
    return party_id, [r["tracking_no"] for r in earlier]


async def schedule_session(conn: asyncpg.Connection, outbox: Outbox, case, *, scheduled_at: datetime, place: str,
                           attendees: list[str], actor_id: str, now: datetime) -> int:
    await record(conn, case["tracking_no"])
    session_id = await conn.fetchval(
        "INSERT INTO mediation_sessions (tracking_no, scheduled_at, place, attendees) VALUES ($1, $2, $3, $4) "
        "RETURNING session_id", case["tracking_no"], scheduled_at, place, attendees)
    await conn.execute(
        "INSERT INTO case_history (tracking_no, at, status, actor, reason, event, assignee_id) "
        "VALUES ($1, $2, $3, $4, $5, 'mediation_scheduled', $6)", case["tracking_no"], now, case["status"], actor_id,
        f"调解安排：{scheduled_at.isoformat()} {place}", case["assignee_id"])
    outbox.add(Topics.CASE_EVENTS, new_event(EventTypes.CASE_MEDIATION_SCHEDULED, CaseUpdated(
        tracking_no=case["tracking_no"], station=case["station"], status=case["status"], assignee_id=case["assignee_id"],
        actor_id=actor_id, at=now, due_at=scheduled_at,
    ), source=SOURCE, subject=case["tracking_no"], stationid=case["station"]))
    return session_id


async def record_minutes(conn: asyncpg.Connection, cipher: PiiCipher, tracking_no: str, session_id: int, *,
                         minutes: str, held_at: datetime) -> None:
    sealed = cipher.seal(minutes.encode(), context=f"{tracking_no}/session/{session_id}")
    done = await conn.execute(
        "UPDATE mediation_sessions SET minutes = $3, pii_kid = $4, held_at = $5 WHERE tracking_no = $1 AND session_id = $2",
        tracking_no, session_id, sealed.blob, sealed.kid, held_at)
    if not done.endswith(" 1"):
        raise Rejected("not_found", "未找到该调解场次。")


async def record_agreement(conn: asyncpg.Connection, cipher: PiiCipher, tracking_no: str, agreement: dict, *,
                           signed_at: datetime, recorded_by: str, performance_checks: list[datetime]) -> None:
    """The agreement (人民调解协议书) and its follow-up: performance checks on the dates given,
    and a reminder of the 30-day window for applying for court confirmation (司法确认)."""
    await record(conn, tracking_no)
    parties = {r["party_id"] for r in await conn.fetch(
        "SELECT party_id FROM mediation_parties WHERE tracking_no = $1", tracking_no)}
    signers = {s["party_id"] for s in agreement["signatures"]}
    if len(parties) < 2 or not signers <= parties or signers != parties:
        raise Rejected("unsigned", "调解协议须由全部当事人签名。")
    sealed = cipher.seal_json(agreement, context=f"{tracking_no}/agreement")
    await conn.execute(
        "INSERT INTO mediation_agreements (tracking_no, pii_kid, sealed, signed_at, recorded_by) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tracking_no) DO UPDATE SET pii_kid = $2, sealed = $3, "
        "signed_at = $4, recorded_by = $5", tracking_no, sealed.kid, sealed.blob, signed_at, recorded_by)
    await conn.execute(
        "UPDATE mediations SET outcome = 'agreement', referral = NULL, outcome_at = $2 WHERE tracking_no = $1",
        tracking_no, signed_at)
    window = signed_at + CONFIRMATION_WINDOW
    rows = [(tracking_no, "confirmation_window", window, window - timedelta(days=7))]
    rows += [(tracking_no, "performance_check", due, due - timedelta(days=1)) for due in performance_checks]
    await conn.executemany(
        "INSERT INTO mediation_followups (tracking_no, kind, due_at, remind_at) VALUES ($1, $2, $3, $4)", rows)


async def set_outcome(conn: asyncpg.Connection, tracking_no: str, outcome: str, referral: str | None,
                      now: datetime) -> None:
    if outcome == "agreement":
        raise Rejected("use_agreement", "达成协议请录入调解协议。")
    if outcome == "no_agreement" and referral is None:
        raise Rejected("missing_referral", "未达成协议须写明引导去向（法院或人民调解委员会）。")
    await record(conn, tracking_no)
    await conn.execute("UPDATE mediations SET outcome = $2, referral = $3, outcome_at = $4 WHERE tracking_no = $1",
                       tracking_no, outcome, referral, now)


async def complete_followup(conn: asyncpg.Connection, tracking_no: str, followup_id: int, result: str,
                            now: datetime) -> None:
    done = await conn.execute(
        "UPDATE mediation_followups SET done_at = $3, result = $4 WHERE tracking_no = $1 AND followup_id = $2 "
        "AND done_at IS NULL", tracking_no, followup_id, now, result)
    if not done.endswith(" 1"):
        raise Rejected("not_found", "未找到待办的回访履行事项。")


async def view(conn: asyncpg.Connection, cipher: PiiCipher, tracking_no: str) -> dict:
    m = await record(conn, tracking_no)
    parties = []
    for p in await conn.fetch("SELECT * FROM mediation_parties WHERE tracking_no = $1 ORDER BY party_id", tracking_no):
        data = cipher.open_json(Sealed(p["pii_kid"], p["sealed"]), context=f"{tracking_no}/party/{p['party_id']}")
        earlier = await conn.fetch(
            "SELECT DISTINCT tracking_no FROM mediation_parties WHERE party_keys && $1::text[] AND tracking_no <> $2",
            p["party_keys"], tracking_no) if p["party_keys"] else []
        parties.append({"party_id": p["party_id"], "role": p["role"], **data,
                        "earlier_cases": sorted(r["tracking_no"] for r in earlier)})
    sessions = []
    for s in await conn.fetch("SELECT * FROM mediation_sessions WHERE tracking_no = $1 ORDER BY scheduled_at",
                              tracking_no):
        minutes = cipher.open(Sealed(s["pii_kid"], s["minutes"]), context=f"{tracking_no}/session/{s['session_id']}") \
            if s["minutes"] is not None else None
        sessions.append({"session_id": s["session_id"], "scheduled_at": s["scheduled_at"], "place": s["place"],
                         "attendees": list(s["attendees"]), "held_at": s["held_at"],
                         "minutes": minutes.decode() if minutes else None})
    a = await conn.fetchrow("SELECT * FROM mediation_agreements WHERE tracking_no = $1", tracking_no)
    agreement = None
    if a is not None:
        agreement = {**cipher.open_json(Sealed(a["pii_kid"], a["sealed"]), context=f"{tracking_no}/agreement"),
                     "signed_at": a["signed_at"], "recorded_by": a["recorded_by"]}
    followups = [dict(f) for f in await conn.fetch(
        "SELECT followup_id, kind, due_at, reminded_at, done_at, result FROM mediation_followups WHERE tracking_no = $1 "
        "ORDER BY due_at", tracking_no)]
    return {"tracking_no": tracking_no, "station": m["station"], "mediator_id": m["mediator_id"],
            "opened_at": m["opened_at"], "outcome": m["outcome"], "referral": m["referral"],
            "outcome_at": m["outcome_at"], "parties": parties, "sessions": sessions, "agreement": agreement,
            "followups": followups}

"""SQL of the mediation records (大调解): the record, parties, sessions, agreement and follow-ups.
Personal data arrives here sealed (kid + blob); this module never sees it in clear."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def insert_mediation(
    conn: asyncpg.Connection, tracking_no: str, station: str, mediator_id: str, opened_at: datetime
) -> bool:
    done = await conn.execute(
        "INSERT INTO mediations (tracking_no, station, mediator_id, opened_at) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (tracking_no) DO NOTHING",
        tracking_no,
        station,
        mediator_id,
        opened_at,
    )
    return done.endswith(" 1")


async def get_mediation(conn: asyncpg.Connection, tracking_no: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM mediations WHERE tracking_no = $1", tracking_no)


async def lock_mediation(conn: asyncpg.Connection, tracking_no: str) -> asyncpg.Record | None:
    """The record, locked for this transaction: two saves of one agreement run one after the other."""
    return await conn.fetchrow("SELECT * FROM mediations WHERE tracking_no = $1 FOR UPDATE", tracking_no)


async def set_mediator(conn: asyncpg.Connection, tracking_no: str, mediator_id: str) -> None:
    await conn.execute("UPDATE mediations SET mediator_id = $2 WHERE tracking_no = $1", tracking_no, mediator_id)


async def set_outcome(
    conn: asyncpg.Connection, tracking_no: str, outcome: str, referral: str | None, at: datetime
) -> None:
    await conn.execute(
        "UPDATE mediations SET outcome = $2, referral = $3, outcome_at = $4 WHERE tracking_no = $1",
        tracking_no,
        outcome,
        referral,
        at,
    )


async def next_party_id(conn: asyncpg.Connection) -> int:
    """Drawn first: the sealed data is bound to its party id."""
    return await conn.fetchval("SELECT nextval(pg_get_serial_sequence('mediation_parties', 'party_id'))")


async def insert_party(
    conn: asyncpg.Connection, party_id: int, tracking_no: str, role: str, kid: str, sealed: bytes, keys: list[str]
) -> None:
    await conn.execute(
        "INSERT INTO mediation_parties (party_id, tracking_no, role, pii_kid, sealed, party_keys) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        party_id,
        tracking_no,
        role,
        kid,
        sealed,
        keys,
    )


async def earlier_cases(conn: asyncpg.Connection, keys: list[str], tracking_no: str) -> list[str]:
    """Other cases a party with any of these keyed hashes (phone, ID number) was party to."""
    if not keys:
        return []
    rows = await conn.fetch(
        "SELECT DISTINCT tracking_no FROM mediation_parties WHERE party_keys && $1::text[] AND tracking_no <> $2 "
        "ORDER BY tracking_no",
        keys,
        tracking_no,
    )
    return [r["tracking_no"] for r in rows]


async def parties(conn: asyncpg.Connection, tracking_no: str) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM mediation_parties WHERE tracking_no = $1 ORDER BY party_id", tracking_no)


async def insert_session(
    conn: asyncpg.Connection, tracking_no: str, scheduled_at: datetime, place: str, attendees: list[str]
) -> int:
    return await conn.fetchval(
        "INSERT INTO mediation_sessions (tracking_no, scheduled_at, place, attendees) VALUES ($1, $2, $3, $4) "
        "RETURNING session_id",
        tracking_no,
        scheduled_at,
        place,
        attendees,
    )


async def record_minutes(
    conn: asyncpg.Connection, tracking_no: str, session_id: int, kid: str, sealed: bytes, held_at: datetime
) -> bool:
    done = await conn.execute(
        "UPDATE mediation_sessions SET minutes = $3, pii_kid = $4, held_at = $5 "
        "WHERE tracking_no = $1 AND session_id = $2",
        tracking_no,
        session_id,
        sealed,
        kid,
        held_at,
    )
    return done.endswith(" 1")


async def sessions(conn: asyncpg.Connection, tracking_no: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM mediation_sessions WHERE tracking_no = $1 ORDER BY scheduled_at", tracking_no
    )


async def upsert_agreement(
    conn: asyncpg.Connection, tracking_no: str, kid: str, sealed: bytes, signed_at: datetime, recorded_by: str
) -> None:
    await conn.execute(
        "INSERT INTO mediation_agreements (tracking_no, pii_kid, sealed, signed_at, recorded_by) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tracking_no) DO UPDATE SET pii_kid = $2, sealed = $3, "
        "signed_at = $4, recorded_by = $5",
        tracking_no,
        kid,
        sealed,
        signed_at,
        recorded_by,
    )


async def get_agreement(conn: asyncpg.Connection, tracking_no: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM mediation_agreements WHERE tracking_no = $1", tracking_no)


async def delete_pending_followups_except(
    conn: asyncpg.Connection, tracking_no: str, wanted: list[tuple[str, datetime, datetime]]
) -> None:
    """Drop the pending follow-ups that are not among the wanted (kind, due_at, remind_at); done ones stay."""
    await conn.execute(
        "DELETE FROM mediation_followups f WHERE f.tracking_no = $1 AND f.done_at IS NULL AND NOT EXISTS "
        "(SELECT 1 FROM unnest($2::text[], $3::timestamptz[]) w(kind, due_at) "
        "WHERE w.kind = f.kind AND w.due_at = f.due_at)",
        tracking_no,
        [w[0] for w in wanted],
        [w[1] for w in wanted],
    )


async def insert_missing_followups(
    conn: asyncpg.Connection, tracking_no: str, wanted: list[tuple[str, datetime, datetime]]
) -> None:
    """Add the wanted (kind, due_at, remind_at) follow-ups the record does not have yet."""
    await conn.execute(
        "INSERT INTO mediation_followups (tracking_no, kind, due_at, remind_at) "
        "SELECT $1, w.kind, w.due_at, w.remind_at FROM unnest($2::text[], $3::timestamptz[], $4::timestamptz[]) "
        "w(kind, due_at, remind_at) WHERE NOT EXISTS (SELECT 1 FROM mediation_followups f "
        "WHERE f.tracking_no = $1 AND f.kind = w.kind AND f.due_at = w.due_at)",
        tracking_no,
        [w[0] for w in wanted],
        [w[1] for w in wanted],
        [w[2] for w in wanted],
    )


async def complete_followup(
    conn: asyncpg.Connection, tracking_no: str, followup_id: int, result: str, at: datetime
) -> bool:
    done = await conn.execute(
        "UPDATE mediation_followups SET done_at = $3, result = $4 WHERE tracking_no = $1 AND followup_id = $2 "
        "AND done_at IS NULL",
        tracking_no,
        followup_id,
        at,
        result,
    )
    return done.endswith(" 1")


async def followups(conn: asyncpg.Connection, tracking_no: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT followup_id, kind, due_at, reminded_at, done_at, result, cancelled_at FROM mediation_followups "
        "WHERE tracking_no = $1 ORDER BY due_at",
        tracking_no,
    )


async def cancel_pending_followups(conn: asyncpg.Connection, tracking_no: str, at: datetime, note: str) -> int:
    """A voided case: its pending follow-ups are done without being performed (no reminder fires)."""
    done = await conn.execute(
        "UPDATE mediation_followups SET done_at = $2, cancelled_at = $2, result = $3 "
        "WHERE tracking_no = $1 AND done_at IS NULL",
        tracking_no,
        at,
        note,
    )
    return int(done.rsplit(" ", 1)[1])


async def pending_followups(conn: asyncpg.Connection, tracking_no: str) -> list[asyncpg.Record]:
    """The record's follow-ups still to be done (performance checks, the confirmation reminder)."""
    return await conn.fetch(
        "SELECT followup_id, kind, due_at FROM mediation_followups WHERE tracking_no = $1 AND done_at IS NULL "
        "ORDER BY due_at",
        tracking_no,
    )


async def claim_due_followups(conn: asyncpg.Connection, now: datetime, limit: int = 200) -> list[asyncpg.Record]:
    """Follow-ups whose reminder is due, locked for this transaction; other replicas skip them."""
    return await conn.fetch(
        "SELECT f.followup_id, f.tracking_no, f.kind, f.due_at, m.station, m.mediator_id FROM mediation_followups f "
        "JOIN mediations m USING (tracking_no) WHERE f.reminded_at IS NULL AND f.done_at IS NULL AND f.remind_at <= $1 "
        "ORDER BY f.remind_at LIMIT $2 FOR UPDATE OF f SKIP LOCKED",
        now,
        limit,
    )


async def mark_followup_reminded(conn: asyncpg.Connection, followup_id: int, at: datetime) -> None:
    await conn.execute("UPDATE mediation_followups SET reminded_at = $2 WHERE followup_id = $1", followup_id, at)


async def active_staff(conn: asyncpg.Connection, station: str) -> list[asyncpg.Record]:
    """The station's people at work (the choices for a mediator or a measure's owner), by role."""
    return await conn.fetch(
        "SELECT staff_id, name, role FROM staff WHERE station = $1 AND active ORDER BY role, staff_id", station
    )

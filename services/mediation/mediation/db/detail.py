"""SQL of the case detail page (issue 16, migration 0021): triage's decision with its reasons, the
early warnings naming a case, the same reporter's earlier cases, the case's version for stale
forms, who else has it open, and the names a page shows."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from fengqiao.events import AlertRaised, CaseTriaged


async def store_triage(conn: asyncpg.Connection, t: CaseTriaged, at: datetime) -> None:
    """Triage's decision as announced; a redelivery (or a second announcement) keeps the first."""
    await conn.execute(
        "INSERT INTO case_triage (tracking_no, station, type, category, urgency, needs_mediation, confidence, "
        "model_version, reasons, triaged_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
        "ON CONFLICT (tracking_no) DO NOTHING",
        t.tracking_no,
        t.station,
        t.type,
        t.category,
        t.urgency,
        t.needs_mediation,
        t.confidence,
        t.model_version,
        t.reasons,
        at,
    )


async def triage(conn: asyncpg.Connection, tracking_no: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT type, category, urgency, needs_mediation, confidence, model_version, reasons, triaged_at "
        "FROM case_triage WHERE tracking_no = $1",
        tracking_no,
    )


async def store_alert(conn: asyncpg.Connection, a: AlertRaised) -> None:
    """An alert, or its newer level (raised again with the same id): the latest state is kept."""
    await conn.execute(
        "INSERT INTO case_alerts (alert_id, station, kind, level, category, members, reporters, explanation, "
        "raised_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (alert_id) DO UPDATE SET "
        "level = EXCLUDED.level, members = EXCLUDED.members, reporters = EXCLUDED.reporters, "
        "explanation = EXCLUDED.explanation, raised_at = EXCLUDED.raised_at "
        "WHERE case_alerts.raised_at <= EXCLUDED.raised_at",
        a.alert_id,
        a.station,
        a.kind,
        a.level,
        a.category,
        a.members,
        a.reporters,
        a.explanation,
        a.raised_at,
    )


async def alerts_of(conn: asyncpg.Connection, tracking_no: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT alert_id, kind, level, category, reporters, explanation, raised_at FROM case_alerts "
        "WHERE members @> ARRAY[$1::text] ORDER BY raised_at DESC LIMIT 20",
        tracking_no,
    )


async def duplicates(conn: asyncpg.Connection, tracking_no: str) -> list[asyncpg.Record]:
    """The repeats merged into this case, and the case this one was merged into (并单)."""
    return await conn.fetch(
        "SELECT d.tracking_no, d.merged_into, d.similarity, d.reason, d.submitted_at FROM case_duplicates d "
        "WHERE d.merged_into = $1 "
        # the case this one went into only if the reader may open it (row-level security on cases);
        # repeats merged by triage never became cases of their own and share this case's access
        "OR (d.tracking_no = $1 AND EXISTS (SELECT 1 FROM cases c WHERE c.tracking_no = d.merged_into)) "
        "ORDER BY d.submitted_at",
        tracking_no,
    )


async def earlier_of_reporter(conn: asyncpg.Connection, tracking_no: str, limit: int = 20) -> list[asyncpg.Record]:
    """The same station's earlier cases of this case's reporter (same keyed hash), newest first."""
    return await conn.fetch(
        "SELECT c.tracking_no, c.status, c.category, c.submitted_at FROM case_files me "
        "JOIN case_files f ON f.station = me.station AND f.reporter_key = me.reporter_key "
        "AND f.tracking_no <> me.tracking_no AND f.received_at < me.received_at "
        "JOIN cases c ON c.tracking_no = f.tracking_no "
        "WHERE me.tracking_no = $1 AND me.reporter_key IS NOT NULL "
        "ORDER BY f.received_at DESC LIMIT $2",
        tracking_no,
        limit,
    )


async def history_with_ids(conn: asyncpg.Connection, tracking_no: str, after_id: int = 0) -> list[asyncpg.Record]:
    """The case's history steps (after the step `after_id`: what changed since a form was shown)."""
    return await conn.fetch(
        "SELECT id, at, status, actor, reason, event, assignee_id FROM case_history "
        "WHERE tracking_no = $1 AND id > $2 ORDER BY at, id",
        tracking_no,
        after_id,
    )


async def version(conn: asyncpg.Connection, tracking_no: str) -> int:
    """The case's version: its latest history step (every change of a case writes one)."""
    return int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM case_history WHERE tracking_no = $1", tracking_no))


async def recent_activity(
    conn: asyncpg.Connection, tracking_no: str, staff_id: str, since: datetime, looking: list[str]
) -> list[asyncpg.Record]:
    """Others who opened or changed the case since `since`, from the audit log: their latest entry
    each, and whether any of theirs was a change (an action not in `looking`)."""
    return await conn.fetch(
        "SELECT a.staff_id, s.name, max(a.at) AS at, bool_or(a.action <> ALL($4::text[])) AS changed "
        "FROM audit_log a LEFT JOIN staff s ON s.staff_id = a.staff_id "
        "WHERE a.tracking_no = $1 AND a.at >= $3 AND a.staff_id <> $2 AND a.action NOT LIKE 'refused%' "
        "GROUP BY a.staff_id, s.name ORDER BY max(a.at) DESC LIMIT 5",
        tracking_no,
        staff_id,
        since,
        looking,
    )


async def staff_names(conn: asyncpg.Connection, staff_ids: list[str]) -> dict[str, str]:
    rows = await conn.fetch("SELECT staff_id, name FROM staff WHERE staff_id = any($1::text[])", staff_ids)
    return {r["staff_id"]: r["name"] for r in rows}


async def active_staff(conn: asyncpg.Connection, station: str) -> list[asyncpg.Record]:
    """Whom a case of the station may be given to (改派)."""
    return await conn.fetch(
        "SELECT staff_id, name, role FROM staff WHERE station = $1 AND active ORDER BY role, staff_id", station
    )


async def other_stations(conn: asyncpg.Connection, station: str) -> list[asyncpg.Record]:
    """Where a case may be transferred to (移交)."""
    return await conn.fetch("SELECT code, name FROM stations WHERE code <> $1 ORDER BY code", station)


async def open_measures(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """The station's open rectification measures (row-level security: the reader's station)."""
    return await conn.fetch(
        "SELECT measure_id, title, due_at FROM rectifications WHERE status = 'open' ORDER BY due_at LIMIT 100"
    )


async def measures_of(conn: asyncpg.Connection, tracking_no: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT r.measure_id, r.title, r.status FROM rectification_items i "
        "JOIN rectifications r ON r.measure_id = i.measure_id WHERE i.tracking_no = $1 ORDER BY r.measure_id",
        tracking_no,
    )

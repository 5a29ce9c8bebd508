"""Mediation's SQL."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from fengqiao.events import CaseAssigned, CaseMerged


async def open_case(conn: asyncpg.Connection, a: CaseAssigned, *, assigned_at: datetime, accept_due_at: datetime) -> bool:
    """The case and the first entry of its history, in one statement; False if it existed."""
    created = await conn.fetchval(
        "WITH c AS (INSERT INTO cases (tracking_no, station, status, type, category, urgency, needs_mediation, "
        "assignee_id, team, flagged, assignment_reason, submitted_at, assigned_at, accept_due_at) "
        "VALUES ($1, $2, 'assigned', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) "
        "ON CONFLICT (tracking_no) DO NOTHING RETURNING tracking_no) "
        "INSERT INTO case_history (tracking_no, at, status, actor, reason) "
        "SELECT tracking_no, $12, 'assigned', 'triage', $10 FROM c RETURNING true",
        a.tracking_no, a.station, a.type, a.category, a.urgency, a.needs_mediation, a.assignee_id, a.team,
        a.flagged, a.reason, a.submitted_at, assigned_at, accept_due_at,
    )
    return bool(created)


async def record_duplicate(conn: asyncpg.Connection, m: CaseMerged, merged_at: datetime) -> None:
    await conn.execute(
        "INSERT INTO case_duplicates (tracking_no, merged_into, station, similarity, reason, submitted_at, merged_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tracking_no) DO NOTHING",
        m.tracking_no, m.merged_into, m.station, m.similarity, m.reason, m.submitted_at, merged_at,
    )


async def list_cases(conn: asyncpg.Connection, station: str | None, limit: int = 100) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT c.tracking_no, c.station, c.status, c.type, c.category, c.urgency, c.assignee_id, c.flagged, "
        "c.submitted_at, c.assigned_at, c.accept_due_at, "
        "coalesce(array_agg(d.tracking_no ORDER BY d.submitted_at) FILTER (WHERE d.tracking_no IS NOT NULL), '{}') "
        "AS duplicates "
        "FROM cases c LEFT JOIN case_duplicates d ON d.merged_into = c.tracking_no "
        "WHERE ($1::text IS NULL OR c.station = $1) GROUP BY c.tracking_no "
        "ORDER BY c.assigned_at DESC LIMIT $2", station, limit)


async def open_counts(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT station, status, count(*) AS n FROM cases WHERE status NOT IN ('closed', 'merged') "
        "GROUP BY station, status")

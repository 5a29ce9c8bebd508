"""Mediation's SQL."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from fengqiao.events import CaseAssigned


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


async def list_cases(conn: asyncpg.Connection, station: str | None, limit: int = 100) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT tracking_no, station, status, type, category, urgency, assignee_id, flagged, submitted_at, "
        "assigned_at, accept_due_at FROM cases WHERE ($1::text IS NULL OR station = $1) "
        "ORDER BY assigned_at DESC LIMIT $2", station, limit)


async def open_counts(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT station, status, count(*) AS n FROM cases WHERE status NOT IN ('closed', 'merged') "
        "GROUP BY station, status")

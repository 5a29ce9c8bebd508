"""Triage's SQL."""

from __future__ import annotations

from datetime import date, datetime, time

import asyncpg

from triage.domain import Assignment, Candidate, Classification, on_shift


async def candidates(conn: asyncpg.Connection, station: str, now_local: datetime) -> list[Candidate]:
    """Active staff of a station with their open load and whether a shift covers `now_local`
    (today's shifts, and yesterday's overnight shifts that run into today)."""
    today: date = now_local.date()
    rows = await conn.fetch(
        """
        SELECT s.staff_id, s.role, s.team, coalesce(l.open_items, 0) AS open_items,
               coalesce(array_agg(r.day) FILTER (WHERE r.day IS NOT NULL), '{}') AS days,
               coalesce(array_agg(r.starts) FILTER (WHERE r.day IS NOT NULL), '{}') AS starts,
               coalesce(array_agg(r.ends) FILTER (WHERE r.day IS NOT NULL), '{}') AS ends
        FROM staff s
        LEFT JOIN staff_load l ON l.staff_id = s.staff_id
        LEFT JOIN roster r ON r.staff_id = s.staff_id AND r.station = s.station
                          AND r.day BETWEEN $2::date - 1 AND $2::date
        WHERE s.station = $1 AND s.active
        GROUP BY s.staff_id, s.role, s.team, l.open_items
        """,
        station, today,
    )
    now_t = now_local.time().replace(tzinfo=None)
    result = []
    for row in rows:
        duty = any(_covers(day, starts, ends, today, now_t)
                   for day, starts, ends in zip(row["days"], row["starts"], row["ends"]))
        result.append(Candidate(row["staff_id"], row["role"], row["team"], row["open_items"], duty))
    return result


def _covers(day: date, starts: time, ends: time, today: date, now: time) -> bool:
    if day == today:
        return on_shift(now, starts, ends) and (starts <= ends or now >= starts)
    return starts > ends and now < ends  # yesterday's overnight shift running into today


async def record_decision(conn: asyncpg.Connection, tracking_no: str, station: str, c: Classification,
                          submitted_at: datetime) -> None:
    await conn.execute(
        "INSERT INTO decisions (tracking_no, station, type, category, urgency, needs_mediation, confidence, "
        "model_version, reasons, submitted_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        tracking_no, station, c.type, c.category, c.urgency, c.needs_mediation, c.confidence,
        c.model_version, c.reasons, submitted_at,
    )


async def record_assignment(conn: asyncpg.Connection, tracking_no: str, station: str, a: Assignment) -> None:
    await conn.execute(
        "WITH a AS (INSERT INTO assignments (tracking_no, station, assignee_id, team, reason, flagged) "
        "VALUES ($1, $2, $3, $4, $5, $6) RETURNING assignee_id) "
        "INSERT INTO staff_load (staff_id, open_items) SELECT assignee_id, 1 FROM a WHERE assignee_id IS NOT NULL "
        "ON CONFLICT (staff_id) DO UPDATE SET open_items = staff_load.open_items + 1",
        tracking_no, station, a.assignee_id, a.team, a.reason, a.flagged,
    )

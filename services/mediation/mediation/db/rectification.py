"""SQL of the rectification ledger (整改台账): measures, the items they answer, their progress."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

# Items that point at the station's own work and need a measure: complaints about police conduct,
# and opinions (suggestions and complaints) about the station's service.
NEEDS_MEASURE = (
    "category = 'police_conduct' OR (type IN ('suggestion', 'complaint') AND category = 'admin_service') "
    "OR type = 'suggestion'"
)


async def insert_measure(
    conn: asyncpg.Connection,
    *,
    station: str | None,
    title: str,
    description: str,
    owner_id: str,
    due_at: datetime,
    created_by: str,
) -> int:
    return await conn.fetchval(
        "INSERT INTO rectifications (station, title, description, owner_id, due_at, created_by) "
        "VALUES ($1, $2, $3, $4, $5, $6) RETURNING measure_id",
        station,
        title,
        description,
        owner_id,
        due_at,
        created_by,
    )


async def measure_for_update(conn: asyncpg.Connection, measure_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM rectifications WHERE measure_id = $1 FOR UPDATE", measure_id)


async def get_measure(conn: asyncpg.Connection, measure_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM rectifications WHERE measure_id = $1", measure_id)


async def list_measures(conn: asyncpg.Connection, limit: int = 500) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT r.*, (r.status = 'open' AND r.due_at < now()) AS overdue, "
        "coalesce((SELECT array_agg(i.tracking_no ORDER BY i.tracking_no) FROM rectification_items i "
        "JOIN cases c USING (tracking_no) "  # only the cases the reader may open (row-level security)
        "WHERE i.measure_id = r.measure_id), '{}') AS tracking_nos FROM rectifications r "
        "ORDER BY r.created_at DESC LIMIT $1",
        limit,
    )


async def station_cases(conn: asyncpg.Connection, tracking_nos: list[str], station: str) -> set[str]:
    """Which of these tracking numbers are cases of the station."""
    rows = await conn.fetch(
        "SELECT tracking_no FROM cases WHERE tracking_no = any($1::text[]) AND station = $2", tracking_nos, station
    )
    return {r["tracking_no"] for r in rows}


async def link_items(conn: asyncpg.Connection, measure_id: int, tracking_nos: list[str]) -> None:
    await conn.executemany(
        "INSERT INTO rectification_items (measure_id, tracking_no) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        [(measure_id, no) for no in tracking_nos],
    )


async def visible_items(conn: asyncpg.Connection, measure_id: int) -> list[str]:
    """The measure's items the reader may open: not a case they are kept out of (row-level security)."""
    rows = await conn.fetch(
        "SELECT i.tracking_no FROM rectification_items i JOIN cases c USING (tracking_no) "
        "WHERE i.measure_id = $1 ORDER BY i.tracking_no",
        measure_id,
    )
    return [r["tracking_no"] for r in rows]


async def items(conn: asyncpg.Connection, measure_id: int) -> list[str]:
    rows = await conn.fetch(
        "SELECT tracking_no FROM rectification_items WHERE measure_id = $1 ORDER BY tracking_no", measure_id
    )
    return [r["tracking_no"] for r in rows]


async def insert_progress(conn: asyncpg.Connection, measure_id: int, at: datetime, staff_id: str, note: str) -> None:
    await conn.execute(
        "INSERT INTO rectification_progress (measure_id, at, staff_id, note) VALUES ($1, $2, $3, $4)",
        measure_id,
        at,
        staff_id,
        note,
    )


async def progress(conn: asyncpg.Connection, measure_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT at, staff_id, note FROM rectification_progress WHERE measure_id = $1 ORDER BY at", measure_id
    )


async def mark_done(conn: asyncpg.Connection, measure_id: int, by: str, at: datetime, evidence: str) -> None:
    await conn.execute(
        "UPDATE rectifications SET status = 'done', completed_by = $2, completed_at = $3, evidence = $4 "
        "WHERE measure_id = $1",
        measure_id,
        by,
        at,
        evidence,
    )


async def mark_verified(conn: asyncpg.Connection, measure_id: int, by: str, at: datetime, note: str) -> None:
    await conn.execute(
        "UPDATE rectifications SET status = 'verified', verified_by = $2, verified_at = $3, "
        "verification_note = $4 WHERE measure_id = $1",
        measure_id,
        by,
        at,
        note,
    )


async def unaddressed(
    conn: asyncpg.Connection, station: str | None, now: datetime, after: timedelta
) -> list[asyncpg.Record]:
    """Items that need a measure and have none after `after`."""
    return await conn.fetch(
        f"SELECT c.tracking_no, c.station, c.type, c.category, c.assigned_at FROM cases c "
        f"WHERE ({NEEDS_MEASURE}) AND c.assigned_at < $1 AND ($2::text IS NULL OR c.station = $2) AND "
        f"c.status NOT IN ('merged', 'voided') "
        f"AND NOT EXISTS (SELECT 1 FROM rectification_items i WHERE i.tracking_no = c.tracking_no) "
        f"ORDER BY c.assigned_at",
        now - after,
        station,
    )


async def counts(conn: asyncpg.Connection, now: datetime) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT station, count(*) FILTER (WHERE status = 'open') AS open, "
        "count(*) FILTER (WHERE status = 'open' AND due_at < $1) AS overdue FROM rectifications GROUP BY station",
        now,
    )

"""Mediation's SQL."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from fengqiao.events import CaseAssigned, CaseMerged


async def open_case(conn: asyncpg.Connection, a: CaseAssigned, *, assigned_at: datetime, accept_due_at: datetime) -> bool:
    """The case and the first entry of its history, in one statement; False if it existed."""
    created = await conn.fetchval(
        "WITH c AS (INSERT INTO cases (tracking_no, station, status, type, category, urgency, needs_mediation, "
        "assignee_id, team, flagged, assignment_reason, submitted_at, assigned_at, accept_due_at, confidential) "
        "VALUES ($1, $2, 'assigned', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) "
        "ON CONFLICT (tracking_no) DO NOTHING RETURNING tracking_no) "
        "INSERT INTO case_history (tracking_no, at, status, actor, reason) "
        "SELECT tracking_no, $12, 'assigned', 'triage', $10 FROM c RETURNING true",
        a.tracking_no, a.station, a.type, a.category, a.urgency, a.needs_mediation, a.assignee_id, a.team,
        a.flagged, a.reason, a.submitted_at, assigned_at, accept_due_at, a.confidential,
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


# -- lifecycle ----------------------------------------------------------------------------------


async def case_for_update(conn: asyncpg.Connection, tracking_no: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM cases WHERE tracking_no = $1 FOR UPDATE", tracking_no)


async def get_case(conn: asyncpg.Connection, tracking_no: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM cases WHERE tracking_no = $1", tracking_no)


async def apply_transition(conn: asyncpg.Connection, tracking_no: str, *, status: str, assignee_id: str | None,
                           station: str, changes: dict, at: datetime, actor: str, note: str,
                           event: str | None) -> None:
    allowed = {"handled_by", "returned_by", "visit_result", "escalated", "transferred_from", "flagged"}
    sets = ["status = $2", "assignee_id = $3", "station = $4", "updated_at = $5"]
    args: list = [tracking_no, status, assignee_id, station, at]
    for name, value in changes.items():
        if name not in allowed:
            raise ValueError(name)
        args.append(value)
        sets.append(f"{name} = ${len(args)}")
    await conn.execute(f"UPDATE cases SET {', '.join(sets)} WHERE tracking_no = $1", *args)
    await conn.execute(
        "INSERT INTO case_history (tracking_no, at, status, actor, reason, event, assignee_id) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)", tracking_no, at, status, actor, note, event, assignee_id)


async def history(conn: asyncpg.Connection, tracking_no: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT at, status, actor, reason, event, assignee_id FROM case_history WHERE tracking_no = $1 ORDER BY at, id",
        tracking_no)


async def start_clock(conn: asyncpg.Connection, tracking_no: str, clock: str, started_at: datetime,
                      due_at: datetime, remind_at: datetime, note: str) -> None:
    """(Re)start a clock. A clock restarted after a breach keeps its history in case_history and
    the breach in the statistics (counted when it happened)."""
    await conn.execute(
        "INSERT INTO case_clocks (tracking_no, clock, started_at, due_at, original_due_at, remind_at, note) "
        "VALUES ($1, $2, $3, $4, $4, $5, $6) ON CONFLICT (tracking_no, clock) DO UPDATE SET started_at = $3, "
        "due_at = $4, original_due_at = $4, remind_at = $5, note = $6, reminded_at = NULL, breached_at = NULL, "
        "supervise_at = NULL, supervised_at = NULL, done_at = NULL, extended_by = NULL, extension_reason = NULL",
        tracking_no, clock, started_at, due_at, remind_at, note)


async def stop_clock(conn: asyncpg.Connection, tracking_no: str, clock: str, at: datetime) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "UPDATE case_clocks SET done_at = $3 WHERE tracking_no = $1 AND clock = $2 AND done_at IS NULL "
        "RETURNING started_at, due_at, breached_at", tracking_no, clock, at)


async def extend_clock(conn: asyncpg.Connection, tracking_no: str, clock: str, due_at: datetime,
                       remind_at: datetime, by: str, reason: str) -> bool:
    done = await conn.execute(
        "UPDATE case_clocks SET due_at = $3, remind_at = $4, reminded_at = NULL, extended_by = $5, "
        "extension_reason = $6 WHERE tracking_no = $1 AND clock = $2 AND done_at IS NULL AND due_at < $3",
        tracking_no, clock, due_at, remind_at, by, reason)
    return done.endswith(" 1")


async def clocks(conn: asyncpg.Connection, tracking_no: str) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM case_clocks WHERE tracking_no = $1 ORDER BY started_at", tracking_no)


NEXT_FIRE = ("least(CASE WHEN reminded_at IS NULL THEN remind_at END, CASE WHEN breached_at IS NULL THEN due_at END, "
             "CASE WHEN supervised_at IS NULL THEN supervise_at END)")


async def claim_due_clocks(conn: asyncpg.Connection, now: datetime, limit: int = 200) -> list[asyncpg.Record]:
    """Due clock rows, locked for this transaction; other replicas skip them."""
    return await conn.fetch(
        f"SELECT k.*, c.station, c.assignee_id, c.status FROM case_clocks k JOIN cases c USING (tracking_no) "
        f"WHERE k.done_at IS NULL AND {NEXT_FIRE} <= $1 ORDER BY {NEXT_FIRE} LIMIT $2 FOR UPDATE OF k SKIP LOCKED",
        now, limit)


async def mark_clock(conn: asyncpg.Connection, tracking_no: str, clock: str, **stamps) -> None:
    allowed = {"reminded_at", "breached_at", "supervise_at", "supervised_at"}
    sets, args = [], [tracking_no, clock]
    for name, value in stamps.items():
        if name not in allowed:
            raise ValueError(name)
        args.append(value)
        sets.append(f"{name} = ${len(args)}")
    await conn.execute(f"UPDATE case_clocks SET {', '.join(sets)} WHERE tracking_no = $1 AND clock = $2", *args)


async def station_leader(conn: asyncpg.Connection, station: str) -> str | None:
    return await conn.fetchval(
        "SELECT staff_id FROM staff WHERE station = $1 AND role = 'leader' AND active ORDER BY staff_id LIMIT 1",
        station)


async def staff_station(conn: asyncpg.Connection, staff_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT station, role, active, confidential_handler FROM staff WHERE staff_id = $1",
                               staff_id)


async def calendar_days(conn: asyncpg.Connection) -> dict:
    return {r["day"]: r["is_workday"] for r in await conn.fetch("SELECT day, is_workday FROM calendar_days")}


async def station_rates(conn: asyncpg.Connection, now: datetime, days: int = 30) -> list[asyncpg.Record]:
    """响应率 (accepted on time), 解决率 (resolved or later), 按时办结率, 满意率 per station, over the
    cases assigned in the last `days` days. None where there is nothing to measure yet."""
    return await conn.fetch(
        """
        WITH c AS (SELECT * FROM cases WHERE assigned_at > $1::timestamptz - make_interval(days => $2)
                                         AND status <> 'merged')
        SELECT c.station,
               avg(CASE WHEN a.breached_at IS NULL THEN 1.0 ELSE 0.0 END)
                   FILTER (WHERE a.done_at IS NOT NULL OR a.breached_at IS NOT NULL) AS response,
               avg(CASE WHEN c.status IN ('resolved', 'visited', 'closed') THEN 1.0 ELSE 0.0 END) AS resolution,
               avg(CASE WHEN r.breached_at IS NULL THEN 1.0 ELSE 0.0 END)
                   FILTER (WHERE r.done_at IS NOT NULL OR r.breached_at IS NOT NULL) AS on_time,
               avg(CASE WHEN c.visit_result IN ('satisfied', 'basically_satisfied') THEN 1.0 ELSE 0.0 END)
                   FILTER (WHERE c.visit_result IS NOT NULL) AS satisfaction
        FROM c
        LEFT JOIN case_clocks a ON a.tracking_no = c.tracking_no AND a.clock = 'accept'
        LEFT JOIN case_clocks r ON r.tracking_no = c.tracking_no AND r.clock = 'resolve'
        GROUP BY c.station
        """, now, days)


async def is_confidential_handler(conn: asyncpg.Connection, staff_id: str, station: str | None) -> bool:
    """Approved by the station's leader to handle confidential tip-offs, and still active there."""
    return bool(await conn.fetchval(
        "SELECT confidential_handler FROM staff WHERE staff_id = $1 AND station = $2 AND active", staff_id, station))

"""SQL of the case clocks, the working-day calendar, the stations' duty hours and rates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg


async def start_clock(
    conn: asyncpg.Connection,
    tracking_no: str,
    clock: str,
    started_at: datetime,
    due_at: datetime,
    remind_at: datetime,
    note: str,
) -> None:
    """(Re)start a clock. A restart is a new deadline (breached_at cleared so the timer fires for
    it); a miss of an earlier run moves to missed_before_at, which no restart clears."""
    await conn.execute(
        "INSERT INTO case_clocks (tracking_no, clock, started_at, due_at, original_due_at, remind_at, note) "
        "VALUES ($1, $2, $3, $4, $4, $5, $6) ON CONFLICT (tracking_no, clock) DO UPDATE SET started_at = $3, "
        "due_at = $4, original_due_at = $4, remind_at = $5, note = $6, reminded_at = NULL, breached_at = NULL, "
        "missed_before_at = coalesce(case_clocks.missed_before_at, case_clocks.breached_at), "
        "supervise_at = NULL, supervised_at = NULL, done_at = NULL, extended_by = NULL, extension_reason = NULL, "
        "suspended_at = NULL, suspended_seconds = 0",
        tracking_no,
        clock,
        started_at,
        due_at,
        remind_at,
        note,
    )


# The time a suspended clock has waited until $3 (never negative).
_WAITED = "greatest($3 - suspended_at, interval '0')"


async def stop_clock(conn: asyncpg.Connection, tracking_no: str, clock: str, at: datetime) -> asyncpg.Record | None:
    """The clock is done (a wait in progress ends with it)."""
    return await conn.fetchrow(
        "UPDATE case_clocks SET done_at = $3, suspended_seconds = suspended_seconds + "
        f"coalesce(extract(epoch FROM {_WAITED}), 0), suspended_at = NULL "
        "WHERE tracking_no = $1 AND clock = $2 AND done_at IS NULL "
        "RETURNING started_at, due_at, breached_at",
        tracking_no,
        clock,
        at,
    )


async def suspended_since(conn: asyncpg.Connection, tracking_no: str, clock: str) -> datetime | None:
    """Since when the running clock waits for the citizen; None if it runs (or is done)."""
    return await conn.fetchval(
        "SELECT suspended_at FROM case_clocks WHERE tracking_no = $1 AND clock = $2 AND done_at IS NULL",
        tracking_no,
        clock,
    )


async def suspend_clock(conn: asyncpg.Connection, tracking_no: str, clock: str, at: datetime) -> bool:
    """Suspend a running clock; False if it is done or suspended already (a second request while
    waiting does not suspend twice)."""
    return bool(
        await conn.fetchval(
            "UPDATE case_clocks SET suspended_at = $3 WHERE tracking_no = $1 AND clock = $2 "
            "AND done_at IS NULL AND suspended_at IS NULL RETURNING true",
            tracking_no,
            clock,
            at,
        )
    )


async def resume_clock(conn: asyncpg.Connection, tracking_no: str, clock: str, at: datetime) -> asyncpg.Record | None:
    """Resume a suspended clock: its deadline (and the reminder and supervision still to come) move
    by the time waited; a miss before the wait stays (breached_at is not touched). None if it was not
    suspended."""
    return await conn.fetchrow(
        f"UPDATE case_clocks SET due_at = due_at + {_WAITED}, original_due_at = original_due_at + {_WAITED}, "
        f"remind_at = CASE WHEN reminded_at IS NULL THEN remind_at + {_WAITED} ELSE remind_at END, "
        f"supervise_at = CASE WHEN supervised_at IS NULL THEN supervise_at + {_WAITED} ELSE supervise_at END, "
        f"suspended_seconds = suspended_seconds + extract(epoch FROM {_WAITED}), suspended_at = NULL "
        "WHERE tracking_no = $1 AND clock = $2 AND done_at IS NULL AND suspended_at IS NOT NULL "
        "RETURNING due_at, suspended_seconds",
        tracking_no,
        clock,
        at,
    )


async def extend_clock(
    conn: asyncpg.Connection, tracking_no: str, clock: str, due_at: datetime, remind_at: datetime, by: str, reason: str
) -> bool:
    done = await conn.execute(
        "UPDATE case_clocks SET due_at = $3, remind_at = $4, reminded_at = NULL, extended_by = $5, "
        "extension_reason = $6 WHERE tracking_no = $1 AND clock = $2 AND done_at IS NULL AND due_at < $3",
        tracking_no,
        clock,
        due_at,
        remind_at,
        by,
        reason,
    )
    return done.endswith(" 1")


async def clocks(conn: asyncpg.Connection, tracking_no: str) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM case_clocks WHERE tracking_no = $1 ORDER BY started_at", tracking_no)


NEXT_FIRE = (
    "least(CASE WHEN reminded_at IS NULL THEN remind_at END, CASE WHEN breached_at IS NULL THEN due_at END, "
    "CASE WHEN supervised_at IS NULL THEN supervise_at END)"
)


async def claim_due_clocks(conn: asyncpg.Connection, now: datetime, limit: int = 200) -> list[asyncpg.Record]:
    """Due clock rows, locked for this transaction; other replicas skip them. A clock waiting for the
    citizen (suspended) is never due."""
    return await conn.fetch(
        f"SELECT k.*, c.station, c.assignee_id, c.status FROM case_clocks k JOIN cases c USING (tracking_no) "
        f"WHERE k.done_at IS NULL AND k.suspended_at IS NULL AND {NEXT_FIRE} <= $1 "
        f"ORDER BY {NEXT_FIRE} LIMIT $2 FOR UPDATE OF k SKIP LOCKED",
        now,
        limit,
    )


async def mark_clock(conn: asyncpg.Connection, tracking_no: str, clock: str, **stamps: datetime) -> None:
    allowed = {"reminded_at", "breached_at", "supervise_at", "supervised_at"}
    sets: list[str] = []
    args: list[Any] = [tracking_no, clock]
    for name, value in stamps.items():
        if name not in allowed:
            raise ValueError(name)
        args.append(value)
        sets.append(f"{name} = ${len(args)}")
    await conn.execute(f"UPDATE case_clocks SET {', '.join(sets)} WHERE tracking_no = $1 AND clock = $2", *args)


async def calendar_days(conn: asyncpg.Connection) -> dict[Any, bool]:
    return {r["day"]: r["is_workday"] for r in await conn.fetch("SELECT day, is_workday FROM calendar_days")}


async def upsert_calendar_days(conn: asyncpg.Connection, rows: list[tuple[Any, bool, str]]) -> None:
    """(day, is_workday, name) rows of a year's schedule, replacing what was loaded before."""
    await conn.executemany(
        "INSERT INTO calendar_days (day, is_workday, name) VALUES ($1, $2, $3) "
        "ON CONFLICT (day) DO UPDATE SET is_workday = $2, name = $3",
        rows,
    )


async def duty_hours(conn: asyncpg.Connection, station: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT starts, ends, schedule::text AS schedule FROM station_duty_hours WHERE station = $1", station
    )


async def station_rates(conn: asyncpg.Connection, now: datetime, days: int = 30) -> list[asyncpg.Record]:
    """响应率 (accepted on time), 解决率 (resolved or later), 按时办结率, 满意率 per station, over the
    cases assigned in the last `days` days. None where there is nothing to measure yet. Repeats
    (merged) and voided items (test, spam, abusive: 作废) are not the station's work and never count."""
    return await conn.fetch(
        """
        WITH c AS (SELECT * FROM cases WHERE assigned_at > $1::timestamptz - make_interval(days => $2)
                                         AND status NOT IN ('merged', 'voided'))
        SELECT c.station,
               avg(CASE WHEN coalesce(a.breached_at, a.missed_before_at) IS NULL THEN 1.0 ELSE 0.0 END)
                   FILTER (WHERE a.done_at IS NOT NULL OR coalesce(a.breached_at, a.missed_before_at) IS NOT NULL)
                   AS response,
               avg(CASE WHEN c.status IN ('resolved', 'visited', 'closed') THEN 1.0 ELSE 0.0 END) AS resolution,
               avg(CASE WHEN coalesce(r.breached_at, r.missed_before_at) IS NULL THEN 1.0 ELSE 0.0 END)
                   FILTER (WHERE r.done_at IS NOT NULL OR coalesce(r.breached_at, r.missed_before_at) IS NOT NULL)
                   AS on_time,
               avg(CASE WHEN c.visit_result IN ('satisfied', 'basically_satisfied') THEN 1.0 ELSE 0.0 END)
                   FILTER (WHERE c.visit_result IS NOT NULL) AS satisfaction
        FROM c
        LEFT JOIN case_clocks a ON a.tracking_no = c.tracking_no AND a.clock = 'accept'
        LEFT JOIN case_clocks r ON r.tracking_no = c.tracking_no AND r.clock = 'resolve'
        GROUP BY c.station
        """,
        now,
        days,
    )

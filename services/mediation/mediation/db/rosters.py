"""Mediation's SQL of duty rosters: patterns, exceptions and what was last published per day."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, time

import asyncpg


def _t(minutes: int) -> time:
    return time(minutes // 60, minutes % 60)


def minutes(t: time) -> int:
    return t.hour * 60 + t.minute


async def lock_station(conn: asyncpg.Connection, station: str) -> None:
    """One writer of a station's rosters at a time (replicas, the daily run, staff requests)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('fengqiao.roster:' || $1))", station)


async def station_exists(conn: asyncpg.Connection, station: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM stations WHERE code = $1", station))


async def staff_matching(conn: asyncpg.Connection, keys: Sequence[str]) -> list[asyncpg.Record]:
    """Staff whose id or badge number is one of `keys` (any station: the caller tells them apart)."""
    return await conn.fetch(
        "SELECT staff_id, station, name, role, team, badge_no, active FROM staff "
        "WHERE staff_id = ANY($1::text[]) OR badge_no = ANY($1::text[])",
        list(keys),
    )


async def station_staff(conn: asyncpg.Connection, station: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT staff_id, name, role, team, badge_no, active FROM staff WHERE station = $1", station
    )


async def pattern_rows(conn: asyncpg.Connection, station: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT pattern, weekday, staff_id, starts, ends FROM roster_patterns WHERE station = $1 "
        "ORDER BY pattern DESC, weekday, starts, staff_id",
        station,
    )


async def replace_pattern(
    conn: asyncpg.Connection, station: str, pattern: str, rows: Sequence[tuple[int | None, str, int, int]]
) -> None:
    """(weekday or None, staff_id, start, end) rows replace the station's `pattern` ('weekly'|'holiday')."""
    await conn.execute("DELETE FROM roster_patterns WHERE station = $1 AND pattern = $2", station, pattern)
    await conn.executemany(
        "INSERT INTO roster_patterns (station, pattern, weekday, staff_id, starts, ends) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        [(station, pattern, wd, staff_id, _t(s), _t(e)) for wd, staff_id, s, e in rows],
    )


async def stations_with_pattern(conn: asyncpg.Connection) -> list[str]:
    return [
        r["station"]
        for r in await conn.fetch("SELECT DISTINCT station FROM roster_patterns WHERE pattern = 'weekly' ORDER BY 1")
    ]


async def has_pattern(conn: asyncpg.Connection, station: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT true FROM roster_patterns WHERE station = $1 AND pattern = 'weekly' LIMIT 1", station
        )
    )


async def exceptions(conn: asyncpg.Connection, station: str, since: date) -> list[asyncpg.Record]:
    """The station's exceptions that reach `since` or later, oldest first."""
    return await conn.fetch(
        "SELECT id, kind, staff_id, to_staff_id, day_from, day_to, starts, ends, reason, created_by, created_at "
        "FROM roster_exceptions WHERE station = $1 AND day_to >= $2 ORDER BY id",
        station,
        since,
    )


async def count_future_exceptions(conn: asyncpg.Connection, station: str, since: date) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM roster_exceptions WHERE station = $1 AND day_to >= $2", station, since
        )
    )


async def insert_exception(
    conn: asyncpg.Connection,
    *,
    station: str,
    kind: str,
    staff_id: str,
    to_staff_id: str | None,
    day_from: date,
    day_to: date,
    start: int | None,
    end: int | None,
    reason: str | None,
    created_by: str,
) -> int:
    return int(
        await conn.fetchval(
            "INSERT INTO roster_exceptions (station, kind, staff_id, to_staff_id, day_from, day_to, starts, ends, "
            "reason, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            station,
            kind,
            staff_id,
            to_staff_id,
            day_from,
            day_to,
            None if start is None else _t(start),
            None if end is None else _t(end),
            reason,
            created_by,
        )
    )


async def delete_exception(conn: asyncpg.Connection, station: str, exception_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "DELETE FROM roster_exceptions WHERE station = $1 AND id = $2 RETURNING kind, staff_id, day_from, day_to",
        station,
        exception_id,
    )


async def published_hashes(conn: asyncpg.Connection, station: str, days: Sequence[date]) -> dict[date, str]:
    rows = await conn.fetch(
        "SELECT day, content_hash FROM roster_days WHERE station = $1 AND day = ANY($2::date[])", station, list(days)
    )
    return {r["day"]: r["content_hash"] for r in rows}


async def mark_published(conn: asyncpg.Connection, station: str, day: date, content_hash: str) -> None:
    await conn.execute(
        "INSERT INTO roster_days (station, day, content_hash) VALUES ($1, $2, $3) "
        "ON CONFLICT (station, day) DO UPDATE SET content_hash = $3, published_at = now()",
        station,
        day,
        content_hash,
    )

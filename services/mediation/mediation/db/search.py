"""The console's search index (migration 0025)."""

from __future__ import annotations

import asyncpg


async def store(conn: asyncpg.Connection, tracking_no: str, station: str, keys: list[int]) -> None:
    await conn.execute(
        "INSERT INTO case_search (tracking_no, station, word_keys) VALUES ($1, $2, $3) "
        "ON CONFLICT (tracking_no) DO UPDATE SET station = EXCLUDED.station, word_keys = EXCLUDED.word_keys",
        tracking_no,
        station,
        keys,
    )


async def by_reporter(conn: asyncpg.Connection, reporter_key: str, limit: int) -> list[str]:
    """The cases of one reporter that the reader may see, newest first."""
    rows = await conn.fetch(
        "SELECT f.tracking_no FROM case_files f JOIN cases c USING (tracking_no) "
        "WHERE f.reporter_key = $1 ORDER BY c.submitted_at DESC LIMIT $2",
        reporter_key,
        limit,
    )
    return [r["tracking_no"] for r in rows]


async def candidates(conn: asyncpg.Connection, keys: list[int], limit: int) -> list[str]:
    """Cases holding every one of `keys` that the reader may see (row-level security), newest first."""
    rows = await conn.fetch(
        "SELECT s.tracking_no FROM case_search s JOIN cases c USING (tracking_no) "
        "WHERE s.word_keys @> $1::integer[] ORDER BY c.submitted_at DESC LIMIT $2",
        keys,
        limit,
    )
    return [r["tracking_no"] for r in rows]

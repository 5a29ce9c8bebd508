"""Each station's reusable replies (migration 0026)."""

from __future__ import annotations

from typing import Literal

import asyncpg


async def of_station(conn: asyncpg.Connection, station: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, title, body, updated_by, updated_at FROM station_replies WHERE station = $1 ORDER BY title",
        station,
    )


async def get(conn: asyncpg.Connection, station: str, reply_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, title, body FROM station_replies WHERE id = $1 AND station = $2", reply_id, station
    )


async def save(
    conn: asyncpg.Connection, station: str, reply_id: int | None, title: str, body: str, by: str
) -> Literal["saved", "taken", "missing"]:
    """Add a reply, or change one of the station's: `taken` if another has the title, `missing` if
    the id is none of the station's."""
    try:
        if reply_id is None:
            await conn.execute(
                "INSERT INTO station_replies (station, title, body, updated_by) VALUES ($1, $2, $3, $4)",
                station,
                title,
                body,
                by,
            )
            return "saved"
        done = await conn.execute(
            "UPDATE station_replies SET title = $3, body = $4, updated_by = $5, updated_at = now() "
            "WHERE id = $1 AND station = $2",
            reply_id,
            station,
            title,
            body,
            by,
        )
        return "saved" if done.endswith(" 1") else "missing"
    except asyncpg.UniqueViolationError:
        return "taken"


async def delete(conn: asyncpg.Connection, station: str, reply_id: int) -> bool:
    done = await conn.execute("DELETE FROM station_replies WHERE id = $1 AND station = $2", reply_id, station)
    return done.endswith(" 1")

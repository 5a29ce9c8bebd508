"""SQL of who may open a case (exclusions, settled access) and of the citizen's sealed words."""

from __future__ import annotations

import asyncpg


async def add_exclusions(
    conn: asyncpg.Connection,
    tracking_no: str,
    station: str,
    staff_ids: list[str],
    *,
    origin: str,
    reason: str | None = None,
    added_by: str | None = None,
) -> list[str]:
    """Keep staff out of a case; returns those newly kept out."""
    rows = await conn.fetch(
        "INSERT INTO case_exclusions (tracking_no, staff_id, station, origin, reason, added_by) "
        "SELECT $1, s, $2, $3, $4, $5 FROM unnest($6::text[]) s ON CONFLICT DO NOTHING RETURNING staff_id",
        tracking_no,
        station,
        origin,
        reason,
        added_by,
        staff_ids,
    )
    return [r["staff_id"] for r in rows]


async def remove_exclusion(conn: asyncpg.Connection, tracking_no: str, staff_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "DELETE FROM case_exclusions WHERE tracking_no = $1 AND staff_id = $2 RETURNING true", tracking_no, staff_id
        )
    )


async def exclusions(conn: asyncpg.Connection, tracking_no: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT staff_id, origin, reason, added_by, added_at FROM case_exclusions WHERE tracking_no = $1 "
        "ORDER BY added_at, staff_id",
        tracking_no,
    )


async def excluded_staff(conn: asyncpg.Connection, tracking_no: str) -> frozenset[str]:
    rows = await conn.fetch("SELECT staff_id FROM case_exclusions WHERE tracking_no = $1", tracking_no)
    return frozenset(r["staff_id"] for r in rows)


async def is_excluded(conn: asyncpg.Connection, tracking_no: str, staff_id: str) -> asyncpg.Record | None:
    """The exclusion keeping `staff_id` out of the case (its station), if any."""
    return await conn.fetchrow(
        "SELECT station FROM case_exclusions WHERE tracking_no = $1 AND staff_id = $2", tracking_no, staff_id
    )


async def settle(conn: asyncpg.Connection, tracking_no: str, station: str) -> bool:
    """Triage has said who the item names among `station`'s staff: they may see the case while it is
    there. False if that was known already (a redelivery)."""
    return bool(
        await conn.fetchval(
            "INSERT INTO case_access (tracking_no, station) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
            tracking_no,
            station,
        )
    )


async def hold_transfer_notice(conn: asyncpg.Connection, tracking_no: str, station: str, notice: str) -> None:
    """The console notice of a transfer, kept until triage has checked the receiving station."""
    await conn.execute("DELETE FROM transfer_notices WHERE tracking_no = $1", tracking_no)
    await conn.execute(
        "INSERT INTO transfer_notices (tracking_no, station, notice) VALUES ($1, $2, $3::jsonb)",
        tracking_no,
        station,
        notice,
    )


async def take_transfer_notice(conn: asyncpg.Connection, tracking_no: str, station: str) -> str | None:
    """The held notice of the case's transfer to `station` (removed), if any."""
    value = await conn.fetchval(
        "DELETE FROM transfer_notices WHERE tracking_no = $1 AND station = $2 RETURNING notice::text",
        tracking_no,
        station,
    )
    return str(value) if value is not None else None


async def store_case_file(
    conn: asyncpg.Connection,
    tracking_no: str,
    station: str,
    channel: str,
    pii_kid: str,
    words_enc: bytes,
    reporter_key: str | None = None,
) -> None:
    """The citizen's words (sealed), the channel and the reporter's keyed hash; the case, if it
    exists already, learns the channel."""
    await conn.execute(
        "INSERT INTO case_files (tracking_no, station, channel, pii_kid, words_enc, reporter_key) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tracking_no) DO NOTHING",
        tracking_no,
        station,
        channel,
        pii_kid,
        words_enc,
        reporter_key,
    )
    await conn.execute("UPDATE cases SET channel = $2 WHERE tracking_no = $1 AND channel IS NULL", tracking_no, channel)


async def take_channel(conn: asyncpg.Connection, tracking_no: str) -> None:
    """A new case takes the channel of its case file, if that came first."""
    await conn.execute(
        "UPDATE cases c SET channel = f.channel FROM case_files f WHERE c.tracking_no = $1 "
        "AND f.tracking_no = c.tracking_no AND c.channel IS NULL",
        tracking_no,
    )


async def case_file(conn: asyncpg.Connection, tracking_no: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT channel, pii_kid, words_enc, received_at FROM case_files WHERE tracking_no = $1", tracking_no
    )


async def case_moved(conn: asyncpg.Connection, tracking_no: str, station: str) -> None:
    """A transferred case's exclusions follow it (the new station's leader reads and manages them),
    and it is unsettled at the receiving station until triage has matched the complaint against
    that station's staff (an earlier check of it, A -> B -> A, is forgotten: staff change)."""
    await conn.execute("UPDATE case_exclusions SET station = $2 WHERE tracking_no = $1", tracking_no, station)
    await conn.execute("DELETE FROM case_access WHERE tracking_no = $1 AND station = $2", tracking_no, station)

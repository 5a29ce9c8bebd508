"""SQL of what the citizen added to a case (sealed text, from intake)."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def insert_addition(
    conn: asyncpg.Connection,
    *,
    tracking_no: str,
    station: str,
    channel: str,
    answers_request: bool,
    event_id: str,
    pii_kid: str,
    text_enc: bytes,
    added_at: datetime,
) -> bool:
    """False if this event's addition is stored already."""
    return bool(
        await conn.fetchval(
            "INSERT INTO citizen_additions (tracking_no, station, channel, answers_request, event_id, pii_kid, "
            "text_enc, added_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_id) DO NOTHING "
            "RETURNING true",
            tracking_no,
            station,
            channel,
            answers_request,
            event_id,
            pii_kid,
            text_enc,
            added_at,
        )
    )


async def additions(conn: asyncpg.Connection, tracking_no: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT channel, answers_request, event_id, pii_kid, text_enc, added_at FROM citizen_additions "
        "WHERE tracking_no = $1 ORDER BY added_at, id",
        tracking_no,
    )

"""Notify's SQL."""

from __future__ import annotations

import asyncpg


async def add_console_notification(conn: asyncpg.Connection, *, event_source: str, event_id: str, recipient_id: str,
                                   station: str | None, kind: str, tracking_no: str | None, title: str,
                                   body: str) -> bool:
    return bool(await conn.fetchval(
        "INSERT INTO console_notifications (event_source, event_id, recipient_id, station, kind, tracking_no, "
        "title, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING true",
        event_source, event_id, recipient_id, station, kind, tracking_no, title, body))


async def station_name(conn: asyncpg.Connection, code: str) -> str:
    return await conn.fetchval("SELECT name FROM stations WHERE code = $1", code) or code


async def known_station_name(conn: asyncpg.Connection, code: str) -> str | None:
    """The name of a station in the directory, None if there is no such station."""
    return await conn.fetchval("SELECT name FROM stations WHERE code = $1", code)


async def station_leaders(conn: asyncpg.Connection, station: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT staff_id FROM staff WHERE station = $1 AND role IN ('leader', 'instructor') AND active "
        "ORDER BY role DESC, staff_id", station)
    return [r["staff_id"] for r in rows]


async def staff_name(conn: asyncpg.Connection, staff_id: str) -> str:
    return await conn.fetchval("SELECT name FROM staff WHERE staff_id = $1", staff_id) or ""


async def bureau_supervisors(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch("SELECT staff_id FROM staff WHERE role = 'bureau' AND active ORDER BY staff_id")
    return [r["staff_id"] for r in rows]


async def inbox(conn: asyncpg.Connection, recipient_id: str, *, unread_only: bool = False,
                limit: int = 50) -> tuple[list[asyncpg.Record], int]:
    rows = await conn.fetch(
        "SELECT id, kind, tracking_no, title, body, created_at, read_at FROM console_notifications "
        "WHERE recipient_id = $1 AND (NOT $2 OR read_at IS NULL) ORDER BY created_at DESC, id DESC LIMIT $3",
        recipient_id, unread_only, limit)
    unread = await conn.fetchval(
        "SELECT count(*) FROM console_notifications WHERE recipient_id = $1 AND read_at IS NULL", recipient_id)
    return rows, unread


async def mark_read(conn: asyncpg.Connection, recipient_id: str, ids: list[int] | None) -> int:
    """Mark the given notifications (or all, if None) of this recipient read; how many changed."""
    result = await conn.execute(
        "UPDATE console_notifications SET read_at = now() WHERE recipient_id = $1 AND read_at IS NULL "
        "AND ($2::bigint[] IS NULL OR id = ANY($2))", recipient_id, ids)
    return int(result.rsplit(" ", 1)[1])


DELIVERY_COLUMNS = ("id, channel, audience, template, tracking_no, station, status, attempts, last_error, "
                    "created_at, sent_at, failed_at, next_attempt_at, held_reason, resends, resent_by, "
                    "payload_kid, payload_enc, event_source, event_id, recipient_key")


async def deliveries(conn: asyncpg.Connection, *, all_stations: bool, station: str | None, status: str,
                     limit: int = 100) -> list:
    """Every station's only when asked for by name: a missing station means none, never all."""
    return await conn.fetch(
        f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE status = $1 AND ($2 OR station = $3::text) "
        "ORDER BY coalesce(failed_at, created_at) DESC, id DESC LIMIT $4", status, all_stations, station, limit)


async def delivery(conn: asyncpg.Connection, delivery_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1", delivery_id)


async def resend(conn: asyncpg.Connection, delivery_id: int, staff_id: str) -> bool:
    """A failed delivery goes again, with a fresh set of attempts (decided by a person)."""
    return bool(await conn.fetchval(
        "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(), failed_at = NULL, "
        "held_reason = NULL, resends = resends + 1, resent_by = $2 WHERE id = $1 AND status = 'failed' RETURNING true",
        delivery_id, staff_id))


async def dismiss(conn: asyncpg.Connection, delivery_id: int, staff_id: str) -> bool:
    """The citizen was told another way: the failure needs no resend."""
    return bool(await conn.fetchval(
        "UPDATE deliveries SET status = 'dismissed', resent_by = $2 WHERE id = $1 AND status = 'failed' "
        "RETURNING true", delivery_id, staff_id))


async def staff_phones(conn: asyncpg.Connection, staff_ids: list[str]) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT c.staff_id, c.phone_kid, c.phone_enc, s.station FROM staff_contacts c "
                            "JOIN staff s USING (staff_id) WHERE c.staff_id = ANY($1) AND s.active", staff_ids)

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


async def add_delivery(conn: asyncpg.Connection, *, event_source: str, event_id: str, recipient: str, channel: str,
                       template: str, tracking_no: str | None, station: str | None, body: str) -> bool:
    return bool(await conn.fetchval(
        "INSERT INTO deliveries (event_source, event_id, recipient, channel, template, tracking_no, station, body) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING true",
        event_source, event_id, recipient, channel, template, tracking_no, station, body))


async def station_name(conn: asyncpg.Connection, code: str) -> str:
    return await conn.fetchval("SELECT name FROM stations WHERE code = $1", code) or code


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


async def inbox(conn: asyncpg.Connection, recipient_id: str, limit: int = 50) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id, kind, tracking_no, title, body, created_at, read_at FROM console_notifications "
        "WHERE recipient_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2", recipient_id, limit)

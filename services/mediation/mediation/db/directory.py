"""Directory administration's SQL (migration 0015): stations, staff, their sealed contacts, the
flags on a leaving person's open cases and the directory audit. Rows of `stations` and `staff` are
written only through `fengqiao.directory.DirectoryWriter` (row and event in one transaction)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import time
from typing import Any

import asyncpg

_STATION_COLUMNS = (
    "code, name, jurisdiction, phone, active, mailbox, to_char(duty_starts, 'HH24:MI') AS duty_starts, "
    "to_char(duty_ends, 'HH24:MI') AS duty_ends, teams, category_teams::text AS category_teams, "
    "alert_thresholds::text AS alert_thresholds, updated_at, "
    "(SELECT d.schedule::text FROM station_duty_hours d WHERE d.station = stations.code) AS duty_schedule"
)
_STAFF_COLUMNS = (
    "s.staff_id, s.station, s.name, s.role, s.team, s.badge_no, s.active, s.confidential_handler, s.updated_at, "
    "a.username, a.must_change, c.contact_kid, c.contact_enc"
)
_STAFF_FROM = (
    "FROM staff s LEFT JOIN accounts a ON a.staff_id = s.staff_id LEFT JOIN staff_contacts c ON c.staff_id = s.staff_id"
)


def _station(row: asyncpg.Record | None) -> dict[str, Any] | None:
    if row is None:
        return None
    out = dict(row)
    out["category_teams"] = json.loads(out["category_teams"])
    out["alert_thresholds"] = json.loads(out["alert_thresholds"])
    out["duty_schedule"] = json.loads(out["duty_schedule"]) if out["duty_schedule"] else None
    out["jurisdiction"] = list(out["jurisdiction"])
    out["teams"] = list(out["teams"])
    return out


async def station(conn: asyncpg.Connection, code: str, *, lock: bool = False) -> dict[str, Any] | None:
    if lock:  # serialise changes of one station (two edits must not both start from the same row)
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('directory:station:' || $1))", code)
    return _station(await conn.fetchrow(f"SELECT {_STATION_COLUMNS} FROM stations WHERE code = $1", code))


async def stations(conn: asyncpg.Connection, only: str | None) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {_STATION_COLUMNS} FROM stations WHERE $1::text IS NULL OR code = $1 ORDER BY code", only
    )
    return [s for s in map(_station, rows) if s is not None]


async def set_duty_hours(
    conn: asyncpg.Connection, station: str, starts: time | None, ends: time | None, schedule: dict[str, Any]
) -> None:
    """The acceptance clock's on-duty hours (migrations 0007, 0018: the per-weekday and holiday
    exceptions); none = around the clock."""
    if starts is None or ends is None:
        await conn.execute("DELETE FROM station_duty_hours WHERE station = $1", station)
        return
    await conn.execute(
        "INSERT INTO station_duty_hours (station, starts, ends, schedule) VALUES ($1, $2, $3, $4::jsonb) "
        "ON CONFLICT (station) DO UPDATE SET starts = $2, ends = $3, schedule = $4::jsonb",
        station,
        starts,
        ends,
        json.dumps(schedule),
    )


async def staff_member(conn: asyncpg.Connection, staff_id: str, *, lock: bool = False) -> asyncpg.Record | None:
    if lock:
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('directory:staff:' || $1))", staff_id)
    return await conn.fetchrow(f"SELECT {_STAFF_COLUMNS} {_STAFF_FROM} WHERE s.staff_id = $1", staff_id)


async def staff_by_badge(conn: asyncpg.Connection, badge_no: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {_STAFF_COLUMNS} {_STAFF_FROM} WHERE s.badge_no = $1", badge_no)


async def staff_of_station(conn: asyncpg.Connection, station: str | None) -> list[asyncpg.Record]:
    """A station's staff (None: the deployment's own people, bureau and admin), active ones first."""
    return await conn.fetch(
        f"SELECT {_STAFF_COLUMNS} {_STAFF_FROM} WHERE s.station IS NOT DISTINCT FROM $1 "
        "ORDER BY NOT s.active, s.role, s.staff_id",
        station,
    )


async def staff_id_taken(conn: asyncpg.Connection, staff_id: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM staff WHERE staff_id = $1", staff_id))


async def lock_badge(conn: asyncpg.Connection, badge_no: str) -> None:
    """Two creations with one badge number wait for each other; the second sees the first."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('directory:badge:' || $1))", badge_no)


async def set_contact(conn: asyncpg.Connection, staff_id: str, kid: str, blob: bytes) -> None:
    await conn.execute(
        "INSERT INTO staff_contacts (staff_id, contact_kid, contact_enc) VALUES ($1, $2, $3) "
        "ON CONFLICT (staff_id) DO UPDATE SET contact_kid = $2, contact_enc = $3, updated_at = now()",
        staff_id,
        kid,
        blob,
    )


async def flag_open_cases(conn: asyncpg.Connection, staff_id: str, open_statuses: Sequence[str]) -> list[str]:
    """Mark the person's open cases for their leader to reassign; returns their tracking numbers."""
    rows = await conn.fetch(
        "UPDATE cases SET flagged = true, updated_at = now() WHERE assignee_id = $1 AND status = ANY($2::text[]) "
        "RETURNING tracking_no",
        staff_id,
        list(open_statuses),
    )
    return sorted(r["tracking_no"] for r in rows)


async def insert_audit(
    conn: asyncpg.Connection,
    *,
    actor: str,
    role: str,
    station: str | None,
    action: str,
    target: str,
    detail: dict[str, Any],
) -> None:
    await conn.execute(
        "INSERT INTO directory_audit (actor, role, station, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)",
        actor,
        role,
        station,
        action,
        target,
        json.dumps(detail, ensure_ascii=False, default=str),
    )


async def audit_entries(conn: asyncpg.Connection, station: str | None, limit: int) -> list[dict[str, Any]]:
    """The newest directory changes, of one station (None: every station and the deployment's)."""
    rows = await conn.fetch(
        "SELECT id, at, actor, role, station, action, target, detail::text AS detail FROM directory_audit "
        "WHERE $1::text IS NULL OR station = $1 ORDER BY id DESC LIMIT $2",
        station,
        limit,
    )
    return [dict(r) | {"detail": json.loads(r["detail"])} for r in rows]

"""Triage's SQL of early warning: thresholds, members of clusters, trends and repeat disputes, alerts."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import asyncpg

from fengqiao.taxonomy import DISPUTE_CATEGORIES
from triage.alerts import Draft, Thresholds

DISPUTES = list(DISPUTE_CATEGORIES)  # an array parameter: asyncpg takes a list


# -- alerts -------------------------------------------------------------------------------------


async def thresholds(conn: asyncpg.Connection) -> dict[tuple[str, str, str], Thresholds]:
    rows = await conn.fetch("SELECT station, category, kind, window_hours, yellow, orange, red FROM alert_thresholds")
    return {
        (r["station"], r["category"], r["kind"]): Thresholds(r["window_hours"], r["yellow"], r["orange"], r["red"])
        for r in rows
    }


async def cluster_members(
    conn: asyncpg.Connection, station: str, category: str, place_key: str, since: datetime, until: datetime
) -> tuple[list[str], int]:
    rows = await conn.fetch(
        "SELECT tracking_no, coalesce(reporter_key, 'item:' || tracking_no) AS who FROM decisions "
        "WHERE station = $1 AND category = $2 AND place_key = $3 AND submitted_at > $4 AND submitted_at <= $5 "
        "ORDER BY submitted_at",
        station,
        category,
        place_key,
        since,
        until,
    )
    return [r["tracking_no"] for r in rows], len({r["who"] for r in rows})


async def trend_counts(conn: asyncpg.Connection, station: str, category: str, now: datetime) -> tuple[list[str], float]:
    row = await conn.fetchrow(
        "SELECT array_agg(tracking_no ORDER BY submitted_at) "
        "FILTER (WHERE submitted_at > $3::timestamptz - interval '1 day') AS last, "
        "count(*) FILTER (WHERE submitted_at <= $3::timestamptz - interval '1 day') AS before "
        "FROM decisions WHERE station = $1 AND category = $2 AND submitted_at > $3::timestamptz - interval '8 days' "
        "AND submitted_at <= $3",
        station,
        category,
        now,
    )
    return list(row["last"] or []), row["before"] / 7.0


async def repeat_members(
    conn: asyncpg.Connection, station: str, reporter_key: str, since: datetime, until: datetime
) -> tuple[list[str], list[str]]:
    """The reporter's dispute items at this station: an alert goes to one station's leadership and
    must not list (or count) another station's items."""
    rows = await conn.fetch(
        "SELECT tracking_no, category FROM decisions WHERE reporter_key = $1 AND station = $5 "
        "AND category = ANY($2::text[]) AND merged_into IS NULL AND submitted_at > $3 AND submitted_at <= $4 "
        "ORDER BY submitted_at",
        reporter_key,
        DISPUTES,
        since,
        until,
        station,
    )
    return [r["tracking_no"] for r in rows], [r["category"] for r in rows]


async def upsert_alert(conn: asyncpg.Connection, station: str, draft: Draft, now: datetime, rank) -> tuple[str, bool]:
    """Store the alert; returns (alert_id, raised) where raised means new or a higher level.
    Serialised per (station, kind, key), so two replicas never open the same alert twice."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"alert:{station}:{draft.kind}:{draft.key}"
    )
    row = await conn.fetchrow(
        "SELECT alert_id, level FROM alerts WHERE station = $1 AND kind = $2 AND alert_key = $3 AND expires_at > $4 "
        "ORDER BY raised_at DESC LIMIT 1 FOR UPDATE",
        station,
        draft.kind,
        draft.key,
        now,
    )
    expires = now + timedelta(hours=draft.window_hours)
    if row is None:
        alert_id = "AL" + secrets.token_hex(6).upper()
        await conn.execute(
            "INSERT INTO alerts (alert_id, station, kind, alert_key, level, category, members, reporters, "
            "window_hours, explanation, raised_at, updated_at, expires_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12)",
            alert_id,
            station,
            draft.kind,
            draft.key,
            draft.level,
            draft.category,
            draft.members,
            draft.reporters,
            draft.window_hours,
            draft.explanation,
            now,
            expires,
        )
        return alert_id, True
    higher = rank(draft.level) > rank(row["level"])
    await conn.execute(
        "UPDATE alerts SET members = $2, reporters = $3, updated_at = $4, expires_at = $5, "
        "level = CASE WHEN $6 THEN $7 ELSE level END, explanation = CASE WHEN $6 THEN $8 ELSE explanation END "
        "WHERE alert_id = $1",
        row["alert_id"],
        draft.members,
        draft.reporters,
        now,
        expires,
        higher,
        draft.level,
        draft.explanation,
    )
    return row["alert_id"], higher


async def alerts(conn: asyncpg.Connection, station: str | None, limit: int = 100) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT alert_id, station, kind, level, category, members, reporters, window_hours, explanation, "
        "raised_at, updated_at, expires_at FROM alerts WHERE ($1::text IS NULL OR station = $1) "
        "ORDER BY updated_at DESC LIMIT $2",
        station,
        limit,
    )

"""Triage's SQL of the directory copy and assignments: who is on duty, the open items and their holders."""

from __future__ import annotations

from datetime import date, datetime, time

import asyncpg

from triage.assign import Assignment, Candidate, on_shift
from triage.station import UNKNOWN_STATION, StationSettings, settings_of

# -- directory and assignment -----------------------------------------------------------------


async def candidates(conn: asyncpg.Connection, station: str, now_local: datetime) -> list[Candidate]:
    """Active staff of a station with their open load and whether a shift covers `now_local`
    (today's shifts, and yesterday's overnight shifts that run into today)."""
    today: date = now_local.date()
    rows = await conn.fetch(
        """
        SELECT s.staff_id, s.role, s.team, s.name, s.badge_no, s.confidential_handler,
               coalesce(l.open_items, 0) AS open_items,
               coalesce(array_agg(r.day) FILTER (WHERE r.day IS NOT NULL), '{}') AS days,
               coalesce(array_agg(r.starts) FILTER (WHERE r.day IS NOT NULL), '{}') AS starts,
               coalesce(array_agg(r.ends) FILTER (WHERE r.day IS NOT NULL), '{}') AS ends
        FROM staff s
        LEFT JOIN staff_load l ON l.staff_id = s.staff_id
        LEFT JOIN roster r ON r.staff_id = s.staff_id AND r.station = s.station
                          AND r.day BETWEEN $2::date - 1 AND $2::date
        WHERE s.station = $1 AND s.active
        GROUP BY s.staff_id, s.role, s.team, s.name, s.badge_no, s.confidential_handler, l.open_items
        """,
        station,
        today,
    )
    now_t = now_local.time().replace(tzinfo=None)
    result = []
    for row in rows:
        duty = any(
            _covers(day, starts, ends, today, now_t)
            for day, starts, ends in zip(row["days"], row["starts"], row["ends"], strict=False)
        )
        result.append(
            Candidate(
                row["staff_id"],
                row["role"],
                row["team"],
                row["open_items"],
                duty,
                row["name"],
                row["badge_no"],
                row["confidential_handler"],
            )
        )
    return result


def _covers(day: date, starts: time, ends: time, today: date, now: time) -> bool:
    if day == today:
        return on_shift(now, starts, ends) and (starts <= ends or now >= starts)
    return starts > ends and now < ends  # yesterday's overnight shift running into today


async def team_rules(conn: asyncpg.Connection) -> dict[str, dict[str, str]]:
    """station ('*' = default) -> category -> team."""
    out: dict[str, dict[str, str]] = {}
    for r in await conn.fetch("SELECT station, category, team FROM assignment_rules"):
        out.setdefault(r["station"], {})[r["category"]] = r["team"]
    return out


async def record_assignment(conn: asyncpg.Connection, tracking_no: str, station: str, a: Assignment) -> None:
    await conn.execute(
        "WITH a AS (INSERT INTO assignments (tracking_no, station, assignee_id, team, reason, flagged) "
        "VALUES ($1, $2, $3, $4, $5, $6) RETURNING assignee_id) "
        "INSERT INTO staff_load (staff_id, open_items) SELECT assignee_id, 1 FROM a WHERE assignee_id IS NOT NULL "
        "ON CONFLICT (staff_id) DO UPDATE SET open_items = staff_load.open_items + 1",
        tracking_no,
        station,
        a.assignee_id,
        a.team,
        a.reason,
        a.flagged,
    )


async def close_item(conn: asyncpg.Connection, tracking_no: str) -> None:
    """The case stopped being open work: release its officer's load and its fingerprint."""
    await conn.execute(
        "WITH a AS (UPDATE assignments SET open = false WHERE tracking_no = $1 AND open RETURNING assignee_id) "
        "UPDATE staff_load l SET open_items = greatest(l.open_items - 1, 0) FROM a WHERE l.staff_id = a.assignee_id",
        tracking_no,
    )
    await conn.execute("UPDATE fingerprints SET open = false WHERE tracking_no = $1", tracking_no)
    await conn.execute("DELETE FROM lsh_buckets WHERE tracking_no = $1", tracking_no)


async def move_item(conn: asyncpg.Connection, tracking_no: str, assignee_id: str | None, station: str) -> None:
    """The item changed hands: one less for the old holder, one more for the new. A transfer to
    another station moves every row of the item with it (decision, assignment, fingerprint and its
    buckets), whoever holds it and whether or not it is still open work here."""
    await conn.execute(
        "UPDATE decisions SET station = $2 WHERE tracking_no = $1 AND station <> $2", tracking_no, station
    )
    await conn.execute(
        "UPDATE assignments SET station = $2 WHERE tracking_no = $1 AND station <> $2", tracking_no, station
    )
    await conn.execute(
        "UPDATE fingerprints SET station = $2 WHERE tracking_no = $1 AND station <> $2", tracking_no, station
    )
    await conn.execute(
        "UPDATE lsh_buckets SET station = $2 WHERE tracking_no = $1 AND station <> $2", tracking_no, station
    )
    old = await conn.fetchrow(
        "SELECT assignee_id FROM assignments WHERE tracking_no = $1 AND open FOR UPDATE", tracking_no
    )
    if old is None or old["assignee_id"] == assignee_id:
        return
    await conn.execute(
        "UPDATE assignments SET assignee_id = $2, flagged = false WHERE tracking_no = $1", tracking_no, assignee_id
    )
    if old["assignee_id"]:
        await conn.execute(
            "UPDATE staff_load SET open_items = greatest(open_items - 1, 0) WHERE staff_id = $1", old["assignee_id"]
        )
    if assignee_id:
        await conn.execute(
            "INSERT INTO staff_load (staff_id, open_items) VALUES ($1, 1) ON CONFLICT (staff_id) "
            "DO UPDATE SET open_items = staff_load.open_items + 1",
            assignee_id,
        )


async def waiting_for_officer(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Open items no officer holds: unassigned or parked in the leader's queue."""
    return await conn.fetch(
        "SELECT station, count(*) AS n FROM assignments WHERE open AND (assignee_id IS NULL OR flagged) "
        "GROUP BY station"
    )


# -- item lookups (the consumer and the staff API) -----------------------------------------------


async def use_custom_plans(conn: asyncpg.Connection) -> None:
    """Plan the transaction's lookups for the tables as they are now: a generic plan cached while the
    fingerprint and decision tables were small keeps scanning them as they grow (measured: 3 ms ->
    17 ms per item over the first 6,000 items; custom plans stay flat)."""
    await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")


async def assignment(conn: asyncpg.Connection, tracking_no: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT assignee_id, team, reason, flagged, open, assigned_at FROM assignments WHERE tracking_no = $1",
        tracking_no,
    )


async def is_confidential_handler(conn: asyncpg.Connection, staff_id: str, station: str) -> bool:
    """Approved by the station's leader to handle confidential tip-offs (and still active there)."""
    return bool(
        await conn.fetchval(
            "SELECT confidential_handler FROM staff WHERE staff_id = $1 AND station = $2 AND active", staff_id, station
        )
    )


async def station_settings(conn: asyncpg.Connection, station: str) -> StationSettings:
    """The station's own settings from the directory copy (defaults while the copy has no row)."""
    row = await conn.fetchrow("SELECT active, category_teams, alert_thresholds FROM stations WHERE code = $1", station)
    if row is None:
        return UNKNOWN_STATION
    return settings_of(row["active"], row["category_teams"], row["alert_thresholds"])


async def staff_station(conn: asyncpg.Connection, staff_id: str) -> str | None:
    """The station a member of staff is active at in the directory copy (None: unknown or inactive)."""
    value = await conn.fetchval("SELECT station FROM staff WHERE staff_id = $1 AND active", staff_id)
    return str(value) if value is not None else None

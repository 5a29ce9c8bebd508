"""SQL of the cases: the case row, its history (the one `INSERT INTO case_history`), duplicates,
the staff and stations a command looks up, the audit log and the staff transaction's scope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

from fengqiao.constants import STATION_TZ
from fengqiao.events import CaseAssigned, CaseMerged


async def insert_case(
    conn: asyncpg.Connection, a: CaseAssigned, *, assigned_at: datetime, accept_due_at: datetime
) -> bool:
    """A new case as triage assigned it; False if it existed (a redelivered event)."""
    created = await conn.fetchval(
        "INSERT INTO cases (tracking_no, station, status, type, category, urgency, needs_mediation, "
        "assignee_id, team, flagged, assignment_reason, submitted_at, assigned_at, accept_due_at, confidential) "
        "VALUES ($1, $2, 'assigned', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) "
        "ON CONFLICT (tracking_no) DO NOTHING RETURNING true",
        a.tracking_no,
        a.station,
        a.type,
        a.category,
        a.urgency,
        a.needs_mediation,
        a.assignee_id,
        a.team,
        a.flagged,
        a.reason,
        a.submitted_at,
        assigned_at,
        accept_due_at,
        a.confidential,
    )
    return bool(created)


async def add_history(
    conn: asyncpg.Connection,
    tracking_no: str,
    *,
    at: datetime,
    status: str,
    actor: str,
    reason: str | None,
    event: str | None = None,
    assignee_id: str | None = None,
) -> None:
    """One step of the case's timeline (append-only: who, when, why)."""
    await conn.execute(
        "INSERT INTO case_history (tracking_no, at, status, actor, reason, event, assignee_id) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        tracking_no,
        at,
        status,
        actor,
        reason,
        event,
        assignee_id,
    )


async def record_duplicate(conn: asyncpg.Connection, m: CaseMerged, merged_at: datetime) -> None:
    await conn.execute(
        "INSERT INTO case_duplicates (tracking_no, merged_into, station, similarity, reason, submitted_at, merged_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tracking_no) DO NOTHING",
        m.tracking_no,
        m.merged_into,
        m.station,
        m.similarity,
        m.reason,
        m.submitted_at,
        merged_at,
    )


@dataclass(frozen=True)
class CaseQuery:
    """Which of the station's cases a list shows (None: any), in what order, which page.
    `since`/`until` are submission dates on the stations' calendar (Beijing time), both included."""

    assignee_id: str | None = None
    statuses: tuple[str, ...] | None = None
    type: str | None = None
    category: str | None = None
    urgency: str | None = None
    channel: str | None = None
    overdue: bool | None = None
    flagged: bool | None = None  # for the leader to reassign (e.g. the holder left: directory_admin)
    since: date | None = None
    until: date | None = None
    tracking_nos: tuple[str, ...] | None = None  # only these (a search's hits)
    sort: str = "due"
    limit: int = 50
    offset: int = 0


# The deadline an officer works to: the running acceptance or resolution clock's.
_DUE = (
    "(SELECT min(q.due_at) FROM case_clocks q WHERE q.tracking_no = c.tracking_no "
    "AND q.clock IN ('accept', 'resolve') AND q.done_at IS NULL)"
)
_OVERDUE = (
    "EXISTS (SELECT 1 FROM case_clocks o WHERE o.tracking_no = c.tracking_no "
    "AND o.done_at IS NULL AND o.suspended_at IS NULL AND o.due_at < now())"
)
# Every filter is a parameter ($1 station ... $9 until, $10 the stations' time zone, $11 channel,
# $12 flagged, $13 tracking numbers: a search's hits), so the
# statement's text never varies with the request; only the ORDER BY is picked, from CASE_SORTS.
_WHERE = (
    "WHERE ($1::text IS NULL OR c.station = $1) AND ($2::text IS NULL OR c.assignee_id = $2) "
    "AND ($3::text[] IS NULL OR c.status = ANY($3)) AND ($4::text IS NULL OR c.type = $4) "
    "AND ($5::text IS NULL OR c.category = $5) AND ($6::text IS NULL OR c.urgency = $6) "
    f"AND ($7::boolean IS NULL OR {_OVERDUE} = $7) "
    "AND ($8::date IS NULL OR c.submitted_at >= ($8::date::timestamp AT TIME ZONE $10)) "
    "AND ($9::date IS NULL OR c.submitted_at < (($9::date + 1)::timestamp AT TIME ZONE $10)) "
    "AND ($11::text IS NULL OR c.channel = $11) "
    "AND ($12::boolean IS NULL OR c.flagged = $12) "
    "AND ($13::text[] IS NULL OR c.tracking_no = ANY($13)) "
)
CASE_SORTS = {
    "due": "due_at ASC NULLS LAST, c.submitted_at ASC",
    "-due": "due_at DESC NULLS LAST, c.submitted_at DESC",
    "submitted_at": "c.submitted_at ASC",
    "-submitted_at": "c.submitted_at DESC",
    "assigned_at": "assigned_at ASC",
    "-assigned_at": "assigned_at DESC",
}


def _filter_args(station: str | None, q: CaseQuery) -> list[Any]:
    statuses = list(q.statuses) if q.statuses else None
    return [
        station,
        q.assignee_id,
        statuses,
        q.type,
        q.category,
        q.urgency,
        q.overdue,
        q.since,
        q.until,
        STATION_TZ.key,
        q.channel,
        q.flagged,
        list(q.tracking_nos) if q.tracking_nos is not None else None,
    ]


async def _plan_per_request(conn: asyncpg.Connection) -> None:
    """The list statements' filters are `($n IS NULL OR ...)`: only a plan made for the values at
    hand can use an index. asyncpg prepares statements, and after five executions PostgreSQL may
    switch to a generic plan; at a million cases that was a sequential scan of every case with its
    row-level security subqueries, over the 4.5 s request limit (docs/benchmarks.md). Plan each
    execution for its values, for the rest of this transaction."""
    await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")


async def list_cases(conn: asyncpg.Connection, station: str | None, q: CaseQuery) -> list[asyncpg.Record]:
    """One page of the station's cases as `q` asks; `assigned_at` and `accept_due_at` are those of
    the current assignment (the acceptance clock restarts on reassignment and transfer), `due_at`
    the running acceptance or resolution deadline, `overdue` whether a running clock is past due."""
    await _plan_per_request(conn)
    return await conn.fetch(
        "SELECT c.tracking_no, c.station, c.status, c.type, c.category, c.urgency, c.channel, c.assignee_id, "
        "c.flagged, c.assignment_reason, "
        "c.submitted_at, coalesce(k.started_at, c.assigned_at) AS assigned_at, "
        "coalesce(k.due_at, c.accept_due_at) AS accept_due_at, "
        f"{_DUE} AS due_at, {_OVERDUE} AS overdue, "
        "coalesce(array_agg(d.tracking_no ORDER BY d.submitted_at) FILTER (WHERE d.tracking_no IS NOT NULL), '{}') "
        "AS duplicates "
        "FROM cases c LEFT JOIN case_clocks k ON k.tracking_no = c.tracking_no AND k.clock = 'accept' "
        "LEFT JOIN case_duplicates d ON d.merged_into = c.tracking_no "
        f"{_WHERE} GROUP BY c.tracking_no, k.tracking_no, k.clock "
        f"ORDER BY {CASE_SORTS[q.sort]}, c.tracking_no LIMIT $14 OFFSET $15",
        *_filter_args(station, q),
        q.limit,
        q.offset,
    )


async def count_cases(conn: asyncpg.Connection, station: str | None, q: CaseQuery) -> int:
    """How many cases match `q` across all its pages."""
    await _plan_per_request(conn)
    total = await conn.fetchval(f"SELECT count(*) FROM cases c {_WHERE}", *_filter_args(station, q))
    return int(total)


async def open_counts(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT station, status, count(*) AS n FROM cases WHERE status NOT IN ('closed', 'merged', 'voided') "
        "GROUP BY station, status"
    )


async def case_for_update(conn: asyncpg.Connection, tracking_no: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM cases WHERE tracking_no = $1 FOR UPDATE", tracking_no)


async def get_case(conn: asyncpg.Connection, tracking_no: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM cases WHERE tracking_no = $1", tracking_no)


async def update_case_state(
    conn: asyncpg.Connection,
    tracking_no: str,
    *,
    status: str,
    assignee_id: str | None,
    station: str,
    changes: dict[str, Any],
    at: datetime,
) -> None:
    allowed = {"handled_by", "returned_by", "visit_result", "escalated", "transferred_from", "flagged", "void_ground"}
    sets = ["status = $2", "assignee_id = $3", "station = $4", "updated_at = $5"]
    args: list[Any] = [tracking_no, status, assignee_id, station, at]
    for name, value in changes.items():
        if name not in allowed:
            raise ValueError(name)
        args.append(value)
        sets.append(f"{name} = ${len(args)}")
    await conn.execute(f"UPDATE cases SET {', '.join(sets)} WHERE tracking_no = $1", *args)


async def correct_classification(
    conn: asyncpg.Connection, tracking_no: str, changes: dict[str, str], needs_mediation: bool | None
) -> None:
    """New labels (type, category, urgency); `needs_mediation` follows a new category."""
    allowed = {"type", "category", "urgency"}
    sets: list[str] = ["updated_at = now()"]
    args: list[Any] = [tracking_no]
    for name, value in [*changes.items(), ("needs_mediation", needs_mediation)]:
        if name != "needs_mediation" and name not in allowed:
            raise ValueError(name)
        if value is not None:
            args.append(value)
            sets.append(f"{name} = ${len(args)}")
    await conn.execute(f"UPDATE cases SET {', '.join(sets)} WHERE tracking_no = $1", *args)


async def mark_escalated(conn: asyncpg.Connection, tracking_no: str, at: datetime) -> None:
    await conn.execute("UPDATE cases SET escalated = true, updated_at = $2 WHERE tracking_no = $1", tracking_no, at)


async def history(conn: asyncpg.Connection, tracking_no: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT at, status, actor, reason, event, assignee_id FROM case_history WHERE tracking_no = $1 ORDER BY at, id",
        tracking_no,
    )


async def station_leader(conn: asyncpg.Connection, station: str) -> str | None:
    return await conn.fetchval(
        "SELECT staff_id FROM staff WHERE station = $1 AND role = 'leader' AND active ORDER BY staff_id LIMIT 1",
        station,
    )


async def unexcluded_leadership(conn: asyncpg.Connection, tracking_no: str, station: str) -> str | None:
    """Who of the station's leadership may hold the case: the leader, else the instructor, never one
    kept out of it (named in the complaint, or excluded by the leader); None if both are."""
    return await conn.fetchval(
        "SELECT s.staff_id FROM staff s WHERE s.station = $2 AND s.role IN ('leader', 'instructor') AND s.active "
        "AND NOT EXISTS (SELECT 1 FROM case_exclusions e WHERE e.tracking_no = $1 AND e.staff_id = s.staff_id) "
        "ORDER BY s.role = 'leader' DESC, s.staff_id LIMIT 1",
        tracking_no,
        station,
    )


async def staff_station(conn: asyncpg.Connection, staff_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT station, role, active, confidential_handler FROM staff WHERE staff_id = $1", staff_id
    )


async def is_confidential_handler(conn: asyncpg.Connection, staff_id: str, station: str | None) -> bool:
    """Approved by the station's leader to handle confidential tip-offs, and still active there."""
    return bool(
        await conn.fetchval(
            "SELECT confidential_handler FROM staff WHERE staff_id = $1 AND station = $2 AND active", staff_id, station
        )
    )


async def station_exists(conn: asyncpg.Connection, station: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM stations WHERE code = $1", station))


async def station_name(conn: asyncpg.Connection, station: str) -> str | None:
    return await conn.fetchval("SELECT name FROM stations WHERE code = $1", station)


async def staff_name(conn: asyncpg.Connection, staff_id: str) -> str | None:
    return await conn.fetchval("SELECT name FROM staff WHERE staff_id = $1", staff_id)


# -- the staff transaction and its audit -----------------------------------------------------------


async def enter_staff_scope(conn: asyncpg.Connection, station: str, confidential: bool, staff_id: str = "") -> None:
    """Run the rest of the transaction as the restricted role, scoped to `station` ("*": all), as
    `staff_id` (cases they are kept out of are hidden)."""
    await conn.execute("SET LOCAL ROLE fengqiao_staff_api")
    await conn.execute(
        "SELECT set_config('fengqiao.station', $1, true), set_config('fengqiao.confidential', $2, true), "
        "set_config('fengqiao.staff', $3, true)",
        station,
        "on" if confidential else "off",
        staff_id,
    )


async def widen_to_deployment_scope(conn: asyncpg.Connection) -> None:
    """The rest of this staff transaction sees every station (a no-op outside one)."""
    await conn.execute("SELECT set_config('fengqiao.station', '*', true)")


async def insert_audit(
    conn: asyncpg.Connection,
    *,
    staff_id: str | None,
    role: str,
    station: str | None,
    action: str,
    tracking_no: str | None,
    detail: str | None,
) -> None:
    await conn.execute(
        "INSERT INTO audit_log (staff_id, role, station, action, tracking_no, detail) VALUES ($1, $2, $3, $4, $5, $6)",
        staff_id,
        role,
        station,
        action,
        tracking_no,
        detail,
    )


async def audit_entries(conn: asyncpg.Connection, tracking_no: str | None, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT at, staff_id, role, station, action, tracking_no, detail FROM audit_log "
        "WHERE ($1::text IS NULL OR tracking_no = $1) ORDER BY at DESC, id DESC LIMIT $2",
        tracking_no,
        limit,
    )

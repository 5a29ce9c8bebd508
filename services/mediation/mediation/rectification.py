"""整改台账: rectification measures for opinions and complaints about the station's own work.
Pure rules here; SQL and events in the functions below, all in the caller's transaction."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from fengqiao.events import CitizenUpdate, EventTypes, Topics, new_event
from fengqiao.constants import MEDIATION_SOURCE as SOURCE
from fengqiao.outbox import Outbox
from mediation.lifecycle import Actor, Rejected

LEADERSHIP = frozenset({"leader", "instructor"})
# Items that point at the station's own work and need a measure: complaints about police conduct,
# and opinions (suggestions and complaints) about the station's service.
NEEDS_MEASURE = ("category = 'police_conduct' OR (type IN ('suggestion', 'complaint') AND category = 'admin_service') "
                 "OR type = 'suggestion'")
UNADDRESSED_AFTER = timedelta(days=7)


def _need(condition: bool, code: str, message: str) -> None:
    if not condition:
        raise Rejected(code, message)


async def create(conn: asyncpg.Connection, actor: Actor, *, title: str, description: str, owner_id: str,
                 due_at: datetime, tracking_nos: list[str], now: datetime) -> int:
    _need(actor.leads, "forbidden", "只有所领导可以建立整改措施。")
    owner = await conn.fetchrow("SELECT station, active FROM staff WHERE staff_id = $1", owner_id)
    _need(owner is not None and owner["active"] and owner["station"] == actor.station, "invalid_owner",
          "责任人须为本所在岗人员。")
    _need(due_at > now, "invalid_due", "整改期限须晚于现在。")
    measure_id = await conn.fetchval(
        "INSERT INTO rectifications (station, title, description, owner_id, due_at, created_by) "
        "VALUES ($1, $2, $3, $4, $5, $6) RETURNING measure_id",
        actor.station, title, description, owner_id, due_at, actor.staff_id)
    await link(conn, actor, measure_id, tracking_nos)
    return measure_id


async def _measure(conn: asyncpg.Connection, measure_id: int) -> asyncpg.Record:
    row = await conn.fetchrow("SELECT * FROM rectifications WHERE measure_id = $1 FOR UPDATE", measure_id)
    _need(row is not None, "not_found", "未找到该整改措施。")
    return row


async def link(conn: asyncpg.Connection, actor: Actor, measure_id: int, tracking_nos: list[str]) -> None:
    m = await _measure(conn, measure_id)
    _need(actor.leads, "forbidden", "只有所领导可以关联反映事项。")
    found = {r["tracking_no"] for r in await conn.fetch(
        "SELECT tracking_no FROM cases WHERE tracking_no = any($1::text[]) AND station = $2", tracking_nos, m["station"])}
    missing = sorted(set(tracking_nos) - found)
    _need(not missing, "unknown_items", f"未找到本所的反映事项：{'、'.join(missing)}")
    await conn.executemany("INSERT INTO rectification_items (measure_id, tracking_no) VALUES ($1, $2) "
                           "ON CONFLICT DO NOTHING", [(measure_id, no) for no in tracking_nos])


async def progress(conn: asyncpg.Connection, actor: Actor, measure_id: int, note: str, now: datetime) -> None:
    m = await _measure(conn, measure_id)
    _need(m["status"] == "open", "illegal_transition", "整改已完成，不能再添加进展。")
    _need(actor.staff_id == m["owner_id"] or actor.leads, "forbidden", "只有责任人或所领导可以记录进展。")
    await conn.execute("INSERT INTO rectification_progress (measure_id, at, staff_id, note) VALUES ($1, $2, $3, $4)",
                       measure_id, now, actor.staff_id, note)


async def complete(conn: asyncpg.Connection, actor: Actor, measure_id: int, evidence: str, now: datetime) -> None:
    m = await _measure(conn, measure_id)
    _need(m["status"] == "open", "illegal_transition", "该整改措施不是进行中状态。")
    _need(actor.staff_id == m["owner_id"], "forbidden", "只有责任人可以提交整改完成。")
    _need(bool(evidence.strip()), "missing_evidence", "须提供整改完成的证明材料说明。")
    await conn.execute("UPDATE rectifications SET status = 'done', completed_by = $2, completed_at = $3, evidence = $4 "
                       "WHERE measure_id = $1", measure_id, actor.staff_id, now, evidence)


async def verify(conn: asyncpg.Connection, outbox: Outbox, actor: Actor, measure_id: int, note: str,
                 now: datetime) -> list[str]:
    """Verified by leadership other than the owner and the one who completed it; the citizens who
    raised the items are told. Returns the items' tracking numbers."""
    m = await _measure(conn, measure_id)
    _need(m["status"] == "done", "illegal_transition", "整改完成后才能验收。")
    _need(actor.leads, "forbidden", "只有所领导可以验收整改。")
    _need(actor.staff_id not in (m["owner_id"], m["completed_by"]), "same_person", "验收须由责任人以外的人员进行。")
    await conn.execute("UPDATE rectifications SET status = 'verified', verified_by = $2, verified_at = $3, "
                       "verification_note = $4 WHERE measure_id = $1", measure_id, actor.staff_id, now, note)
    items = [r["tracking_no"] for r in await conn.fetch(
        "SELECT tracking_no FROM rectification_items WHERE measure_id = $1 ORDER BY tracking_no", measure_id)]
    for no in items:
        outbox.add(Topics.CITIZEN_UPDATES, new_event(EventTypes.CITIZEN_UPDATE, CitizenUpdate(
            tracking_no=no, station=m["station"], kind="rectified", text=f"{m['title']}：{m['evidence']}"),
            source=SOURCE, subject=no, stationid=m["station"]))
    return items


async def unaddressed(conn: asyncpg.Connection, station: str | None, now: datetime,
                      after: timedelta = UNADDRESSED_AFTER) -> list[asyncpg.Record]:
    """Items that need a measure and have none after `after`: nothing sits in a drawer."""
    return await conn.fetch(
        f"SELECT c.tracking_no, c.station, c.type, c.category, c.assigned_at FROM cases c "
        f"WHERE ({NEEDS_MEASURE}) AND c.assigned_at < $1 AND ($2::text IS NULL OR c.station = $2) "
        f"AND c.status <> 'merged' AND NOT EXISTS (SELECT 1 FROM rectification_items i WHERE i.tracking_no = c.tracking_no) "
        f"ORDER BY c.assigned_at", now - after, station)


async def counts(conn: asyncpg.Connection, now: datetime) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT station, count(*) FILTER (WHERE status = 'open') AS open, "
        "count(*) FILTER (WHERE status = 'open' AND due_at < $1) AS overdue FROM rectifications GROUP BY station", now)

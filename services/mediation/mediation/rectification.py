"""整改台账: rectification measures for opinions and complaints about the station's own work.
The rules; the SQL is in db.rectification. Everything runs in the caller's transaction."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg

from fengqiao.constants import MEDIATION_SOURCE as SOURCE
from fengqiao.events import CitizenUpdate, EventTypes, Topics, new_event
from fengqiao.outbox import Outbox
from mediation import db
from mediation.lifecycle import Actor, Rejected

LEADERSHIP = frozenset({"leader", "instructor"})
UNADDRESSED_AFTER = timedelta(days=7)


def _need(condition: bool, code: str, message: str) -> None:
    if not condition:
        raise Rejected(code, message)


async def create(
    conn: asyncpg.Connection,
    actor: Actor,
    *,
    title: str,
    description: str,
    owner_id: str,
    due_at: datetime,
    tracking_nos: list[str],
    now: datetime,
) -> int:
    _need(actor.leads, "forbidden", "只有所领导可以建立整改措施。")
    owner = await db.cases.staff_station(conn, owner_id)
    _need(
        owner is not None and owner["active"] and owner["station"] == actor.station,
        "invalid_owner",
        "责任人须为本所在岗人员。",
    )
    _need(due_at > now, "invalid_due", "整改期限须晚于现在。")
    measure_id = await db.rectification.insert_measure(
        conn,
        station=actor.station,
        title=title,
        description=description,
        owner_id=owner_id,
        due_at=due_at,
        created_by=actor.staff_id,
    )
    await link(conn, actor, measure_id, tracking_nos)
    return measure_id


async def _measure(conn: asyncpg.Connection, measure_id: int) -> asyncpg.Record:
    row = await db.rectification.measure_for_update(conn, measure_id)
    if row is None:
        raise Rejected("not_found", "未找到该整改措施。")
    return row


async def link(conn: asyncpg.Connection, actor: Actor, measure_id: int, tracking_nos: list[str]) -> None:
    m = await _measure(conn, measure_id)
    _need(actor.leads, "forbidden", "只有所领导可以关联反映事项。")
    found = await db.rectification.station_cases(conn, tracking_nos, m["station"])
    missing = sorted(set(tracking_nos) - found)
    _need(not missing, "unknown_items", f"未找到本所的反映事项：{'、'.join(missing)}")
    await db.rectification.link_items(conn, measure_id, tracking_nos)


async def progress(conn: asyncpg.Connection, actor: Actor, measure_id: int, note: str, now: datetime) -> None:
    m = await _measure(conn, measure_id)
    _need(m["status"] == "open", "illegal_transition", "整改已完成，不能再添加进展。")
    _need(actor.staff_id == m["owner_id"] or actor.leads, "forbidden", "只有责任人或所领导可以记录进展。")
    await db.rectification.insert_progress(conn, measure_id, now, actor.staff_id, note)


async def complete(conn: asyncpg.Connection, actor: Actor, measure_id: int, evidence: str, now: datetime) -> None:
    m = await _measure(conn, measure_id)
    _need(m["status"] == "open", "illegal_transition", "该整改措施不是进行中状态。")
    _need(actor.staff_id == m["owner_id"], "forbidden", "只有责任人可以提交整改完成。")
    _need(bool(evidence.strip()), "missing_evidence", "须提供整改完成的证明材料说明。")
    await db.rectification.mark_done(conn, measure_id, actor.staff_id, now, evidence)


async def verify(
    conn: asyncpg.Connection, outbox: Outbox, actor: Actor, measure_id: int, note: str, now: datetime
) -> list[str]:
    """Verified by leadership other than the owner and the one who completed it; the citizens who
    raised the items are told. Returns the items' tracking numbers."""
    m = await _measure(conn, measure_id)
    _need(m["status"] == "done", "illegal_transition", "整改完成后才能验收。")
    _need(actor.leads, "forbidden", "只有所领导可以验收整改。")
    _need(actor.staff_id not in (m["owner_id"], m["completed_by"]), "same_person", "验收须由责任人以外的人员进行。")
    await db.rectification.mark_verified(conn, measure_id, actor.staff_id, now, note)
    items = await db.rectification.items(conn, measure_id)
    for no in items:
        outbox.add(
            Topics.CITIZEN_UPDATES,
            new_event(
                EventTypes.CITIZEN_UPDATE,
                CitizenUpdate(
                    tracking_no=no, station=m["station"], kind="rectified", text=f"{m['title']}：{m['evidence']}"
                ),
                source=SOURCE,
                subject=no,
                stationid=m["station"],
            ),
        )
    return items


async def unaddressed(
    conn: asyncpg.Connection, station: str | None, now: datetime, after: timedelta = UNADDRESSED_AFTER
) -> list[asyncpg.Record]:
    """Items that need a measure and have none after `after`: nothing sits in a drawer."""
    return await db.rectification.unaddressed(conn, station, now, after)


async def measure(conn: asyncpg.Connection, measure_id: int) -> dict[str, Any]:
    """A measure with its items and its progress notes."""
    row = await db.rectification.get_measure(conn, measure_id)
    if row is None:
        raise Rejected("not_found", "未找到该整改措施。")
    return {
        **dict(row),
        "tracking_nos": await db.rectification.visible_items(conn, measure_id),
        "progress": [dict(n) for n in await db.rectification.progress(conn, measure_id)],
    }

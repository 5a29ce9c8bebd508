"""Carrying out a staff command on a case: the state machine decides, this module writes the
case, its history and its clocks, and emits the events, all in the caller's transaction."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from fengqiao.events import CaseMerged, CaseUpdated, CitizenUpdate, EventTypes, Topics, new_event
from fengqiao.constants import MEDIATION_SOURCE as SOURCE
from fengqiao.outbox import Outbox
from mediation import db
from mediation.calendar import DutyHours, WorkCalendar, accept_deadline, resolve_deadline, visit_deadline
from mediation.lifecycle import OPEN, Actor, Case, Rejected, Transition, decide



async def calendar(conn: asyncpg.Connection) -> WorkCalendar:
    return WorkCalendar(loaded=await db.calendar_days(conn))


def _case(row) -> Case:
    return Case(row["tracking_no"], row["station"], row["status"], row["assignee_id"], row["needs_mediation"],
                row["returned_by"], row["handled_by"])


async def duty_hours(conn: asyncpg.Connection, station: str) -> DutyHours | None:
    row = await conn.fetchrow("SELECT starts, ends FROM station_duty_hours WHERE station = $1", station)
    return DutyHours(row["starts"], row["ends"]) if row else None


async def start_clocks(conn: asyncpg.Connection, row, at: datetime, cal: WorkCalendar) -> None:
    """A newly assigned case: the acceptance and the resolution clocks start."""
    a = accept_deadline(at, await duty_hours(conn, row["station"]), urgent=row["urgency"] == "urgent")
    await db.start_clock(conn, row["tracking_no"], "accept", at, a.due_at, a.remind_at, a.note)
    r = resolve_deadline(cal, at, row["type"], row["urgency"], row["needs_mediation"])
    await db.start_clock(conn, row["tracking_no"], "resolve", at, r.due_at, r.remind_at, r.note)


async def perform(conn: asyncpg.Connection, outbox: Outbox, *, tracking_no: str, actor: Actor, command: str,
                  args: dict, now: datetime) -> tuple[Transition, asyncpg.Record]:
    row = await db.case_for_update(conn, tracking_no)
    if row is None:
        raise Rejected("not_found", "未找到该事项。")
    case = _case(row)
    t = decide(case, actor, command, **args)
    station = t.changes.get("station", case.station)
    changes = {k: v for k, v in t.changes.items() if k not in ("station", "into")}
    if t.event == "merged":
        target = await db.get_case(conn, t.changes["into"])
        if target is None or target["station"] != case.station or target["status"] not in OPEN:
            raise Rejected("invalid_case", "并入的事项须为本所未办结的事项。")
    assignee = t.assignee_id
    if t.event in ("reassigned",):
        target = await db.staff_station(conn, assignee)
        if target is None or not target["active"] or target["station"] != case.station:
            raise Rejected("invalid_assignee", "新的承办人不是本所在岗人员。")
        if row["confidential"] and not (target["confidential_handler"] or target["role"] in ("leader", "instructor")):
            # They could not even open it (row-level security): the case would sit unseen until overdue.
            raise Rejected("invalid_assignee", "该事项为保密举报，只能交给经所领导批准的保密承办人。")
        changes["flagged"] = False
    if t.event == "transferred":
        if not await conn.fetchval("SELECT true FROM stations WHERE code = $1", station):
            raise Rejected("invalid_station", f"未知的派出所：{station}")
        # Authorised above on a row this station could see; moving it out of the station's sight
        # is the one write that needs the deployment scope (no-op outside a staff transaction).
        await conn.execute("SELECT set_config('fengqiao.station', '*', true)")
        assignee = await db.station_leader(conn, station)
        changes.update(transferred_from=case.station, flagged=True)
    if t.event == "escalated":
        changes["escalated"] = True
    await db.apply_transition(conn, tracking_no, status=t.status, assignee_id=assignee, station=station,
                              changes=changes, at=now, actor=actor.staff_id, note=t.note, event=t.event)

    cal = await calendar(conn)
    if t.event == "accepted":
        await db.stop_clock(conn, tracking_no, "accept", now)
    elif t.event in ("reassigned", "transferred"):
        a = accept_deadline(now, await duty_hours(conn, station), urgent=row["urgency"] == "urgent")
        await db.start_clock(conn, tracking_no, "accept", now, a.due_at, a.remind_at, a.note)
    elif t.event == "resolved":
        await db.stop_clock(conn, tracking_no, "resolve", now)
        v = visit_deadline(cal, now)
        await db.start_clock(conn, tracking_no, "visit", now, v.due_at, v.remind_at, v.note)
    elif t.event == "visited":
        await db.stop_clock(conn, tracking_no, "visit", now)
    elif t.event == "reopened":
        await db.stop_clock(conn, tracking_no, "visit", now)
        r = resolve_deadline(cal, now, row["type"], row["urgency"], row["needs_mediation"])
        await db.start_clock(conn, tracking_no, "resolve", now, r.due_at, r.remind_at, "重新办理；" + r.note)
    elif t.event in ("closed", "merged"):
        for clock in ("accept", "resolve", "visit"):
            await db.stop_clock(conn, tracking_no, clock, now)

    if t.event == "merged":
        merged = CaseMerged(tracking_no=tracking_no, station=station, merged_into=t.changes["into"], similarity=1.0,
                            reason=f"manual:{actor.staff_id}", submitted_at=row["submitted_at"])
        await db.record_duplicate(conn, merged, now)
        outbox.add(Topics.CASE_EVENTS, new_event(EventTypes.CASE_MERGED, merged, source=SOURCE, subject=tracking_no,
                                                 stationid=station))
    elif t.event:
        outbox.add(Topics.CASE_EVENTS, new_event(f"fengqiao.case.{t.event}", CaseUpdated(
            tracking_no=tracking_no, station=station, status=t.status, previous_status=case.status,
            assignee_id=assignee, previous_assignee_id=case.assignee_id, actor_id=actor.staff_id, at=now,
            level="leader" if t.event == "escalated" else None,
            from_station=case.station if t.event == "transferred" else None,
            result=t.changes.get("visit_result") if t.event == "visited" else None,
        ), source=SOURCE, subject=tracking_no, stationid=station))
    if t.event == "resolved" or command == "request_info":
        outbox.add(Topics.CITIZEN_UPDATES, new_event(EventTypes.CITIZEN_UPDATE, CitizenUpdate(
            tracking_no=tracking_no, station=station, kind="resolved" if t.event == "resolved" else "info_requested",
            text=t.note), source=SOURCE, subject=tracking_no, stationid=station))
    return t, row


async def extend(conn: asyncpg.Connection, *, tracking_no: str, actor: Actor, clock: str, due_at: datetime,
                 reason: str, now: datetime) -> None:
    """Extensions only by leader approval, with a reason; the original deadline stays visible."""
    row = await db.case_for_update(conn, tracking_no)
    if row is None or (actor.role not in ("bureau", "admin") and actor.station != row["station"]):
        raise Rejected("not_found", "未找到该事项。")
    if not actor.leads:
        raise Rejected("forbidden", "延期须经所领导批准。")
    if not reason.strip():
        raise Rejected("missing_reason", "延期须说明理由。")
    remind = due_at - (due_at - now) / 4
    if not await db.extend_clock(conn, tracking_no, clock, due_at, remind, actor.staff_id, reason):
        raise Rejected("illegal_extension", "该时限已结束，或新的期限不晚于原期限。")
    await conn.execute(
        "INSERT INTO case_history (tracking_no, at, status, actor, reason) VALUES ($1, $2, $3, $4, $5)",
        tracking_no, now, row["status"], actor.staff_id, f"延期（{clock}）至 {due_at.isoformat()}：{reason}")

"""Carrying out a command on a case: the state machine decides, this module writes the case, its
history and its clocks, and emits the events, all in the caller's transaction."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, get_args

import asyncpg

from fengqiao.constants import MEDIATION_SOURCE as SOURCE
from fengqiao.constants import STATION_TZ
from fengqiao.events import (
    CaseAssigned,
    CaseMerged,
    CaseUpdated,
    CitizenUpdate,
    EventTypes,
    NoticeCommand,
    StaffNotice,
    Topics,
    TriageCorrected,
    new_event,
)
from fengqiao.outbox import Outbox
from fengqiao.taxonomy import DISPUTE_CATEGORIES
from mediation import db
from mediation.calendar import (
    DutyHours,
    WorkCalendar,
    accept_deadline,
    duty_of,
    resolve_deadline,
    visit_deadline,
)
from mediation.commands import CaseCommand, Close, RequestInfo, name_of
from mediation.lifecycle import OPEN, Actor, Case, Rejected, Transition, decide

ALL_CLOCKS = ("accept", "resolve", "visit")
MEDIATED_CATEGORIES = frozenset(DISPUTE_CATEGORIES)
NOTICE_COMMANDS: frozenset[str] = frozenset(get_args(NoticeCommand))
FOLLOWUP_LABELS = {"performance_check": "协议履行回访", "confirmation_window": "司法确认提醒"}


async def calendar(conn: asyncpg.Connection) -> WorkCalendar:
    return WorkCalendar(loaded=await db.clocks.calendar_days(conn))


def case_of(row: asyncpg.Record, excluded: frozenset[str] = frozenset(), *, waiting: bool = False) -> Case:
    """The state machine's view of a case row (who is kept out of it, whether it waits for the citizen)."""
    return Case(
        row["tracking_no"],
        row["station"],
        row["status"],
        row["assignee_id"],
        row["needs_mediation"],
        row["returned_by"],
        row["handled_by"],
        excluded,
        waiting,
    )


async def duty_hours(conn: asyncpg.Connection, station: str) -> DutyHours | None:
    row = await db.clocks.duty_hours(conn, station)
    return duty_of(row["starts"], row["ends"], json.loads(row["schedule"] or "{}")) if row else None


async def open_case(conn: asyncpg.Connection, assigned: CaseAssigned, at: datetime) -> None:
    """A case triage assigned: the case, the first step of its history, its acceptance and
    resolution clocks. A redelivered assignment changes nothing."""
    created = await db.cases.insert_case(conn, assigned, assigned_at=at, accept_due_at=accept_deadline(at).due_at)
    if created:
        await db.cases.add_history(
            conn, assigned.tracking_no, at=at, status="assigned", actor="triage", reason=assigned.reason
        )
        case_file = await db.access.case_file(conn, assigned.tracking_no)  # usually here first
        await start_clocks(
            conn,
            {
                "tracking_no": assigned.tracking_no,
                "station": assigned.station,
                "type": assigned.type,
                "urgency": assigned.urgency,
                "needs_mediation": assigned.needs_mediation,
                "channel": case_file["channel"] if case_file else None,
            },
            at,
            await calendar(conn),
        )


async def start_clocks(conn: asyncpg.Connection, row: Any, at: datetime, cal: WorkCalendar) -> None:
    """A newly assigned case: the acceptance and the resolution clocks start."""
    duty = await duty_hours(conn, row["station"])
    a = accept_deadline(at, duty, urgent=row["urgency"] == "urgent", cal=cal)
    await db.clocks.start_clock(conn, row["tracking_no"], "accept", at, a.due_at, a.remind_at, a.note)
    r = resolve_deadline(
        cal, at, row["type"], row["urgency"], row["needs_mediation"], channel=row.get("channel"), duty=duty
    )
    await db.clocks.start_clock(conn, row["tracking_no"], "resolve", at, r.due_at, r.remind_at, r.note)


async def walk_in_arrived_late(conn: asyncpg.Connection, tracking_no: str) -> None:
    """A walk-in's case file that came after its assignment (the two travel on different topics):
    the resolution clock started with the ordinary target is set to the same day, from its start."""
    row = await db.cases.get_case(conn, tracking_no)
    if row is None:
        return  # open_case reads the channel when the assignment comes
    running = [c for c in await db.clocks.clocks(conn, tracking_no) if c["clock"] == "resolve" and c["done_at"] is None]
    if not running or running[0]["note"].startswith("来访") or row["urgency"] == "urgent":
        return
    start = running[0]["started_at"]
    duty = await duty_hours(conn, row["station"])
    r = resolve_deadline(
        await calendar(conn), start, row["type"], row["urgency"], row["needs_mediation"], channel="walk_in", duty=duty
    )
    await db.clocks.start_clock(conn, tracking_no, "resolve", start, r.due_at, r.remind_at, r.note)


async def perform(
    conn: asyncpg.Connection, outbox: Outbox, *, tracking_no: str, actor: Actor, command: CaseCommand, now: datetime
) -> tuple[Transition, asyncpg.Record]:
    """Carry out `command`; returns the transition and the case as it was. Rejected if illegal."""
    row = await db.cases.case_for_update(conn, tracking_no)
    if row is None:
        raise Rejected("not_found", "未找到该事项。")
    case = case_of(
        row,
        await db.access.excluded_staff(conn, tracking_no),
        waiting=await db.clocks.suspended_since(conn, tracking_no, "resolve") is not None,
    )
    t = decide(case, actor, command)
    if isinstance(command, Close):
        await _check_followups_done(conn, tracking_no)
    station = t.changes.get("station", case.station)
    changes = {k: v for k, v in t.changes.items() if k not in ("station", "into", "visit_method")}
    assignee = t.assignee_id
    if t.event == "merged":
        await _check_merge_target(conn, case, t.changes["into"])
    elif t.event == "reassigned":
        await _check_new_assignee(conn, row, assignee)
        changes["flagged"] = False
    elif t.event == "transferred":
        assignee = await _hand_over(conn, tracking_no, station)
        changes.update(transferred_from=case.station, flagged=True)
    elif t.event == "escalated":
        changes["escalated"] = True
    await db.cases.update_case_state(
        conn, tracking_no, status=t.status, assignee_id=assignee, station=station, changes=changes, at=now
    )
    await db.cases.add_history(
        conn,
        tracking_no,
        at=now,
        status=t.status,
        actor=actor.staff_id,
        reason=t.note,
        event=t.event,
        assignee_id=assignee,
    )
    await _move_clocks(conn, row, t, station, now)
    if t.status == "voided":
        await db.records.cancel_pending_followups(conn, tracking_no, now, "事项已作废，取消")
    if t.clock == "suspend":
        await suspend_for_citizen(conn, tracking_no, status=t.status, assignee=assignee, at=now)
    elif t.clock == "resume":
        await resume_after_wait(conn, tracking_no, status=t.status, assignee=assignee, at=now, why="办理时限恢复")
    _emit(outbox, row, t, actor, station=station, assignee=assignee, now=now)
    notice = _staff_notice(row, t, actor, command, station=station, assignee=assignee, now=now)
    if notice is not None and t.event == "transferred":
        # Told once triage has checked the receiving station's staff (access.settled): the holder
        # may change then, and the leader the complaint names must not hear of it at all.
        await db.access.hold_transfer_notice(conn, tracking_no, station, notice.model_dump_json())
    elif notice is not None:
        outbox.add(
            Topics.STAFF_REMINDERS,
            new_event(EventTypes.STAFF_NOTICE, notice, source=SOURCE, subject=tracking_no, stationid=station),
        )
    if t.event == "merged":
        await db.cases.record_duplicate(conn, _merged(row, t, actor, station), now)
    if t.event == "resolved" or isinstance(command, RequestInfo):
        resolution = await db.resolutions.count_resolutions(conn, tracking_no) if t.event == "resolved" else None
        _tell_citizen(outbox, t, tracking_no=tracking_no, station=station, resolution=resolution)
    return t, row


CLOCK_ACTOR = "system:clock"


async def suspend_for_citizen(
    conn: asyncpg.Connection, tracking_no: str, *, status: str, assignee: str | None, at: datetime
) -> bool:
    """The resolution clock waits for the citizen's information (12345 rules), visibly in the
    history; False if it was waiting already or is not running."""
    if not await db.clocks.suspend_clock(conn, tracking_no, "resolve", at):
        return False
    await db.cases.add_history(
        conn,
        tracking_no,
        at=at,
        status=status,
        actor=CLOCK_ACTOR,
        reason="等待群众补充材料，办理时限暂停",
        assignee_id=assignee,
    )
    return True


async def resume_after_wait(
    conn: asyncpg.Connection, tracking_no: str, *, status: str, assignee: str | None, at: datetime, why: str
) -> bool:
    """The resolution clock runs again, its deadline moved by the time waited; False if it was not
    waiting."""
    resumed = await db.clocks.resume_clock(conn, tracking_no, "resolve", at)
    if resumed is None:
        return False
    due = resumed["due_at"].astimezone(STATION_TZ).strftime("%Y-%m-%d %H:%M")
    await db.cases.add_history(
        conn,
        tracking_no,
        at=at,
        status=status,
        actor=CLOCK_ACTOR,
        reason=f"{why}，办结期限顺延至 {due}",
        assignee_id=assignee,
    )
    return True


def _tell_citizen(outbox: Outbox, t: Transition, *, tracking_no: str, station: str, resolution: int | None) -> None:
    """The citizen hears that their case was resolved (which resolution: the survey link asks about
    that one), or that more information is asked of them."""
    outbox.add(
        Topics.CITIZEN_UPDATES,
        new_event(
            EventTypes.CITIZEN_UPDATE,
            CitizenUpdate(
                tracking_no=tracking_no,
                station=station,
                kind="resolved" if t.event == "resolved" else "info_requested",
                text=t.note,
                resolution=resolution,
            ),
            source=SOURCE,
            subject=tracking_no,
            stationid=station,
        ),
    )


def _staff_notice(
    row: asyncpg.Record,
    t: Transition,
    actor: Actor,
    command: CaseCommand,
    *,
    station: str,
    assignee: str | None,
    now: datetime,
) -> StaffNotice | None:
    """What the staff concerned must read about a step a person took: who, why, from whom, from
    which station. On the internal staff topic, because the reason is staff free text; notify
    builds the console notices of a person's steps from this event, not from the public one."""
    name = name_of(command)
    if name not in NOTICE_COMMANDS or (name == "visit" and t.event != "reopened"):
        return None  # a satisfied visit tells nobody; the citizen's own survey answer reaches notify itself
    reason = getattr(command, "reason", None)
    return StaffNotice(
        tracking_no=row["tracking_no"],
        station=station,
        command=name,  # type: ignore[arg-type]  # checked against NOTICE_COMMANDS above
        status=t.status,
        previous_status=row["status"],
        actor_id=actor.staff_id,
        assignee_id=assignee,
        previous_assignee_id=row["assignee_id"],
        from_station=row["station"] if t.event == "transferred" else None,
        merged_into=t.changes.get("into") if t.event == "merged" else None,
        reason=(reason.strip() or None) if isinstance(reason, str) else None,
        at=now,
    )


async def _check_followups_done(conn: asyncpg.Connection, tracking_no: str) -> None:
    """A dispute is not closed while its agreement's follow-up is pending: each check (履行回访) and
    the court-confirmation reminder gets its result recorded first (`POST .../mediation/followups/{id}`)."""
    pending = await db.records.pending_followups(conn, tracking_no)
    if pending:
        kinds = "、".join(sorted({FOLLOWUP_LABELS[p["kind"]] for p in pending}))
        raise Rejected(
            "followups_pending",
            f"该调解还有 {len(pending)} 项待办回访（{kinds}），请先录入结果再结案。",
        )


async def _check_merge_target(conn: asyncpg.Connection, case: Case, into: str) -> None:
    target = await db.cases.get_case(conn, into)
    if target is None or target["station"] != case.station or target["status"] not in OPEN:
        raise Rejected("invalid_case", "并入的事项须为本所未办结的事项。")


async def _check_new_assignee(conn: asyncpg.Connection, row: asyncpg.Record, assignee: str | None) -> None:
    target = await db.cases.staff_station(conn, assignee) if assignee else None
    if target is None or not target["active"] or target["station"] != row["station"]:
        raise Rejected("invalid_assignee", "新的承办人不是本所在岗人员。")
    if assignee and await db.access.is_excluded(conn, row["tracking_no"], assignee):
        # Named in the complaint, or kept out by the leader: they may not even open it.
        raise Rejected("assignee_excluded", "该人员须回避本事项（被反映人员或已被所长排除），不能交其承办。")
    if row["confidential"] and not (target["confidential_handler"] or target["role"] in ("leader", "instructor")):
        # They could not even open it (row-level security): the case would sit unseen until overdue.
        raise Rejected("invalid_assignee", "该事项为保密举报，只能交给经所领导批准的保密承办人。")


async def _hand_over(conn: asyncpg.Connection, tracking_no: str, station: str) -> str | None:
    """A transfer: the receiving station's leader holds the case until they assign it, else its
    instructor, never one kept out of it; with both kept out, nobody (flagged: the bureau assigns).
    Triage checks the complaint against the receiving station's staff afterwards (access.settled),
    which may move it on; until then the station's staff do not see it."""
    if not await db.cases.station_exists(conn, station):
        raise Rejected("invalid_station", f"未知的派出所：{station}")
    # Authorised by the state machine on a row this station could see; moving it out of the
    # station's sight is the one write that needs the deployment scope.
    await db.cases.widen_to_deployment_scope(conn)
    await db.access.case_moved(conn, tracking_no, station)
    return await db.cases.unexcluded_leadership(conn, tracking_no, station)


async def _move_clocks(
    conn: asyncpg.Connection, row: asyncpg.Record, t: Transition, station: str, now: datetime
) -> None:
    """Stop and (re)start the case's clocks as the transition requires."""
    no = row["tracking_no"]
    if t.event == "accepted":
        await db.clocks.stop_clock(conn, no, "accept", now)
    elif t.event in ("reassigned", "transferred"):
        duty = await duty_hours(conn, station)
        a = accept_deadline(now, duty, urgent=row["urgency"] == "urgent", cal=await calendar(conn) if duty else None)
        await db.clocks.start_clock(conn, no, "accept", now, a.due_at, a.remind_at, a.note)
    elif t.event == "resolved":
        await db.clocks.stop_clock(conn, no, "resolve", now)
        v = visit_deadline(await calendar(conn), now)
        await db.clocks.start_clock(conn, no, "visit", now, v.due_at, v.remind_at, v.note)
    elif t.event == "visited":
        await db.clocks.stop_clock(conn, no, "visit", now)
    elif t.event == "reopened":
        await db.clocks.stop_clock(conn, no, "visit", now)
        r = resolve_deadline(await calendar(conn), now, row["type"], row["urgency"], row["needs_mediation"])
        await db.clocks.start_clock(conn, no, "resolve", now, r.due_at, r.remind_at, "重新办理；" + r.note)
    elif t.event in ("closed", "merged"):
        for clock in ALL_CLOCKS:
            await db.clocks.stop_clock(conn, no, clock, now)


def _merged(row: asyncpg.Record, t: Transition, actor: Actor, station: str) -> CaseMerged:
    return CaseMerged(
        tracking_no=row["tracking_no"],
        station=station,
        merged_into=t.changes["into"],
        similarity=1.0,
        reason=f"manual:{actor.staff_id}",
        submitted_at=row["submitted_at"],
    )


def _emit(
    outbox: Outbox,
    row: asyncpg.Record,
    t: Transition,
    actor: Actor,
    *,
    station: str,
    assignee: str | None,
    now: datetime,
) -> None:
    """The public case event of the transition (none for a note)."""
    no = row["tracking_no"]
    if t.event == "merged":
        outbox.add(
            Topics.CASE_EVENTS,
            new_event(
                EventTypes.CASE_MERGED, _merged(row, t, actor, station), source=SOURCE, subject=no, stationid=station
            ),
        )
    elif t.event:
        outbox.add(
            Topics.CASE_EVENTS,
            new_event(
                f"fengqiao.case.{t.event}",
                CaseUpdated(
                    tracking_no=no,
                    station=station,
                    status=t.status,
                    previous_status=row["status"],
                    assignee_id=assignee,
                    previous_assignee_id=row["assignee_id"],
                    actor_id=actor.staff_id,
                    at=now,
                    level="leader" if t.event == "escalated" else None,
                    from_station=row["station"] if t.event == "transferred" else None,
                    result=t.changes.get("visit_result") if t.event == "visited" else None,
                    visit_method=t.changes.get("visit_method") if t.event == "visited" else None,
                ),
                source=SOURCE,
                subject=no,
                stationid=station,
            ),
        )


async def extend(
    conn: asyncpg.Connection,
    *,
    tracking_no: str,
    actor: Actor,
    clock: str,
    due_at: datetime,
    reason: str,
    now: datetime,
) -> None:
    """Extensions only by leader approval, with a reason; the original deadline stays visible."""
    row = await db.cases.case_for_update(conn, tracking_no)
    if row is None or (actor.role not in ("bureau", "admin") and actor.station != row["station"]):
        raise Rejected("not_found", "未找到该事项。")
    if not actor.leads:
        raise Rejected("forbidden", "延期须经所领导批准。")
    if not reason.strip():
        raise Rejected("missing_reason", "延期须说明理由。")
    remind = due_at - (due_at - now) / 4
    if not await db.clocks.extend_clock(conn, tracking_no, clock, due_at, remind, actor.staff_id, reason):
        raise Rejected("illegal_extension", "该时限已结束，或新的期限不晚于原期限。")
    await db.cases.add_history(
        conn,
        tracking_no,
        at=now,
        status=row["status"],
        actor=actor.staff_id,
        reason=f"延期（{clock}）至 {due_at.isoformat()}：{reason}",
    )


async def correct_classification(
    conn: asyncpg.Connection,
    outbox: Outbox,
    *,
    tracking_no: str,
    actor: Actor,
    changes: dict[str, Any],
    reason: str,
    now: datetime,
) -> str:
    """Triage's labels corrected by the holder or leadership: the case takes them, and triage gets
    the correction as a labelled example. Returns the case's station."""
    row = await db.cases.case_for_update(conn, tracking_no)
    if row is None:
        raise Rejected("not_found", "未找到该事项。")
    if actor.staff_id != row["assignee_id"] and not actor.leads:
        raise Rejected("not_your_case", "只有承办人或所领导可以更正分类。")
    needs_mediation = changes["category"] in MEDIATED_CATEGORIES if "category" in changes else None
    await db.cases.correct_classification(conn, tracking_no, changes, needs_mediation)
    labels = "，".join(f"{k}={v}" for k, v in changes.items())
    await db.cases.add_history(
        conn, tracking_no, at=now, status=row["status"], actor=actor.staff_id, reason=f"更正分类：{labels}（{reason}）"
    )
    outbox.add(
        Topics.CORRECTIONS,
        new_event(
            EventTypes.TRIAGE_CORRECTED,
            TriageCorrected(
                tracking_no=tracking_no,
                station=row["station"],
                corrected_by=actor.staff_id,
                reason=reason,
                corrected_at=now,
                **changes,
            ),
            source=SOURCE,
            subject=tracking_no,
            stationid=row["station"],
        ),
    )
    return row["station"]

"""Notify's event handlers: who must know about an event, on which channel. Idempotent by
construction: every console row and every delivery is unique per (event, recipient[, channel]),
on top of the consumer's inbox.

- Citizens: acknowledgement, more information needed, result with the survey link, rectified;
  only on the channel they gave (SMS if they gave a phone, else e-mail), never without a contact.
- Officers: new assignment, reminders before deadlines, reassigned to them, a return refused, a case
  taken from them (their earlier notices of it are marked withdrawn).
- Leader and instructor: urgent items, unassigned items, escalations (the clock's and a person's,
  each with its own text), returned items awaiting review, transfers in, reopenings, early-warning
  alerts, dissatisfied surveys, failed deliveries.
- Bureau supervisors: supervision (督办) and red alerts.
- Other bureau systems: every public case event their webhook subscriptions match.

A person's step on a case (return, reassign, transfer, escalate, reopen...) is told from mediation's
internal staff notice, which carries the reason; the public event of the same step tells no one, so
nobody is told twice. The clock's steps (overdue, supervision) are told from the public events.

Just over 400 lines: every "who is told what" rule of notify side by side, as docs/notify.md lists them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial

import asyncpg

from fengqiao import links
from fengqiao.constants import STATION_TZ
from fengqiao.directory import READ_MODEL_HANDLERS
from fengqiao.events import (
    CONTRACTS,
    AlertRaised,
    CaseAccessChanged,
    CaseAssigned,
    CaseTriaged,
    CaseUpdated,
    CitizenAddedNotice,
    CitizenMessageRequested,
    CloudEvent,
    EventTypes,
    StaffNotice,
    StaffReminder,
    SurveyAnswered,
)
from fengqiao.metrics import Metrics
from fengqiao.outbox import Outbox
from fengqiao.pii import Sealed
from fengqiao.taxonomy import CATEGORY_LABELS, URGENCY_LABELS
from notify import db
from notify.deliveries import DeliveryQueue
from notify.metrics import NotifyMetrics
from notify.templates import Templates
from notify.webhooks import fan_out

CLOCK_LABELS = {
    "accept": "签收",
    "resolve": "办结",
    "visit": "回访",
    "performance_check": "调解协议履行回访",
    "confirmation_window": "司法确认申请期",
}
ALERT_KIND_LABELS = {"cluster": "群体性事件苗头", "trend": "类案上升趋势", "repeat_dispute": "矛盾纠纷反复"}
ALERT_LEVEL_LABELS = {"yellow": "黄色", "orange": "橙色", "red": "红色"}
SURVEY_PURPOSE = "survey"  # intake's survey page verifies links of this purpose


@dataclass(frozen=True)
class Deps:
    templates: Templates
    queue: DeliveryQueue
    link_key: bytes
    public_base_url: str
    survey_link_valid_s: int
    metrics: Metrics | None = None


def _local(value) -> str:
    return value.astimezone(STATION_TZ).strftime("%m月%d日 %H:%M") if value else ""


async def _console(
    deps: Deps,
    conn,
    outbox: Outbox,
    event: CloudEvent,
    targets: Sequence[tuple[str | None, str]],
    station: str,
    tracking_no: str | None,
    params: dict,
) -> None:
    """Console notifications: (recipient, kind) pairs, each recipient once (the first kind wins);
    a missing recipient (None) is skipped."""
    station_name = params.pop("station_name", None) or await db.station_name(conn, station)
    created, seen = 0, set[str]()
    if tracking_no and not all(kind == "alert" for _, kind in targets):
        # Never tell someone kept out of the case about it (named in the complaint, or excluded by
        # the leader): not even that it exists. An early-warning alert only cites a member item.
        seen |= await db.excluded_from(conn, tracking_no)
    for recipient, kind in targets:
        if not recipient or recipient in seen:
            continue
        seen.add(recipient)

        def render(name: str) -> str:
            return deps.templates.render(
                name,
                station=station,
                station_name=station_name,
                **{"tracking_no": tracking_no or "", **params},
            )

        created += await db.add_console_notification(
            conn,
            event_source=event.source,
            event_id=event.id,
            recipient_id=recipient,
            station=station,
            kind=kind,
            tracking_no=tracking_no,
            title=render(f"console/{kind}.title.txt"),
            body=render(f"console/{kind}.body.txt"),
            event_time=event.time,
        )
    metrics = deps.metrics  # deps is frozen: the lambda sees the same metrics
    if created and metrics:
        outbox.after_commit(lambda: metrics.notifications.labels(channel="console", outcome="delivered").inc(created))


async def _page(
    deps: Deps,
    conn,
    outbox: Outbox,
    event: CloudEvent,
    staff_ids: Sequence[str | None],
    station: str,
    template: str,
    tracking_no: str | None,
    params: dict,
) -> None:
    """Urgent matters also by SMS to the staff among `staff_ids` who left a phone for it: not held
    by quiet hours or rate limits."""
    station_name = await db.station_name(conn, station)
    kept_out = await db.excluded_from(conn, tracking_no) if tracking_no else frozenset()
    for row in await db.staff_phones(conn, list(dict.fromkeys(s for s in staff_ids if s and s not in kept_out))):
        phone = deps.queue.cipher.open(
            Sealed(row["phone_kid"], row["phone_enc"]), context=f"staff/{row['staff_id']}/phone"
        ).decode()
        body = deps.templates.render(
            f"staff/{template}.txt",
            station=station,
            station_name=station_name,
            **{"tracking_no": tracking_no or "", **params},
        )
        await deps.queue.enqueue(
            conn,
            outbox,
            event_source=event.source,
            event_id=event.id,
            channel="sms",
            audience="staff",
            recipient_key=deps.queue.recipient_key("sms", phone),
            address=phone,
            body=body,
            template=f"staff/{template}",
            tracking_no=tracking_no,
            station=station,
            station_name=station_name,
            urgent=True,
        )


async def on_case_assigned(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox, *, deps: Deps) -> None:
    data = event.payload(CaseAssigned)
    await _remember_urgency(conn, data.tracking_no, data.urgency)
    params = dict(
        category_label=CATEGORY_LABELS[data.category], urgency_label=URGENCY_LABELS[data.urgency], assignee_name=""
    )
    if data.assignee_id and (data.notify_leader or data.urgency == "urgent"):
        params["assignee_name"] = await db.staff_name(conn, data.assignee_id)
    targets: list[tuple[str | None, str]]
    if data.assignee_id and not data.flagged:
        targets = [(data.assignee_id, "assigned")]
        if data.notify_leader:  # urgent: the officer on duty has it, the leadership is told at once
            targets += [(r, "urgent") for r in await db.station_leaders(conn, data.station)]
    else:  # nobody on duty, or flagged: the leadership assigns by hand
        targets = [(r, "unassigned") for r in await db.station_leaders(conn, data.station)] + [
            (data.assignee_id, "unassigned")
        ]
    await _console(deps, conn, outbox, event, targets, data.station, data.tracking_no, params)
    if data.urgency == "urgent":  # the officer on duty and the leadership, wherever they are
        await _page(
            deps, conn, outbox, event, [r for r, _ in targets], data.station, "urgent", data.tracking_no, params
        )
    metrics = deps.metrics  # deps is frozen: the lambda sees the same metrics
    if metrics:
        elapsed = (datetime.now(UTC) - data.submitted_at).total_seconds()
        outbox.after_commit(lambda: metrics.stage_seconds.labels(stage="notified").observe(elapsed))


async def on_case_triaged(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox, *, deps: Deps) -> None:
    data = event.payload(CaseTriaged)
    await _remember_urgency(conn, data.tracking_no, data.urgency)


async def _remember_urgency(conn, tracking_no: str, urgency: str) -> None:
    """Citizen SMS of urgent cases skip quiet hours: release any already held."""
    await db.remember_urgency(conn, tracking_no, urgency)
    if urgency == "urgent":
        await db.release_quiet_holds(conn, tracking_no)


async def on_citizen_message_requested(
    event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox, *, deps: Deps
) -> None:
    """The message goes on the channel the citizen gave: SMS if a phone, else e-mail."""
    data = event.payload(CitizenMessageRequested)
    channel, address = ("sms", data.phone) if data.phone else ("email", data.email)
    if not address:
        return
    base = deps.public_base_url.rstrip("/")
    params = dict(
        tracking_no=data.tracking_no,
        access_code=data.params.get("access_code", ""),
        text=data.params.get("text", ""),
        track_url=f"{base}/track?no={data.tracking_no}",
        survey_url="",
    )
    if data.template == "result":
        resolution = data.params.get("resolution", "")  # the link asks about this resolution only
        token = links.sign(
            deps.link_key,
            SURVEY_PURPOSE,
            links.survey_subject(data.tracking_no, int(resolution) if resolution.isdecimal() else None),
            valid_for_s=deps.survey_link_valid_s,
            now=event.time.timestamp(),
        )
        params["survey_url"] = f"{base}/survey?t={token}"
    station_name = await db.station_name(conn, data.station)
    station_phone = await db.station_phone(conn, data.station)

    def render(name: str) -> str:
        return deps.templates.render(
            name, station=data.station, station_name=station_name, station_phone=station_phone, **params
        )

    body = render(f"citizen/{data.template}.txt")
    subject = render(f"citizen/{data.template}.subject.txt") if channel == "email" else None
    await deps.queue.enqueue(
        conn,
        outbox,
        event_source=event.source,
        event_id=event.id,
        channel=channel,
        audience="citizen",
        recipient_key=deps.queue.recipient_key(channel, address),
        address=address,
        body=body,
        subject=subject,
        template=data.template,
        tracking_no=data.tracking_no,
        station=data.station,
        station_name=station_name,
        station_phone=station_phone,
        links={"survey_url": params["survey_url"], "track_url": params["track_url"]},
    )


async def on_staff_reminder(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox, *, deps: Deps) -> None:
    data = event.payload(StaffReminder)
    params = dict(tracking_no=data.tracking_no, clock_label=CLOCK_LABELS[data.clock], due=_local(data.due_at))
    await _console(deps, conn, outbox, event, [(data.recipient_id, "reminder")], data.station, data.tracking_no, params)


ADDITION_LABELS = {
    "web": "已在进度查询页补充材料",
    "mailbox": "已回复邮件补充材料",
    "hotline": "来电跟进此事项（已记入办理记录）",
}


async def on_citizen_added(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox, *, deps: Deps) -> None:
    """The holder hears that the citizen added to the case (the text is in the case, not here)."""
    data = event.payload(CitizenAddedNotice)
    params = dict(
        tracking_no=data.tracking_no,
        addition_label=ADDITION_LABELS[data.channel],
        clock_note="办理时限已恢复计算。" if data.clock_resumed else "",
    )
    targets = [(data.recipient_id, "citizen_added")]
    await _console(deps, conn, outbox, event, targets, data.station, data.tracking_no, params)


async def on_case_escalated(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox, *, deps: Deps) -> None:
    """The clock's escalations: to the leadership at the deadline (超时上报, with the clock and the
    deadline), to the bureau supervisors five working days later (督办). A person's escalation is
    told from mediation's staff notice, with its reason (`on_staff_notice`), not from this event."""
    data = event.payload(CaseUpdated)
    if not (data.actor_id or "").startswith("system:"):
        return
    params = dict(
        tracking_no=data.tracking_no, clock_label=CLOCK_LABELS.get(data.clock or "", "办理"), due=_local(data.due_at)
    )
    if data.level == "bureau":
        recipients, kind = await db.bureau_supervisors(conn), "supervision"
    else:
        recipients, kind = await db.station_leaders(conn, data.station), "escalated"
    await _console(deps, conn, outbox, event, [(r, kind) for r in recipients], data.station, data.tracking_no, params)


async def _name(conn, staff_id: str | None) -> str:
    """How staff are named in a notice: their name in the directory, else their id."""
    return (await db.staff_name(conn, staff_id) or staff_id) if staff_id else ""


def _withdrawal(data: StaffNotice, assignee_name: str, to_station_name: str) -> str | None:
    """Why the case is no longer its previous holder's, or None if it still is."""
    previous = data.previous_assignee_id
    if not previous or (previous == data.assignee_id and data.command not in ("merge", "close", "void")):
        return None
    return {
        "reassign": f"已改派给{assignee_name}",
        "review_return": f"退单已同意，已改派给{assignee_name}",
        "transfer": f"已移交{to_station_name}",
        "merge": f"已并入{data.merged_into or '其他事项'}",
        "close": "已结案",
        "void": "已作废",
    }.get(data.command)


async def _notice_targets(conn, data: StaffNotice) -> list[tuple[str | None, str]]:
    """Who must read about a person's step, and which notice they get."""
    leaders = [r for r in await db.station_leaders(conn, data.station) if r != data.actor_id]
    if data.command == "review_return" and data.assignee_id == data.previous_assignee_id:
        return [(data.assignee_id, "return_rejected")]
    if data.command in ("review_return", "reassign"):
        return [(data.assignee_id, "reassigned")]
    if data.command == "transfer":  # the receiving station's leader holds it until they assign it
        return [(data.assignee_id, "transferred")] if data.assignee_id else [(r, "transferred") for r in leaders]
    kind = {"return": "returned", "escalate": "manual_escalation", "reopen": "reopened", "visit": "visit_dissatisfied"}
    return [(r, kind[data.command]) for r in leaders] if data.command in kind else []


async def on_staff_notice(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox, *, deps: Deps) -> None:
    """A person's step on a case: the notices of the staff who must act, with who did it, the reason,
    the previous holder and the sending station; the previous holder's notices of a case taken from
    them are marked withdrawn (also those still on their way) and they are told to stop."""
    data = event.payload(StaffNotice)
    station_name = await db.station_name(conn, data.station)
    params = dict(
        tracking_no=data.tracking_no,
        actor_name=await _name(conn, data.actor_id),
        previous_name=await _name(conn, data.previous_assignee_id)
        if data.previous_assignee_id != data.assignee_id
        else "",
        assignee_name=await _name(conn, data.assignee_id),
        reason=data.reason or "",
        from_station_name=await db.station_name(conn, data.from_station) if data.from_station else "",
        withdrawn_reason="",
    )
    targets = await _notice_targets(conn, data)
    await _console(
        deps, conn, outbox, event, targets, data.station, data.tracking_no, params | {"station_name": station_name}
    )
    why = _withdrawal(data, params["assignee_name"], station_name)
    previous = data.previous_assignee_id
    if why and previous:
        await db.withdraw(conn, data.tracking_no, previous, at=event.time, reason=why)
        if previous != data.actor_id:  # whoever gave it away knows
            home = data.from_station or data.station
            told = [(previous, "withdrawn")]
            await _console(deps, conn, outbox, event, told, home, data.tracking_no, params | {"withdrawn_reason": why})


async def on_alert_raised(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox, *, deps: Deps) -> None:
    """Early warnings reach the station's leadership; red ones also the bureau supervisors."""
    data = event.payload(AlertRaised)
    recipients = await db.station_leaders(conn, data.station)
    if data.level == "red":
        recipients += await db.bureau_supervisors(conn)
    params = dict(
        explanation=data.explanation,
        count=str(len(data.members)),
        level_label=ALERT_LEVEL_LABELS[data.level],
        kind_label=ALERT_KIND_LABELS[data.kind],
    )
    await _console(
        deps,
        conn,
        outbox,
        event,
        [(r, "alert") for r in recipients],
        data.station,
        data.members[-1] if data.members else None,
        params,
    )
    if data.level == "red":
        await _page(deps, conn, outbox, event, recipients, data.station, "alert", None, params)


async def on_survey_answered(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox, *, deps: Deps) -> None:
    """Counted for the satisfaction rate; a dissatisfied answer reaches the leadership with its reason."""
    data = event.payload(SurveyAnswered)
    if deps.metrics:
        outbox.after_commit(deps.metrics.survey_responses.labels(station=data.station, result=data.result).inc)
    if data.result == "dissatisfied":
        params = dict(tracking_no=data.tracking_no, reason=data.reason or "未填写")
        await _console(
            deps,
            conn,
            outbox,
            event,
            [(r, "dissatisfied") for r in await db.station_leaders(conn, data.station)],
            data.station,
            data.tracking_no,
            params,
        )


def _both(first, second):
    async def handler(event, conn, outbox):
        await first(event, conn, outbox)
        await second(event, conn, outbox)

    return handler


async def on_case_access_changed(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox) -> None:
    """Who is kept out of a case (triage: named in the complaint; the leader's exclusions): told
    nothing about it from now on."""
    data = event.payload(CaseAccessChanged)
    await db.change_exclusions(conn, data.tracking_no, data.excluded, data.restored)


PUBLIC_TYPES = [t for t in CONTRACTS if t.startswith("fengqiao.case.") or t == EventTypes.ALERT_RAISED]


def make_handlers(deps: Deps):
    """The HANDLERS table of the process: its metrics bound once, into a copy of the frozen `deps`."""

    def handlers(metrics: Metrics) -> dict:
        deps.queue.bind(NotifyMetrics.of(metrics))
        return handlers_table(replace(deps, metrics=metrics))

    return handlers


def handlers_table(deps: Deps) -> dict:
    table = {
        EventTypes.CASE_TRIAGED: partial(on_case_triaged, deps=deps),
        EventTypes.CASE_ASSIGNED: partial(on_case_assigned, deps=deps),
        EventTypes.ALERT_RAISED: partial(on_alert_raised, deps=deps),
        EventTypes.STAFF_REMINDER: partial(on_staff_reminder, deps=deps),
        EventTypes.CASE_ESCALATED: partial(on_case_escalated, deps=deps),
        EventTypes.STAFF_NOTICE: partial(on_staff_notice, deps=deps),
        EventTypes.STAFF_CITIZEN_ADDED: partial(on_citizen_added, deps=deps),
        EventTypes.CITIZEN_MESSAGE_REQUESTED: partial(on_citizen_message_requested, deps=deps),
        EventTypes.SURVEY_ANSWERED: partial(on_survey_answered, deps=deps),
        EventTypes.CASE_ACCESS_CHANGED: on_case_access_changed,
        **READ_MODEL_HANDLERS,
    }
    webhooks = partial(fan_out, queue=deps.queue)
    for event_type in PUBLIC_TYPES:
        table[event_type] = _both(table[event_type], webhooks) if event_type in table else webhooks
    return table

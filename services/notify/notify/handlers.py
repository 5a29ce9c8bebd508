"""Notify's event handlers: who must know about an event, on which channel. Idempotent by
construction: every console row and every delivery is unique per (event, recipient[, channel]),
on top of the consumer's inbox.

- Citizens: acknowledgement, more information needed, result with the survey link, rectified;
  only on the channel they gave (SMS if they gave a phone, else e-mail), never without a contact.
- Officers: new assignment, reminders before deadlines, reassigned to them.
- Leader and instructor: urgent items, unassigned items, escalations, returned items awaiting
  review, reopenings, early-warning alerts, dissatisfied surveys, failed deliveries.
- Bureau supervisors: supervision (督办) and red alerts.
- Other bureau systems: every public case event their webhook subscriptions match."""

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
    CaseAssigned,
    CaseTriaged,
    CaseUpdated,
    CitizenAddedNotice,
    CitizenMessageRequested,
    CloudEvent,
    EventTypes,
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
    created, seen = 0, set()
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
    for row in await db.staff_phones(conn, list(dict.fromkeys(s for s in staff_ids if s))):
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

    def render(name: str) -> str:
        return deps.templates.render(name, station=data.station, station_name=station_name, **params)

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


async def on_case_updated(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox, *, deps: Deps) -> None:
    """Staff who must act: the new holder, the leadership for returns, escalations and reopenings,
    the bureau supervisors for supervision (督办)."""
    data = event.payload(CaseUpdated)
    step = event.type.rsplit(".", 1)[1]
    params = dict(
        tracking_no=data.tracking_no, clock_label=CLOCK_LABELS.get(data.clock or "", "办理"), due=_local(data.due_at)
    )
    recipients: Sequence[str | None]
    if step == "reassigned" and data.previous_status == "returned" and data.assignee_id == data.previous_assignee_id:
        recipients, kind = [data.assignee_id], "return_rejected"  # the leader did not approve the return
    elif step in ("reassigned", "transferred"):
        recipients, kind = [data.assignee_id], "reassigned"
    elif step == "escalated" and data.level == "bureau":
        recipients, kind = await db.bureau_supervisors(conn), "supervision"
    elif step == "escalated":
        recipients, kind = await db.station_leaders(conn, data.station), "escalated"
    elif step == "reopened" and (data.actor_id or "").startswith("citizen:"):
        return  # the citizen's dissatisfied survey: the leadership was told with the reason
    elif step in ("returned", "reopened"):
        recipients, kind = await db.station_leaders(conn, data.station), step
    else:
        return
    await _console(deps, conn, outbox, event, [(r, kind) for r in recipients], data.station, data.tracking_no, params)


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
        EventTypes.STAFF_CITIZEN_ADDED: partial(on_citizen_added, deps=deps),
        **{
            t: partial(on_case_updated, deps=deps)
            for t in (
                EventTypes.CASE_REASSIGNED,
                EventTypes.CASE_TRANSFERRED,
                EventTypes.CASE_ESCALATED,
                EventTypes.CASE_RETURNED,
                EventTypes.CASE_REOPENED,
            )
        },
        EventTypes.CITIZEN_MESSAGE_REQUESTED: partial(on_citizen_message_requested, deps=deps),
        EventTypes.SURVEY_ANSWERED: partial(on_survey_answered, deps=deps),
        **READ_MODEL_HANDLERS,
    }
    webhooks = partial(fan_out, queue=deps.queue)
    for event_type in PUBLIC_TYPES:
        table[event_type] = _both(table[event_type], webhooks) if event_type in table else webhooks
    return table

"""Notify's event handlers. Idempotent by construction: every row is unique per
(event, recipient[, channel]), on top of the inbox."""

from __future__ import annotations

from datetime import datetime, timezone
from functools import partial
from zoneinfo import ZoneInfo

import asyncpg

from fengqiao.directory import READ_MODEL_HANDLERS
from fengqiao.events import (
    AlertRaised, CaseAssigned, CaseUpdated, CitizenMessageRequested, CloudEvent, EventTypes, StaffReminder,
)
from fengqiao.metrics import Metrics
from fengqiao.outbox import Outbox
from fengqiao.taxonomy import CATEGORY_LABELS, URGENCY_LABELS
from notify import db
from notify.templates import render


async def on_case_assigned(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox, *, metrics: Metrics) -> None:
    data: CaseAssigned = event.payload()
    params = dict(tracking_no=data.tracking_no, station_name=await db.station_name(conn, data.station),
                  category_label=CATEGORY_LABELS[data.category], urgency_label=URGENCY_LABELS[data.urgency])
    if data.assignee_id and not data.flagged:
        recipients, kind = [data.assignee_id], "assigned"
    else:
        recipients, kind = await db.station_leaders(conn, data.station), "unassigned"
    if data.assignee_id and data.flagged and data.assignee_id not in recipients:
        recipients.append(data.assignee_id)
    targets = [(r, kind) for r in recipients]
    if data.notify_leader and not data.flagged:  # urgent: the officer on duty has it, the leader is told
        params["assignee_name"] = await db.staff_name(conn, data.assignee_id) if data.assignee_id else ""
        targets += [(r, "urgent") for r in await db.station_leaders(conn, data.station) if r not in recipients]
    created = 0
    for recipient, what in targets:
        created += await db.add_console_notification(
            conn, event_source=event.source, event_id=event.id, recipient_id=recipient, station=data.station,
            kind=what, tracking_no=data.tracking_no, title=render(f"{what}.title", **params),
            body=render(f"{what}.body", **params))
    elapsed = (datetime.now(timezone.utc) - data.submitted_at).total_seconds()

    def _observe() -> None:
        metrics.notifications.labels(channel="console", outcome="delivered").inc(created)
        metrics.stage_seconds.labels(stage="notified").observe(elapsed)

    outbox.after_commit(_observe)


async def on_citizen_message_requested(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox, *,
                                       metrics: Metrics, public_base_url: str) -> None:
    """Record the citizen's message on the channel they gave (SMS first, else e-mail). The
    gateway adapters that send pending deliveries come with the notify issue."""
    data: CitizenMessageRequested = event.payload()
    channel, recipient = ("sms", data.phone) if data.phone else ("email", data.email)
    if not recipient:
        return
    body = render(data.template, tracking_no=data.tracking_no, station_name=await db.station_name(conn, data.station),
                  access_code=data.params.get("access_code", ""), text=data.params.get("text", ""),
                  track_url=f"{public_base_url.rstrip('/')}/track?no={data.tracking_no}")
    if await db.add_delivery(conn, event_source=event.source, event_id=event.id, recipient=recipient,
                             channel=channel, template=data.template, tracking_no=data.tracking_no,
                             station=data.station, body=body):
        outbox.after_commit(metrics.notifications.labels(channel=channel, outcome="queued").inc)


STATION_TZ = ZoneInfo("Asia/Shanghai")
CLOCK_LABELS = {"accept": "签收", "resolve": "办结", "visit": "回访", "performance_check": "调解协议履行回访",
                "confirmation_window": "司法确认申请期"}


async def _console(conn, event: CloudEvent, recipients: list[str], station: str, kind: str, tracking_no: str,
                   params: dict) -> int:
    created = 0
    for recipient in dict.fromkeys(r for r in recipients if r):
        created += await db.add_console_notification(
            conn, event_source=event.source, event_id=event.id, recipient_id=recipient, station=station, kind=kind,
            tracking_no=tracking_no, title=render(f"{kind}.title", **params), body=render(f"{kind}.body", **params))
    return created


def _local(value) -> str:
    return value.astimezone(STATION_TZ).strftime("%m月%d日 %H:%M") if value else ""


async def on_staff_reminder(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox, *, metrics: Metrics) -> None:
    data: StaffReminder = event.payload()
    params = dict(tracking_no=data.tracking_no, station_name=await db.station_name(conn, data.station),
                  clock_label=CLOCK_LABELS[data.clock], due=_local(data.due_at))
    n = await _console(conn, event, [data.recipient_id], data.station, "reminder", data.tracking_no, params)
    outbox.after_commit(lambda: metrics.notifications.labels(channel="console", outcome="delivered").inc(n))


async def on_case_updated(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox, *, metrics: Metrics) -> None:
    """Staff who must act: the new holder, the leadership for returns, escalations and reopenings,
    the bureau supervisors for supervision (督办)."""
    data: CaseUpdated = event.payload()
    step = event.type.rsplit(".", 1)[1]
    params = dict(tracking_no=data.tracking_no, station_name=await db.station_name(conn, data.station),
                  clock_label=CLOCK_LABELS.get(data.clock or "", "办理"), due=_local(data.due_at))
    if step in ("reassigned", "transferred"):
        recipients, kind = [data.assignee_id], "reassigned"
    elif step == "escalated" and data.level == "bureau":
        recipients, kind = await db.bureau_supervisors(conn), "supervision"
    elif step == "escalated":
        recipients, kind = await db.station_leaders(conn, data.station), "escalated"
    elif step in ("returned", "reopened"):
        recipients, kind = await db.station_leaders(conn, data.station), step
    else:
        return
    n = await _console(conn, event, recipients, data.station, kind, data.tracking_no, params)
    outbox.after_commit(lambda: metrics.notifications.labels(channel="console", outcome="delivered").inc(n))


ALERT_KIND_LABELS = {"cluster": "群体性事件苗头", "trend": "类案上升趋势", "repeat_dispute": "矛盾纠纷反复"}
ALERT_LEVEL_LABELS = {"yellow": "黄色", "orange": "橙色", "red": "红色"}


async def on_alert_raised(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox, *, metrics: Metrics) -> None:
    """Early warnings reach the station's leadership; red ones also the bureau supervisors."""
    data: AlertRaised = event.payload()
    recipients = await db.station_leaders(conn, data.station)
    if data.level == "red":
        recipients += await db.bureau_supervisors(conn)
    params = dict(station_name=await db.station_name(conn, data.station), explanation=data.explanation,
                  count=str(len(data.members)), level_label=ALERT_LEVEL_LABELS[data.level],
                  kind_label=ALERT_KIND_LABELS[data.kind])
    created = 0
    for recipient in recipients:
        created += await db.add_console_notification(
            conn, event_source=event.source, event_id=event.id, recipient_id=recipient, station=data.station,
            kind="alert", tracking_no=data.members[-1] if data.members else None,
            title=render("alert.title", **params), body=render("alert.body", **params))
    outbox.after_commit(lambda: metrics.notifications.labels(channel="console", outcome="delivered").inc(created))


def make_handlers(public_base_url: str):
    def handlers(metrics: Metrics) -> dict:
        return {
            EventTypes.CASE_ASSIGNED: partial(on_case_assigned, metrics=metrics),
            EventTypes.ALERT_RAISED: partial(on_alert_raised, metrics=metrics),
            EventTypes.STAFF_REMINDER: partial(on_staff_reminder, metrics=metrics),
            **{t: partial(on_case_updated, metrics=metrics) for t in (
                EventTypes.CASE_REASSIGNED, EventTypes.CASE_TRANSFERRED, EventTypes.CASE_ESCALATED,
                EventTypes.CASE_RETURNED, EventTypes.CASE_REOPENED)},
            EventTypes.CITIZEN_MESSAGE_REQUESTED: partial(on_citizen_message_requested, metrics=metrics,
                                                          public_base_url=public_base_url),
            **READ_MODEL_HANDLERS,
        }
    return handlers

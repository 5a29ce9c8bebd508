"""Mediation's event handlers."""

from __future__ import annotations

import asyncpg

from fengqiao.events import CaseAssigned, CloudEvent, EventTypes
from fengqiao.metrics import Metrics
from fengqiao.outbox import Outbox
from mediation import db
from mediation.domain import accept_deadline


async def on_case_assigned(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox) -> None:
    data: CaseAssigned = event.payload()
    await db.open_case(conn, data, assigned_at=event.time, accept_due_at=accept_deadline(event.time))


async def on_case_merged(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox) -> None:
    await db.record_duplicate(conn, event.payload(), event.time)


def handlers(metrics: Metrics) -> dict:
    return {EventTypes.CASE_ASSIGNED: on_case_assigned, EventTypes.CASE_MERGED: on_case_merged}

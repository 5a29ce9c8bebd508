"""The case commands over HTTP, generated from `commands.STAFF_COMMANDS`: one route per command
(`POST /api/v1/cases/{no}/resolve` with a `Resolve` body, so the API docs show each command's own
fields), and `POST /api/v1/cases/{no}/commands` taking any of them (discriminated by `command`).

No `from __future__ import annotations` here: the generated routes' body annotations must be the
command classes themselves, which FastAPI reads from each function."""

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from fengqiao.auth import Principal
from fengqiao.http import AuthoriseFirstRoute, StaffPrincipal, api_error
from fengqiao.runtime import Runtime, RuntimeDep
from fengqiao.taxonomy import STATUS_LABELS
from mediation import db
from mediation.cases import perform
from mediation.commands import STAFF_COMMANDS, CaseCommand, StaffCommand, name_of
from mediation.deps import CurrentActor, TrackingNo, VisibleCase
from mediation.lifecycle import Actor, Rejected, authorise
from mediation.unit import audit, audit_refusal, staff_unit

router = APIRouter(prefix="/api/v1", tags=["case commands"], route_class=AuthoriseFirstRoute)
COMMANDS_BY_NAME = {name_of(c): c for c in STAFF_COMMANDS}
# The time from submission to these events is measured (fengqiao_stage_seconds{stage}).
MEASURED_STAGES = frozenset({"accepted", "resolved", "visited"})


class CommandOut(BaseModel):
    tracking_no: str
    status: str
    status_label: str
    assignee_id: str | None
    event: str | None


class StaleForm(Exception):
    """The case changed since the form was shown (no silent overwrite): `steps` are its history since."""

    def __init__(self, steps: list[asyncpg.Record]) -> None:
        super().__init__(f"{len(steps)} steps since")
        self.steps = steps


async def unchanged_since(conn: asyncpg.Connection, tracking_no: str, version: int | None) -> None:
    """StaleForm if the case has a history step after `version` (None: not checked). Locks the case
    row first, so nothing changes between this check and the change itself."""
    if version is None:
        return
    await db.cases.case_for_update(conn, tracking_no)
    steps = await db.detail.history_with_ids(conn, tracking_no, version)
    if steps:
        raise StaleForm(steps)


async def carry_out(
    rt: Runtime,
    principal: Principal,
    actor: Actor,
    tracking_no: str,
    command: CaseCommand,
    *,
    expected_version: int | None = None,
) -> CommandOut:
    """One command in the staff member's transaction, audited; Rejected (its HTTP error) if illegal,
    StaleForm if the case has changed since `expected_version` (a form's, see `db.detail.version`)."""
    now = datetime.now(UTC)
    try:
        async with staff_unit(rt.pool, principal) as (conn, outbox):
            await unchanged_since(conn, tracking_no, expected_version)
            t, before = await perform(conn, outbox, tracking_no=tracking_no, actor=actor, command=command, now=now)
            await audit(conn, principal, name_of(command), tracking_no, before["station"], t.event)
    except Rejected as exc:
        if exc.code == "not_found":
            await audit_refusal(rt.pool, principal, tracking_no)
        raise
    if t.event in MEASURED_STAGES:
        rt.metrics.stage_seconds.labels(stage=t.event).observe((now - before["submitted_at"]).total_seconds())
    return CommandOut(
        tracking_no=tracking_no,
        status=t.status,
        status_label=STATUS_LABELS[t.status],
        assignee_id=t.assignee_id if t.event != "transferred" else None,
        event=t.event,
    )


def _may_give(command: type[CaseCommand]) -> Any:  # a Depends(...) marker
    """Who may give `command` on this case, checked before its body is read (404, then 403)."""

    def check(case: VisibleCase, actor: CurrentActor) -> None:
        authorise(case, actor, command)

    return Depends(check)


async def _may_give_named(request: Request, case: VisibleCase, actor: CurrentActor) -> None:
    """`POST .../commands`: the command named in the body, if it names one, checked before the
    rest of the body is validated (the body was read already; only its `command` is looked at)."""
    try:
        sent = await request.json()
    except ValueError:
        return  # not JSON: the station was checked; the body's error follows
    name = sent.get("command") if isinstance(sent, dict) else None
    command = COMMANDS_BY_NAME.get(name) if isinstance(name, str) else None
    if command is not None:
        authorise(case, actor, command)


def _route_for(command: type[CaseCommand]) -> Callable[..., Coroutine[Any, Any, CommandOut]]:
    async def route(
        tracking_no: TrackingNo,
        body: command,  # type: ignore[valid-type]  # one route per command class; FastAPI reads it at run time
        rt: RuntimeDep,
        principal: StaffPrincipal,
        actor: CurrentActor,
        _: Annotated[None, _may_give(command)],
    ) -> CommandOut:
        return await carry_out(rt, principal, actor, tracking_no, body)

    route.__name__ = f"{name_of(command)}_case"
    route.__doc__ = command.__doc__
    return route


for _command in STAFF_COMMANDS:
    router.add_api_route(
        f"/cases/{{tracking_no}}/{name_of(_command)}",
        _route_for(_command),
        methods=["POST"],
        response_model=CommandOut,
        summary=f"{name_of(_command)}: {_command.__doc__}",
    )


@router.post("/cases/{tracking_no}/commands")
async def run_command(
    tracking_no: TrackingNo,
    body: StaffCommand,
    rt: RuntimeDep,
    principal: StaffPrincipal,
    actor: CurrentActor,
    _: Annotated[None, Depends(_may_give_named)],
) -> CommandOut:
    """Any command, named by its `command` field (the console's forms post here)."""
    return await carry_out(rt, principal, actor, tracking_no, body)


@router.post("/cases/{tracking_no}/{command}", include_in_schema=False)
async def unknown_command(tracking_no: TrackingNo, command: str, principal: StaffPrincipal) -> None:
    """A command that does not exist: 404 with its own code, as before the routes were per command."""
    raise api_error(404, "unknown_command", f"未知操作：{command}")

"""The console's rectification register (整改台账, issue 16): `/console/rectification` lists the
station's measures (open first, overdue marked) and the feedback still waiting for one;
`/console/rectification/{id}` is a measure with its items, progress and the forms to link items,
note progress, complete and verify. Every form calls `rectification`'s rules, with the JSON API's
models, so the page and the API refuse the same things in the same words."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time
from typing import Any

from asyncpg import Connection
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from fengqiao.constants import STATION_TZ
from fengqiao.outbox import Outbox
from fengqiao.runtime import RuntimeDep
from fengqiao.taxonomy import CATEGORY_LABELS, TYPE_LABELS
from mediation import db, rectification
from mediation.api import _STATUS_FOR_CODE
from mediation.console_common import (
    FieldRefused,
    SessionDep,
    actor_of_session,
    local_time,
    principal_of,
    read_form,
    render,
)
from mediation.deps import RowId
from mediation.lifecycle import Actor, Rejected
from mediation.rectification_api import EvidenceIn, ItemsIn, MeasureIn, NoteIn
from mediation.signin import Session
from mediation.unit import audit, staff_unit

router = APIRouter(include_in_schema=False)
# A form's change, run in the staff's transaction.
Change = Callable[[FormData, Connection, Outbox, Actor], Awaitable[None]]

STATUS_WORDS = {"open": "整改中", "done": "待验收", "verified": "已验收"}
FIELD_LABELS = {
    "title": "整改事项",
    "description": "整改措施",
    "owner_id": "责任人",
    "due_at": "整改期限",
    "tracking_nos": "关联的反映事项编号",
    "note": "说明",
    "evidence": "完成情况及证明材料",
}
REJECTION_FIELDS = {
    "invalid_owner": "owner_id",
    "invalid_due": "due_at",
    "unknown_items": "tracking_nos",
    "missing_evidence": "evidence",
}


def _now() -> datetime:
    return datetime.now(UTC)


def _tracking_nos(raw: str) -> list[str]:
    return [no for no in re.split(r"[\s,，、;；]+", raw) if no]


def _end_of_day(raw: str) -> datetime:
    """A deadline typed as a date: the end of that day at the station."""
    try:
        return datetime.combine(date.fromisoformat(raw.strip()), time(23, 59), tzinfo=STATION_TZ)
    except ValueError:
        raise FieldRefused("due_at", "请填写整改期限（日期）。") from None


def _check(model: Any, data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        names = [str(p) for p in first["loc"] if isinstance(p, str)]
        field = names[0] if names else ""
        label = FIELD_LABELS.get(field, field)
        if first["type"] in ("missing", "string_too_short", "too_short"):
            raise FieldRefused(field, f"请填写{label}。") from None
        if first["type"] in ("string_too_long", "too_long"):
            raise FieldRefused(field, f"{label}过长。") from None
        raise FieldRefused(field, f"{label}格式不正确。") from None


def _measure_row(m: Any, names: dict[str, str], now: datetime) -> dict[str, Any]:
    overdue = m["status"] == "open" and m["due_at"] < now
    return {
        "measure_id": m["measure_id"],
        "title": m["title"],
        "status": m["status"],
        "status_label": STATUS_WORDS.get(m["status"], m["status"]),
        "owner": names.get(m["owner_id"], m["owner_id"]),
        "owner_id": m["owner_id"],
        "due": local_time(m["due_at"]),
        "overdue": overdue,
        "cases": list(m["tracking_nos"] or []),
    }


def _order(row: dict[str, Any]) -> tuple[int, str]:
    return ({"open": 0, "done": 1, "verified": 2}.get(row["status"], 3), row["due"])


# -- the register ---------------------------------------------------------------------------------


async def _register(
    request: Request,
    rt: RuntimeDep,
    session: Session,
    *,
    status: int = 200,
    field: str = "",
    error: str = "",
    typed: dict[str, str] | None = None,
) -> Response:
    principal = principal_of(session)
    now = _now()
    async with staff_unit(rt.pool, principal) as (conn, _):
        rows = await db.rectification.list_measures(conn)
        waiting = await rectification.unaddressed(conn, None, now)
        staff = await db.records.active_staff(conn, session.station) if session.station else []
    names = {s["staff_id"]: s["name"] for s in staff}
    measures = sorted((_measure_row(r, names, now) for r in rows), key=_order)
    unaddressed = [
        {
            "tracking_no": r["tracking_no"],
            "type": TYPE_LABELS.get(r["type"] or "", r["type"] or "—"),
            "category": CATEGORY_LABELS.get(r["category"] or "", r["category"] or "—"),
            "assigned": local_time(r["assigned_at"]),
        }
        for r in waiting
    ]
    return render(
        request,
        "console/rectification.html",
        status,
        me=session,
        measures=measures,
        unaddressed=unaddressed,
        staff=staff,
        field=field,
        error=error,
        typed=typed or {},
        active="rectification",
    )


@router.get("/console/rectification", response_class=HTMLResponse)
async def register(request: Request, rt: RuntimeDep, session: SessionDep) -> Response:
    return await _register(request, rt, session)


@router.post("/console/rectification")
async def create_measure(request: Request, rt: RuntimeDep, session: SessionDep) -> Response:
    form = await read_form(request, session)
    typed = {k: str(form.get(k, "")) for k in ("title", "description", "owner_id", "due_at", "tracking_nos")}
    principal, actor = principal_of(session), actor_of_session(session)
    try:
        if not actor.leads:  # before anything typed is looked at
            raise Rejected("forbidden", "只有所领导可以建立整改措施。")
        body = _check(
            MeasureIn,
            {
                "title": typed["title"].strip(),
                "description": typed["description"].strip(),
                "owner_id": typed["owner_id"],
                "due_at": _end_of_day(typed["due_at"]),
                "tracking_nos": _tracking_nos(typed["tracking_nos"]),
            },
        )
        async with staff_unit(rt.pool, principal) as (conn, _):
            measure_id = await rectification.create(
                conn, actor, title=body.title, description=body.description, owner_id=body.owner_id,
                due_at=body.due_at, tracking_nos=body.tracking_nos, now=_now(),
            )  # fmt: skip
            await audit(conn, principal, "create_rectification", None, actor.station, f"measure {measure_id}")
    except FieldRefused as exc:
        return await _register(request, rt, session, status=422, field=exc.field, error=exc.message, typed=typed)
    except Rejected as exc:
        status = _STATUS_FOR_CODE.get(exc.code, 422)
        field = REJECTION_FIELDS.get(exc.code, "")
        return await _register(request, rt, session, status=status, field=field, error=exc.message, typed=typed)
    return RedirectResponse(f"/console/rectification/{measure_id}", status_code=303)


# -- one measure ----------------------------------------------------------------------------------


async def _detail(
    request: Request,
    rt: RuntimeDep,
    session: Session,
    measure_id: int,
    *,
    status: int = 200,
    form: str = "",
    field: str = "",
    error: str = "",
    typed: dict[str, str] | None = None,
) -> Response:
    principal, actor = principal_of(session), actor_of_session(session)
    try:
        async with staff_unit(rt.pool, principal) as (conn, _):
            m = await rectification.measure(conn, measure_id)
            staff = await db.records.active_staff(conn, m["station"])
    except Rejected as exc:
        return render(
            request, "console/rectification_missing.html", 404, me=session, message=exc.message, active="rectification"
        )
    names = {s["staff_id"]: s["name"] for s in staff}
    now = _now()
    row = _measure_row({**m, "tracking_nos": m["tracking_nos"]}, names, now)
    is_owner = actor.staff_id == m["owner_id"]
    return render(
        request,
        "console/rectification_detail.html",
        status,
        me=session,
        m=m,
        row=row,
        name_of=names,
        created=local_time(m["created_at"]),
        completed=local_time(m["completed_at"]),
        verified=local_time(m["verified_at"]),
        progress=[
            {"at": local_time(p["at"]), "who": names.get(p["staff_id"], p["staff_id"]), "note": p["note"]}
            for p in m["progress"]
        ],
        may_link=actor.leads and m["status"] == "open",
        may_progress=m["status"] == "open" and (is_owner or actor.leads),
        may_complete=m["status"] == "open" and is_owner,
        may_verify=m["status"] == "done" and actor.leads and actor.staff_id not in (m["owner_id"], m["completed_by"]),
        form=form,
        field=field,
        error=error,
        typed=typed or {},
        active="rectification",
    )


@router.get("/console/rectification/{measure_id}", response_class=HTMLResponse)
async def measure_page(measure_id: RowId, request: Request, rt: RuntimeDep, session: SessionDep) -> Response:
    return await _detail(request, rt, session, measure_id)


async def _act(
    request: Request, rt: RuntimeDep, session: Session, measure_id: int, form_name: str, change: Any
) -> Response:
    """Read the form, run `change(form, conn, outbox, actor)` in the staff's transaction and go back to
    the measure; a refusal re-renders it with the message naming the field and what was typed."""
    form = await read_form(request, session)
    typed = {k: str(v) for k, v in form.items() if k != "csrf_token"}
    principal, actor = principal_of(session), actor_of_session(session)
    try:
        async with staff_unit(rt.pool, principal) as (conn, outbox):
            await change(form, conn, outbox, actor)
            await audit(conn, principal, f"{form_name}_rectification", None, actor.station, f"measure {measure_id}")
    except FieldRefused as exc:
        return await _detail(request, rt, session, measure_id, status=422, form=form_name, field=exc.field,
                             error=exc.message, typed=typed)  # fmt: skip
    except Rejected as exc:
        return await _detail(request, rt, session, measure_id, status=_STATUS_FOR_CODE.get(exc.code, 422),
                             form=form_name, field=REJECTION_FIELDS.get(exc.code, ""), error=exc.message,
                             typed=typed)  # fmt: skip
    return RedirectResponse(f"/console/rectification/{measure_id}", status_code=303)


@router.post("/console/rectification/{measure_id}/items")
async def link_items(measure_id: RowId, request: Request, rt: RuntimeDep, session: SessionDep) -> Response:
    async def change(form: FormData, conn: Connection, outbox: Outbox, actor: Actor) -> None:
        body = _check(ItemsIn, {"tracking_nos": _tracking_nos(str(form.get("tracking_nos", "")))})
        await rectification.link(conn, actor, measure_id, body.tracking_nos)

    return await _act(request, rt, session, measure_id, "link", change)


@router.post("/console/rectification/{measure_id}/progress")
async def add_progress(measure_id: RowId, request: Request, rt: RuntimeDep, session: SessionDep) -> Response:
    async def change(form: FormData, conn: Connection, outbox: Outbox, actor: Actor) -> None:
        body = _check(NoteIn, {"note": str(form.get("note", "")).strip()})
        await rectification.progress(conn, actor, measure_id, body.note, _now())

    return await _act(request, rt, session, measure_id, "progress", change)


@router.post("/console/rectification/{measure_id}/complete")
async def complete(measure_id: RowId, request: Request, rt: RuntimeDep, session: SessionDep) -> Response:
    async def change(form: FormData, conn: Connection, outbox: Outbox, actor: Actor) -> None:
        body = _check(EvidenceIn, {"evidence": str(form.get("evidence", "")).strip()})
        await rectification.complete(conn, actor, measure_id, body.evidence, _now())

    return await _act(request, rt, session, measure_id, "complete", change)


@router.post("/console/rectification/{measure_id}/verify")
async def verify(measure_id: RowId, request: Request, rt: RuntimeDep, session: SessionDep) -> Response:
    async def change(form: FormData, conn: Connection, outbox: Outbox, actor: Actor) -> None:
        body = _check(NoteIn, {"note": str(form.get("note", "")).strip()})
        await rectification.verify(conn, outbox, actor, measure_id, body.note, _now())

    return await _act(request, rt, session, measure_id, "verify", change)

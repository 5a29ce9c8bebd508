"""Reusable replies (常用答复, issue 16): the station's leadership keeps the wordings of common
results; anyone handling a case picks one in the resolve form, with the tracking number filled in.
`{称呼}` stays in the text: intake, which holds the citizen's name, fills it in the message it sends
(the tracking page leaves it out: "{称呼}您好" reads 您好)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fengqiao.runtime import RuntimeDep
from mediation import db
from mediation.console_common import LEADERSHIP, SessionDep, principal_of, read_form, render, row_id
from mediation.search import tracking_no as typed_tracking_no
from mediation.signin import Session
from mediation.unit import staff_unit

router = APIRouter(include_in_schema=False)
ReplyId = Annotated[int, Path(ge=1, le=2**63 - 1)]
NUMBER, NAME = "{编号}", "{称呼}"


def fill(body: str, tracking_no: str | None) -> str:
    """The reply with the tracking number in it (the name is intake's to fill)."""
    return body.replace(NUMBER, tracking_no) if tracking_no else body


async def _page(request: Request, rt: RuntimeDep, session: Session, status: int = 200, **context: object) -> Response:
    if not session.station:
        return render(request, "console/replies.html", 404, me=session, replies=[], errors={}, active="replies")
    async with staff_unit(rt.pool, principal_of(session)) as (conn, _):
        replies = await db.replies.of_station(conn, session.station)
    context.setdefault("errors", {})
    return render(
        request,
        "console/replies.html",
        status,
        me=session,
        replies=replies,
        may_edit=session.role in LEADERSHIP,
        active="replies",
        **context,
    )


@router.get("/console/replies", response_class=HTMLResponse)
async def replies_page(request: Request, rt: RuntimeDep, session: SessionDep) -> Response:
    return await _page(request, rt, session, saved=request.query_params.get("saved") == "1")


@router.post("/console/replies", response_class=HTMLResponse)
async def save_reply(request: Request, rt: RuntimeDep, session: SessionDep) -> Response:
    form = await read_form(request, session, max_fields=6)
    if session.role not in LEADERSHIP or not session.station:
        return await _page(request, rt, session, 403, errors={"title": "只有所领导可以维护常用答复。"})
    raw_id = str(form.get("id", "") or "")
    reply_id = row_id(raw_id)
    title, body = str(form.get("title", "")).strip(), str(form.get("body", "")).strip()
    typed = {"id": reply_id, "title": title, "body": body}
    errors = {}
    if not 1 <= len(title) <= 60:
        errors["title"] = "标题须为 1 到 60 个字。"
    if not 1 <= len(body) <= 2000:
        errors["body"] = "答复内容须为 1 到 2000 个字。"
    if not errors:
        async with staff_unit(rt.pool, principal_of(session)) as (conn, _):
            result = await db.replies.save(conn, session.station, reply_id, title, body, session.staff_id)
        if result == "saved":
            return RedirectResponse("/console/replies?saved=1", status_code=303)
        errors["title"] = "已有同名的常用答复。" if result == "taken" else "该常用答复不存在或已删除。"
    return await _page(request, rt, session, 422, errors=errors, typed=typed)


@router.post("/console/replies/{reply_id}/delete", response_class=HTMLResponse)
async def delete_reply(request: Request, reply_id: ReplyId, rt: RuntimeDep, session: SessionDep) -> Response:
    await read_form(request, session, max_fields=2)
    if session.role not in LEADERSHIP or not session.station:
        return await _page(request, rt, session, 403, errors={"title": "只有所领导可以维护常用答复。"})
    async with staff_unit(rt.pool, principal_of(session)) as (conn, _):
        deleted = await db.replies.delete(conn, session.station, reply_id)
    if not deleted:
        return await _page(request, rt, session, 404, errors={"title": "该常用答复不存在或已删除。"})
    return RedirectResponse("/console/replies?saved=1", status_code=303)


@router.get("/console/replies/fill", response_class=HTMLResponse)
async def filled_reply(
    request: Request,
    rt: RuntimeDep,
    session: SessionDep,
    reply_id: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    tracking_no: Annotated[str, Query(max_length=64)] = "",
    summary: Annotated[str, Query(max_length=5000)] = "",
) -> Response:
    """The resolve form's summary field with the chosen reply in it (htmx swaps it in); no reply
    chosen: the field as it was."""
    text = summary
    if reply_id and session.station:
        async with staff_unit(rt.pool, principal_of(session)) as (conn, _):
            reply = await db.replies.get(conn, session.station, reply_id)
        if reply is not None:
            text = fill(reply["body"], typed_tracking_no(tracking_no))
    return render(request, "console/_summary_field.html", me=session, summary=text)

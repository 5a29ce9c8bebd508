"""通知 (issue 16): the signed-in person's console notifications, read from notify's inbox API as
that person (the console reads no other service's tables), unread first; marking them read goes
back through the same API. The nav's badge is an htmx fragment that stays empty, never an error,
when there is nothing unread or notify cannot be reached."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fengqiao.constants import STATION_TZ
from mediation.console_common import SessionDep, read_form, render, secure_headers
from mediation.service_calls import NotYetSynced, ServiceProblem, inbox, mark_read, services_of
from mediation.signin import Session

router = APIRouter(include_in_schema=False)

MAX_IDS = 500  # notify's own limit per request
RETRY_AFTER_S = 2  # the session token is usually at notify within a second


def _when(value: str | None) -> str:
    if not value:
        return ""
    return datetime.fromisoformat(value).astimezone(STATION_TZ).strftime("%Y-%m-%d %H:%M")


def _notices(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Unread first, each group newest first (notify answers newest first)."""
    notices = []
    for n in doc.get("notifications") or []:
        notices.append(
            {
                "id": int(n["id"]),
                "kind": n.get("kind"),
                "tracking_no": n.get("tracking_no"),
                "title": n.get("title") or "",
                "body": n.get("body") or "",
                "at": _when(n.get("created_at")),
                "unread": n.get("read_at") is None,
                "withdrawn": bool(n.get("withdrawn")),
                "withdrawn_reason": n.get("withdrawn_reason") or "",
            }
        )
    return sorted(notices, key=lambda n: not n["unread"])  # stable: keeps newest first within each


async def _list_context(request: Request, session: Session) -> dict[str, Any]:
    try:
        doc = await inbox(services_of(request), session.api_token)
    except NotYetSynced as exc:
        return {"syncing": exc.message, "notices": [], "unread": 0}
    except ServiceProblem as exc:
        return {"problem": exc.message, "notices": [], "unread": 0}
    return {"notices": _notices(doc), "unread": int(doc.get("unread") or 0)}


@router.get("/console/inbox", response_class=HTMLResponse)
async def inbox_page(request: Request, session: SessionDep) -> HTMLResponse:
    context = await _list_context(request, session)
    return render(request, "console/inbox.html", me=session, active="inbox", retry_s=RETRY_AFTER_S, **context)


@router.get("/console/inbox/list", response_class=HTMLResponse)
async def inbox_list(request: Request, session: SessionDep) -> HTMLResponse:
    """The list alone: what the page retries (htmx) while the session's token is on its way."""
    context = await _list_context(request, session)
    return render(request, "console/inbox_list.html", me=session, retry_s=RETRY_AFTER_S, **context)


@router.get("/console/inbox/badge", response_class=HTMLResponse)
async def inbox_badge(request: Request, session: SessionDep) -> HTMLResponse:
    try:
        unread = int((await inbox(services_of(request), session.api_token, limit=1)).get("unread") or 0)
    except ServiceProblem:
        unread = 0
    return render(request, "console/inbox_badge.html", unread=unread)


def _ids(values: list[Any]) -> list[int] | None:
    """The posted notice ids (ValueError for anything but at most MAX_IDS positive integers)."""
    ids = [int(str(v)) for v in values]
    if not ids or len(ids) > MAX_IDS or any(i < 1 or i > 2**63 - 1 for i in ids):
        raise ValueError("ids")
    return ids


@router.post("/console/inbox/read", response_class=HTMLResponse)
async def inbox_read(request: Request, session: SessionDep) -> Response:
    """Mark one notice (`id`), or all (`all=1`), read: notify marks only the reader's own."""
    form = await read_form(request, session, max_fields=MAX_IDS + 4)
    ids: list[int] | None = None
    if form.get("all") != "1":
        try:
            ids = _ids(form.getlist("id"))
        except ValueError:
            context = await _list_context(request, session)
            page = render(
                request,
                "console/inbox.html",
                422,
                me=session,
                active="inbox",
                retry_s=RETRY_AFTER_S,
                error="未选择要标为已读的通知，请重试。",
                **context,
            )
            return page
    try:
        await mark_read(services_of(request), session.api_token, ids)
    except ServiceProblem as exc:
        context = await _list_context(request, session)
        return render(
            request,
            "console/inbox.html",
            exc.status if exc.status >= 400 else 503,
            me=session,
            active="inbox",
            retry_s=RETRY_AFTER_S,
            error=f"未能标为已读：{exc.message}",
            **context,
        )
    return secure_headers(RedirectResponse("/console/inbox", status_code=303))

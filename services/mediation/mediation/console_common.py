"""What every console page shares (DESIGN 4.8): the templates, the signed-in person as a route
dependency, the CSRF check of a posted form, and the page headers.

A console page is server-rendered Jinja2 and works without JavaScript; htmx (served by
`console_assets`, never from a CDN) only spares a reload. Every page that changes something is a
`<form method="post">` carrying the session's CSRF token, read here with a cap on its fields."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Cookie, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from fengqiao.auth import Principal
from fengqiao.constants import STATION_TZ
from fengqiao.runtime import RuntimeDep
from fengqiao.taxonomy import CATEGORY_LABELS, STATUS_LABELS, TYPE_LABELS, URGENCY_LABELS
from mediation.lifecycle import Actor
from mediation.signin import Session, csrf_ok, current_session

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.globals.update(
    STATUS_LABELS=STATUS_LABELS,
    CATEGORY_LABELS=CATEGORY_LABELS,
    TYPE_LABELS=TYPE_LABELS,
    URGENCY_LABELS=URGENCY_LABELS,
)

SESSION_COOKIE = "fq_session"
ROLE_LABELS = {
    "officer": "民警",
    "mediator": "调解员",
    "instructor": "教导员",
    "leader": "所长",
    "bureau": "分局督办",
    "admin": "系统管理员",
}
LEADERSHIP = frozenset({"leader", "instructor"})
CHANNEL_LABELS = {
    "hotline": "热线电话",
    "mailbox": "意见箱",
    "web": "网上留言",
    "walk_in": "来访",
    "transfer_110": "110 转来",
    "transfer_12345": "12345 转来",
    "bureau": "分局转来",
}
templates.env.globals.update(ROLE_LABELS=ROLE_LABELS, CHANNEL_LABELS=CHANNEL_LABELS)

# Console pages load only their own scripts and styles, are never framed, and post only to themselves.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)


class SignInRequired(Exception):
    """Raised by `SessionDep` for a page that needs a signed-in person: redirect to /login."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class PasswordChangeRequired(Exception):
    """A person who must choose their own password sees nothing else first."""


class FieldRefused(Exception):
    """A form field refused before anything is touched: the field and the message naming it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def local_time(value: datetime | None, with_time: bool = True) -> str:
    """A moment as the station reads it (Beijing time); "" for none."""
    if value is None:
        return ""
    return value.astimezone(STATION_TZ).strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")


class FormExpired(Exception):
    """A posted console form without the session's CSRF token (or with another session's)."""


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    me: Session | None = context.get("me")
    context.setdefault("role_label", ROLE_LABELS.get(me.role, me.role) if me else "")
    context.setdefault("is_leadership", bool(me and me.role in LEADERSHIP))
    context.setdefault("refresh_s", getattr(request.app.state, "console_refresh_s", 30))
    response = templates.TemplateResponse(request, name, context, status_code=status)
    secure_headers(response)
    return response


def secure_headers(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


async def _session(request: Request, rt: RuntimeDep, fq_session: Annotated[str | None, Cookie()] = None) -> Session:
    async with rt.pool.acquire() as conn:
        # a page's background poll (X-FQ-Poll) is not the person's activity: an unattended console
        # still signs out after the idle timeout
        polled = request.headers.get("X-FQ-Poll") == "1"
        session = await current_session(conn, fq_session, datetime.now(UTC), activity=not polled)
    if session is None:
        # back to the page afterwards: the one asked for, or (a form or an htmx fragment) the page it was on
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET" or request.headers.get("HX-Request"):
            came_from = request.headers.get("HX-Current-URL") or request.headers.get("Referer") or ""
            target = urlsplit(came_from).path or "/console/"
        raise SignInRequired(target)
    return session


async def _settled_session(session: Annotated[Session, Depends(_session)]) -> Session:
    if session.must_change:
        raise PasswordChangeRequired
    return session


AnySessionDep = Annotated[Session, Depends(_session)]  # also one that must still change its password
SessionDep = Annotated[Session, Depends(_settled_session)]


def principal_of(session: Session) -> Principal:
    """The signed-in person as the API's principal (row-level security, audit)."""
    return Principal(
        token_id=f"session:{session.staff_id}", role=session.role, station=session.station, staff_id=session.staff_id
    )


def actor_of_session(session: Session) -> Actor:
    return Actor(session.staff_id, session.role, session.station)


async def read_form(request: Request, session: Session, max_fields: int = 40) -> FormData:
    """A posted console form, once its CSRF token is the session's; `FormExpired` otherwise."""
    form = await request.form(max_files=0, max_fields=max_fields)
    if not csrf_ok(session, str(form.get("csrf_token", ""))):
        raise FormExpired
    return form


def row_id(value: object) -> int | None:
    """A form's id field as a positive bigint, or None (ASCII digits only: "²" is a digit to
    str.isdigit, not to int)."""
    text = str(value or "")
    return int(text) if re.fullmatch(r"[0-9]{1,18}", text) and int(text) > 0 else None


def safe_next(value: str | None) -> str:
    """Only our own console pages: never an open redirect."""
    if value and value.startswith("/console/") and "//" not in value and "\\" not in value:
        return value
    return "/console/"


def clock_words(due_at: datetime | None, now: datetime) -> tuple[str, str]:
    """The running deadline in plain words, and its colour class (the text says it too)."""
    if due_at is None:
        return "—", ""
    seconds = (due_at - now).total_seconds()
    days, rest = divmod(int(abs(seconds)) // 60, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        span = f"{days} 天 {hours} 小时"
    elif hours:
        span = f"{hours} 小时 {minutes} 分"
    else:
        span = f"{minutes} 分钟"
    if seconds < 0:
        return f"已超时 {span}", "late"
    return f"剩余 {span}", "soon" if seconds < 3600 else "fine"


def sign_in_redirect(request: Request, exc: Exception) -> Response:
    """A page that needs a signed-in person: to the sign-in form, and back afterwards. An htmx
    request is told to load the sign-in page as a whole (not swap it into a fragment)."""
    assert isinstance(exc, SignInRequired)
    target = f"/login?next={quote(safe_next(exc.next_url))}"
    if request.headers.get("HX-Request"):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def password_redirect(request: Request, exc: Exception) -> Response:
    return RedirectResponse("/console/password", status_code=303)


def form_expired(request: Request, exc: Exception) -> Response:
    """403, in words: the page was open too long (a new session) or the form did not come from us."""
    response = HTMLResponse(
        "<!doctype html><html lang='zh-CN'><meta charset='utf-8'><title>页面已过期 · 枫桥</title>"
        "<main style='font-family:sans-serif;max-width:30rem;margin:3rem auto'>"
        "<h1>页面已过期</h1><p>该表单已失效（可能已重新登录或在其他页面退出），未做任何更改。"
        "请返回后刷新页面再试。</p><p><a href='/console/'>返回我的待办</a></p></main></html>",
        status_code=403,
    )
    return secure_headers(response)

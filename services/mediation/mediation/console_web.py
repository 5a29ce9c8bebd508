"""Signing in and the console's pages (DESIGN 4.8): `GET/POST /login`, `POST /logout`, the password
page and the signed-in person's queue under `/console/`. Server-rendered, zh-CN, no JavaScript
needed. Every form carries a CSRF token: the session's once signed in, a double-submit cookie on
the sign-in form (so nobody can sign a victim in as someone else)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import structlog
from fastapi import APIRouter, Cookie, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from fengqiao.auth import Principal
from fengqiao.http import RateLimitsDep
from fengqiao.runtime import RuntimeDep
from fengqiao.taxonomy import CATEGORY_LABELS, STATUS_LABELS, URGENCY_LABELS
from mediation import db
from mediation.lifecycle import review_label
from mediation.oidc import FLOW_COOKIE, FLOW_COOKIE_PATH, FLOW_TTL_S, OidcClient, OidcRefused
from mediation.signin import (
    PasswordRefused,
    Session,
    SignInRefused,
    change_password,
    csrf_ok,
    current_session,
    sign_in,
    sign_in_verified,
    sign_out,
)
from mediation.unit import staff_unit

router = APIRouter(include_in_schema=False)
log = structlog.get_logger(__name__)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

SESSION_COOKIE = "fq_session"
LOGIN_CSRF_COOKIE = "fq_login_csrf"
ROLE_LABELS = {
    "officer": "民警",
    "mediator": "调解员",
    "instructor": "教导员",
    "leader": "所长",
    "bureau": "分局督办",
    "admin": "系统管理员",
}


class SignInRequired(Exception):
    """Raised by `SessionDep` for a page that needs a signed-in person: redirect to /login."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class PasswordChangeRequired(Exception):
    """A person who must choose their own password sees nothing else first."""


def _render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    me: Session | None = context.get("me")
    context.setdefault("role_label", ROLE_LABELS.get(me.role, me.role) if me else "")
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response


async def _session(request: Request, rt: RuntimeDep, fq_session: Annotated[str | None, Cookie()] = None) -> Session:
    async with rt.pool.acquire() as conn:
        session = await current_session(conn, fq_session, datetime.now(UTC))
    if session is None:
        raise SignInRequired(request.url.path)
    return session


async def _settled_session(request: Request, session: Annotated[Session, Depends(_session)]) -> Session:
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


def _safe_next(value: str | None) -> str:
    """Only our own console pages: never an open redirect."""
    if value and value.startswith("/console/") and "//" not in value and "\\" not in value:
        return value
    return "/console/"


# -- signing in and out ------------------------------------------------------------------------


def _login_page(request: Request, secure: bool, status: int = 200, **context: Any) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    context.setdefault("username", "")
    context.setdefault("next", "/console/")
    context.setdefault("oidc", getattr(request.app.state, "oidc", None) is not None)
    response = _render(request, "login.html", status, csrf_token=token, **context)
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/login", max_age=3600
    )
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_form(
    request: Request, rt: RuntimeDep, next: str | None = None, signed_out: bool = False
) -> HTMLResponse:
    return _login_page(
        request, rt.settings.cookie_secure, next=_safe_next(next), message="您已退出登录。" if signed_out else None
    )


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    rt: RuntimeDep,
    limits: RateLimitsDep,
    fq_login_csrf: Annotated[str | None, Cookie()] = None,
) -> Response:
    secure = rt.settings.cookie_secure
    # per client address, before any password is checked
    allowed, retry_after = limits.allow("login", request) if limits is not None else (True, 0)
    if not allowed:
        refused = _login_page(request, secure, 429, error="登录尝试过于频繁，请稍后再试。")
        refused.headers["Retry-After"] = str(retry_after)
        return refused
    form = await request.form(max_files=0, max_fields=6)
    username = str(form.get("username", "")).strip()[:100]
    password = str(form.get("password", ""))
    next_url = _safe_next(str(form.get("next", "")))
    submitted = str(form.get("csrf_token", ""))
    if not fq_login_csrf or not submitted or not secrets.compare_digest(fq_login_csrf, submitted):
        return _login_page(request, secure, 403, username=username, next=next_url, error="页面已过期，请重新登录。")
    if not username or not password:
        return _login_page(request, secure, 422, username=username, next=next_url, error="请填写用户名和密码。")
    try:
        cookie, session = await sign_in(rt.pool, username, password, datetime.now(UTC))
    except SignInRefused as exc:
        status = 429 if exc.retry_after_s else 401
        refused = _login_page(request, secure, status, username=username, next=next_url, error=exc.message)
        if exc.retry_after_s:
            refused.headers["Retry-After"] = str(exc.retry_after_s)
        return refused
    target = "/console/password" if session.must_change else next_url
    signed_in = RedirectResponse(target, status_code=303)
    signed_in.set_cookie(SESSION_COOKIE, cookie, httponly=True, samesite="lax", secure=secure, path="/")
    signed_in.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return signed_in


def _signed_in(target: str, cookie: str, secure: bool) -> RedirectResponse:
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(SESSION_COOKIE, cookie, httponly=True, samesite="lax", secure=secure, path="/")
    return response


def _oidc_refused(request: Request, secure: bool, status: int, message: str) -> HTMLResponse:
    page = _login_page(request, secure, status, error=message)
    page.delete_cookie(FLOW_COOKIE, path=FLOW_COOKIE_PATH)
    return page


@router.get("/login/oidc", response_model=None)
async def login_oidc(request: Request, rt: RuntimeDep, next: str | None = None) -> Response:
    """Off to the bureau's identity provider (authorization code with PKCE, state and nonce)."""
    secure = rt.settings.cookie_secure
    client: OidcClient | None = getattr(request.app.state, "oidc", None)
    if client is None:
        return _login_page(request, secure, 404, error="本系统未启用统一身份认证登录，请使用用户名和密码登录。")
    flow = client.new_flow(_safe_next(next))
    try:
        url = await client.authorization_url(flow)
    except OidcRefused as exc:
        log.warning("oidc_refused", reason=exc.reason)
        return _oidc_refused(request, secure, 503, exc.message)
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        FLOW_COOKIE,
        client.seal(flow),
        httponly=True,
        samesite="lax",  # the provider sends the browser back with a top-level GET
        secure=secure,
        path=FLOW_COOKIE_PATH,
        max_age=FLOW_TTL_S,
    )
    return response


@router.get("/login/oidc/callback", response_model=None)
async def login_oidc_callback(
    request: Request,
    rt: RuntimeDep,
    limits: RateLimitsDep,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
    fq_oidc: Annotated[str | None, Cookie()] = None,
) -> Response:
    """Back from the provider: check the flow, exchange the code, check the ID token, map the
    claim to an active person, and open the same session as a password sign-in."""
    secure = rt.settings.cookie_secure
    client: OidcClient | None = getattr(request.app.state, "oidc", None)
    if client is None:
        return _login_page(request, secure, 404, error="本系统未启用统一身份认证登录，请使用用户名和密码登录。")
    allowed, retry_after = limits.allow("login", request) if limits is not None else (True, 0)
    if not allowed:
        refused = _oidc_refused(request, secure, 429, "登录尝试过于频繁，请稍后再试。")
        refused.headers["Retry-After"] = str(retry_after)
        return refused
    try:
        flow = client.open(fq_oidc, state)
        if error or not code or len(code) > 2048:
            raise OidcRefused("统一身份认证未完成登录，请重新登录。", "no_code")
        username = await client.username(flow, code)
        cookie, _session = await sign_in_verified(rt.pool, username, datetime.now(UTC))
    except OidcRefused as exc:
        log.info("oidc_refused", reason=exc.reason)
        status = 503 if exc.reason == "provider_unavailable" else 403
        return _oidc_refused(request, secure, status, exc.message)
    except SignInRefused as exc:
        log.info("oidc_refused", reason="unknown_or_inactive")
        return _oidc_refused(request, secure, 403, exc.message)
    signed_in = _signed_in(flow.next_url, cookie, secure)
    signed_in.delete_cookie(FLOW_COOKIE, path=FLOW_COOKIE_PATH)
    return signed_in


@router.post("/logout")
async def logout(request: Request, rt: RuntimeDep, session: AnySessionDep) -> Response:
    form = await request.form(max_files=0, max_fields=3)
    if not csrf_ok(session, str(form.get("csrf_token", ""))):
        return _render(
            request, "login.html", 403, csrf_token="", username="", next="/console/", error="页面已过期，请刷新后重试。"
        )
    async with rt.pool.acquire() as conn:
        await sign_out(conn, session, everywhere=form.get("everywhere") == "1")
    response = RedirectResponse("/login?signed_out=true", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- the signed-in person's pages --------------------------------------------------------------


@router.get("/console/password", response_class=HTMLResponse)
async def password_form(request: Request, session: AnySessionDep) -> HTMLResponse:
    return _render(request, "password.html", me=session, errors={})


@router.post("/console/password", response_class=HTMLResponse)
async def password_change(request: Request, rt: RuntimeDep, session: AnySessionDep) -> Response:
    form = await request.form(max_files=0, max_fields=5)
    if not csrf_ok(session, str(form.get("csrf_token", ""))):
        return _render(request, "password.html", 403, me=session, errors={"csrf_token": "页面已过期，请刷新后重试。"})
    try:
        await change_password(
            rt.pool,
            session,
            str(form.get("current_password", "")),
            str(form.get("new_password", "")),
            str(form.get("confirm_password", "")),
        )
    except PasswordRefused as exc:
        return _render(request, "password.html", 422, me=session, errors={exc.field: exc.message})
    return RedirectResponse("/console/?password_changed=true", status_code=303)


def _clock_words(due_at: datetime | None, now: datetime) -> tuple[str, str]:
    """The running deadline in plain words, and its colour class (the text says it too)."""
    if due_at is None:
        return "—", ""
    seconds = (due_at - now).total_seconds()
    hours, minutes = divmod(int(abs(seconds)) // 60, 60)
    span = f"{hours} 小时 {minutes} 分" if hours else f"{minutes} 分钟"
    if seconds < 0:
        return f"已超时 {span}", "late"
    return f"剩余 {span}", "soon" if seconds < 3600 else "fine"


@router.get("/console/", response_class=HTMLResponse)
async def queue(request: Request, rt: RuntimeDep, session: SessionDep) -> HTMLResponse:
    principal = principal_of(session)
    query = db.cases.CaseQuery(assignee_id=session.staff_id, statuses=tuple(OPEN_STATUSES), limit=100)
    async with staff_unit(rt.pool, principal) as (conn, _):
        rows = await db.cases.list_cases(conn, session.station, query)
        total = await db.cases.count_cases(conn, session.station, query)
    now = datetime.now(UTC)
    cases = []
    for r in rows:
        text, css = _clock_words(r["due_at"], now)
        cases.append(
            {
                "tracking_no": r["tracking_no"],
                "status_label": STATUS_LABELS.get(r["status"], r["status"]),
                "category_label": CATEGORY_LABELS.get(r["category"] or "", "—"),
                "urgency_label": URGENCY_LABELS.get(r["urgency"] or "", "—"),
                "clock_text": text,
                "clock_class": css,
                "review_label": review_label(r["assignment_reason"], r["flagged"]),
            }
        )
    return _render(request, "console/queue.html", me=session, cases=cases, total=total)


OPEN_STATUSES = ("assigned", "accepted", "in_progress", "mediating", "returned", "reopened")


def sign_in_redirect(request: Request, exc: Exception) -> Response:
    """A page that needs a signed-in person: to the sign-in form, and back afterwards."""
    assert isinstance(exc, SignInRequired)
    return RedirectResponse(f"/login?next={quote(_safe_next(exc.next_url))}", status_code=303)


def password_redirect(request: Request, exc: Exception) -> Response:
    return RedirectResponse("/console/password", status_code=303)

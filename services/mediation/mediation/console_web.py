"""Signing in (DESIGN 4.8): `GET/POST /login`, `POST /logout`, OpenID Connect, and the password
page. Server-rendered, zh-CN, no JavaScript needed. Every form carries a CSRF token: the
session's once signed in, a double-submit cookie on the sign-in form (so nobody can sign a
victim in as someone else)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Cookie, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fengqiao.http import RateLimitsDep
from fengqiao.runtime import RuntimeDep
from mediation.console_common import SESSION_COOKIE, AnySessionDep, render, safe_next
from mediation.oidc import FLOW_COOKIE, FLOW_COOKIE_PATH, FLOW_TTL_S, OidcClient, OidcRefused
from mediation.signin import (
    PasswordRefused,
    SignInRefused,
    change_password,
    csrf_ok,
    sign_in,
    sign_in_verified,
    sign_out,
)

router = APIRouter(include_in_schema=False)
log = structlog.get_logger(__name__)
LOGIN_CSRF_COOKIE = "fq_login_csrf"


# -- signing in and out ------------------------------------------------------------------------


def _login_page(request: Request, secure: bool, status: int = 200, **context: Any) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    context.setdefault("username", "")
    context.setdefault("next", "/console/")
    context.setdefault("oidc", getattr(request.app.state, "oidc", None) is not None)
    response = render(request, "login.html", status, csrf_token=token, **context)
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/login", max_age=3600
    )
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_form(
    request: Request, rt: RuntimeDep, next: str | None = None, signed_out: bool = False
) -> HTMLResponse:
    return _login_page(
        request, rt.settings.cookie_secure, next=safe_next(next), message="您已退出登录。" if signed_out else None
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
    next_url = safe_next(str(form.get("next", "")))
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
    flow = client.new_flow(safe_next(next))
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
        return render(
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
    return render(request, "password.html", me=session, errors={})


@router.post("/console/password", response_class=HTMLResponse)
async def password_change(request: Request, rt: RuntimeDep, session: AnySessionDep) -> Response:
    form = await request.form(max_files=0, max_fields=5)
    if not csrf_ok(session, str(form.get("csrf_token", ""))):
        return render(request, "password.html", 403, me=session, errors={"csrf_token": "页面已过期，请刷新后重试。"})
    try:
        await change_password(
            rt.pool,
            session,
            str(form.get("current_password", "")),
            str(form.get("new_password", "")),
            str(form.get("confirm_password", "")),
        )
    except PasswordRefused as exc:
        return render(request, "password.html", 422, me=session, errors={exc.field: exc.message})
    return RedirectResponse("/console/?password_changed=true", status_code=303)

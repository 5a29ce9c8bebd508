"""FastAPI pieces every service's API shares: JSON errors and token-based principals.

Routes read like prose: `async def route(rt: RuntimeDep, staff: StaffPrincipal)`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Header, Request

from fengqiao.auth import Principal, authenticate, bearer_token
from fengqiao.errors import api_error as api_error  # re-exported: the API modules' one import
from fengqiao.errors import invalid_field as invalid_field
from fengqiao.ratelimit import RateLimits
from fengqiao.runtime import RuntimeDep


async def optional_principal(rt: RuntimeDep, authorization: Annotated[str | None, Header()] = None) -> Principal | None:
    """None without an Authorization header; 401 for a token that is wrong or revoked."""
    token = bearer_token(authorization)
    if token is None:
        return None
    async with rt.pool.acquire() as conn:
        principal = await authenticate(conn, token)
    if principal is None:
        raise api_error(401, "invalid_token", "令牌无效或已吊销。")
    return principal


async def staff_principal(principal: Annotated[Principal | None, Depends(optional_principal)]) -> Principal:
    if principal is None or not principal.is_staff:
        raise api_error(401, "unauthorized", "需要工作人员令牌。")
    return principal


OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]
StaffPrincipal = Annotated[Principal, Depends(staff_principal)]


def _limits_of(request: Request) -> RateLimits | None:
    """The service's per-address limits, if it has any (its app.py sets `app.state.rate_limits`)."""
    return getattr(request.app.state, "rate_limits", None)


async def get_rate_limits(request: Request) -> RateLimits | None:
    return _limits_of(request)


RateLimitsDep = Annotated[RateLimits | None, Depends(get_rate_limits)]


def rate_limited(name: str) -> Any:  # a Depends(...) marker
    """A dependency that counts a hit of the `name` limit for the client's address; 429 beyond it.
    Staff and integration tokens are not limited (call centres submit all day)."""

    async def check(request: Request, principal: OptionalPrincipal, limits: RateLimitsDep) -> None:
        if principal is None:
            _count_hit(limits, request, name)

    return Depends(check)


def check_limit(request: Request, name: str) -> None:
    """Count one hit of the `name` limit for the client's address; 429 beyond it."""
    _count_hit(_limits_of(request), request, name)


def _count_hit(limits: RateLimits | None, request: Request, name: str) -> None:
    if limits is None:
        return
    allowed, retry_after = limits.allow(name, request)
    if not allowed:
        exc = api_error(429, "rate_limited", "操作过于频繁，请稍后再试。")
        exc.headers = {"Retry-After": str(retry_after)}
        raise exc


def client_address(request: Request) -> str:
    """The client's address as the rate limits see it (behind trusted proxies, X-Forwarded-For)."""
    limits = _limits_of(request)
    if limits is not None:
        return limits.client_address(request)
    return request.client.host if request.client else "unknown"


def iso(value: object) -> object:
    """A datetime as ISO 8601 for a JSON answer; anything else (None included) as it is."""
    return value.isoformat() if isinstance(value, datetime) else value

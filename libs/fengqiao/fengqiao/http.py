"""FastAPI pieces every service's API shares: JSON errors and token-based principals.

Routes read like prose: `async def route(rt: RuntimeDep, staff: StaffPrincipal)`."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.types import Message

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


class AuthoriseFirstRoute(APIRoute):
    """A route whose dependencies (the token, the station's and the role's checks) answer before a
    body that is not JSON is refused. FastAPI runs dependencies before it validates the body, but it
    decodes JSON before either, so a stranger posting malformed JSON would get a 422 where the
    route's answer to them is 404 or 403. On a `json_invalid` error the request is run once more
    with the body passed as opaque bytes: the dependencies run (and refuse a stranger); for anyone
    they let through the body cannot validate as the route's model, and the JSON error is answered."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def authorise_first(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                if not any(e.get("type") == "json_invalid" for e in exc.errors()):
                    raise
                try:
                    await handler(await _opaque_body(request))
                except RequestValidationError:
                    pass
                raise exc from None

        return authorise_first


async def _opaque_body(request: Request) -> Request:
    """The same request, its body labelled as bytes, so FastAPI does not decode it as JSON."""
    body = await request.body()  # read (and kept) by the first attempt
    headers = [(k, v) for k, v in request.scope["headers"] if k.lower() != b"content-type"]

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {**request.scope, "headers": [*headers, (b"content-type", b"application/octet-stream")]}
    return Request(scope, receive)

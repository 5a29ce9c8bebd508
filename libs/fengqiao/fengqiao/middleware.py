"""ASGI middleware every service runs in front of its routes: a request-size limit that refuses before
anything is read or authenticated, a deadline that answers 503 instead of hanging on a frozen database,
and the security headers of every answer. Pure ASGI (no BaseHTTPMiddleware): cheap, and it sees the
raw byte stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from fastapi import HTTPException

log = structlog.get_logger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def _send_json(send: Send, status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None) -> None:
    raw = json.dumps(body, ensure_ascii=False).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    head += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": raw})


def _too_large(limit: int) -> dict[str, Any]:
    return {"detail": {"error": "body_too_large", "message": f"请求体不能超过 {limit} 字节。"}}


class BodyLimit:
    """Refuse a request body over the route's limit with 413 before it is read: at once from
    Content-Length, or as soon as a chunked body passes the limit. Without this, every route read
    the whole body (and FastAPI parsed it) before any token or size was checked."""

    def __init__(self, app: ASGIApp, *, default: int, overrides: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.default = default
        self.overrides = dict(overrides or {})

    def limit_for(self, path: str) -> int:
        return self.overrides.get(path, self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _send_json(
                    send, 400, {"detail": {"error": "bad_content_length", "message": "Content-Length 无效。"}}
                )
                return
            if int(declared) > limit:
                await _send_json(send, 413, _too_large(limit), {"Connection": "close"})
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # An HTTPException travels through FastAPI's body parsing untouched and is
                    # answered by the service's error handler like any other 4xx.
                    raise HTTPException(413, detail=_too_large(limit)["detail"])
            return message

        await self.app(scope, limited, send)


class RefuseNul:
    """A NUL in the path or the query string is refused with 422 before routing: PostgreSQL's text
    cannot hold it, so wherever such a value reached a query the answer was a 500 (hostile-input
    finding S3). One check here instead of a pattern on every path parameter."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string", b"").lower()
            if "\x00" in scope["path"] or b"%00" in query or b"\x00" in query:
                await _send_json(
                    send, 422, {"detail": {"error": "invalid_characters", "message": "请求地址中含有不允许的字符。"}}
                )
                return
        await self.app(scope, receive, send)


class RequestDeadline:
    """Answer 503 with Retry-After when a request is not done within `seconds`. A database host
    that stops answering keeps its connections open, so without a deadline a citizen's submission
    waited until the client gave up (security review finding 13). The request's work is cancelled;
    nothing half-stored survives, because every write runs in one transaction (whole, if the deadline
    struck during its commit)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        seconds: float,
        overrides: Mapping[str, float] | None = None,
        on_timeout: Callable[[Scope], None] | None = None,
    ) -> None:
        self.app = app
        self.seconds = seconds
        # Routes that take large uploads (a scanned slip over a slow station line) get longer.
        self.overrides = dict(overrides or {})
        self.on_timeout = on_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        seconds = self.overrides.get(scope.get("path", ""), self.seconds)
        if scope["type"] != "http" or seconds <= 0:
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await asyncio.wait_for(self.app(scope, receive, tracking_send), seconds)
        except TimeoutError:
            route = getattr(scope.get("route"), "path", "unmatched")
            log.warning("request_deadline_exceeded", route=route, seconds=seconds, answered=started)
            if self.on_timeout is not None:
                self.on_timeout(scope)
            if not started:
                # Not "nothing was saved": the deadline may have struck during the commit. A retry with
                # the same Idempotency-Key (or the same web form) returns the receipt if it was.
                await _send_json(
                    send,
                    503,
                    {"detail": {"error": "unavailable", "message": "系统繁忙，暂时无法确认处理结果，请稍后重试。"}},
                    {"Retry-After": "5"},
                )


# Pages are server-rendered with their own styles (inline <style> blocks) and scripts served by the
# service itself (no CDN: stations run on closed networks).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# FastAPI's interactive API docs load Swagger UI / ReDoc from a CDN; they get the other headers only.
_DOCS_PATHS = ("/docs", "/redoc")


class SecurityHeaders:
    """Headers of every answer: no sniffing, no framing (clickjacking of the console and the
    agreement page), no referrer (tracking numbers and signed survey links live in URLs), and no
    caching anywhere between the service and the person unless a route says otherwise (receipts with
    access codes, tracking results and agreement pages must not stay in a shared cache)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope["path"].startswith(_DOCS_PATHS)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                present = {k.lower() for k, _ in headers}
                wanted = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                    (b"cache-control", b"no-store"),
                ]
                if not docs:
                    wanted.append((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))
                headers += [(k, v) for k, v in wanted if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)

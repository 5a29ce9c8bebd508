"""The console's HTTP client to intake and notify (issue 16): the console reads no other service's
database, so recording a visitor and reading the inbox go through those services' APIs, server
side, as the signed-in person (their session-bound token, `signin.session_api_token`).

Short timeouts: a service that is down makes one piece of one page say so in Chinese, never the
whole console slow or broken. Nothing personal is logged (no bodies, no tokens)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from fastapi import Request

from fengqiao.settings import Settings

log = structlog.get_logger(__name__)

TIMEOUT = httpx.Timeout(5.0, connect=2.0)


class ServiceProblem(Exception):
    """A call that did not succeed; `message` is zh-CN for the page, `field` the form field at fault."""

    def __init__(self, message: str, *, status: int = 503, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field


class NotYetSynced(ServiceProblem):
    """The other service does not know the session's token yet (its directory event is on the way,
    usually under a second): refresh soon, not an error."""

    def __init__(self) -> None:
        super().__init__("正在同步，请稍后刷新。", status=503)


class Unreachable(ServiceProblem):
    """The service is down or too slow: the rest of the console works on."""


@dataclass(frozen=True)
class Services:
    intake_url: str
    notify_url: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        return cls(settings.intake_base_url(), settings.notify_base_url())


def services_of(request: Request) -> Services:
    """The base URLs the app was built with (`app.state.services`, set in mediation.app)."""
    services: Services = request.app.state.services
    return services


SERVICE_NAMES = {"intake": "受理服务", "notify": "通知服务"}


async def _call(
    base: str,
    service: str,
    method: str,
    path: str,
    token: str,
    body: dict[str, Any] | None = None,
    *,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    if not token:
        raise NotYetSynced
    headers = {"Authorization": f"Bearer {token}"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    try:
        async with httpx.AsyncClient(base_url=base, timeout=TIMEOUT) as client:
            response = await client.request(method, path, json=body, headers=headers)
    except httpx.HTTPError as exc:
        log.warning("service_unreachable", service=service, path=path, error=type(exc).__name__)
        raise Unreachable(f"{SERVICE_NAMES[service]}暂时无法连接，请稍后再试。") from None
    if response.status_code == 401:
        raise NotYetSynced
    if response.status_code >= 500:
        log.warning("service_failed", service=service, path=path, status=response.status_code)
        raise Unreachable(f"{SERVICE_NAMES[service]}暂时不可用，请稍后再试。")
    try:
        doc = response.json()
    except ValueError:
        doc = {}
    if response.status_code >= 400:
        detail = doc.get("detail") if isinstance(doc, dict) else None
        detail = detail if isinstance(detail, dict) else {}
        log.info("service_refused", service=service, path=path, status=response.status_code, code=detail.get("error"))
        raise ServiceProblem(
            str(detail.get("message") or "请求被拒绝，请检查后重试。"),
            status=response.status_code,
            field=detail.get("field"),
        )
    return doc if isinstance(doc, dict) else {}


async def submit_feedback(
    services: Services, token: str, body: dict[str, Any], *, idempotency_key: str | None = None
) -> dict[str, Any]:
    """A walk-in visitor's words (channel walk_in): intake's `POST /api/v1/feedback`; the same
    `idempotency_key` again answers the same receipt, with the same access code."""
    return await _call(
        services.intake_url, "intake", "POST", "/api/v1/feedback", token, body, idempotency_key=idempotency_key
    )


async def record_call(services: Services, token: str, body: dict[str, Any]) -> dict[str, Any]:
    """A hotline call typed in by the officer who took it: intake's `POST /api/v1/hotline/calls`."""
    return await _call(services.intake_url, "intake", "POST", "/api/v1/hotline/calls", token, body)


async def enter_slip(services: Services, token: str, body: dict[str, Any]) -> dict[str, Any]:
    """A suggestion-box slip: intake's `POST /api/v1/mailbox/items`."""
    return await _call(services.intake_url, "intake", "POST", "/api/v1/mailbox/items", token, body)


async def inbox(services: Services, token: str, limit: int = 100) -> dict[str, Any]:
    """The signed-in person's console notifications: notify's `GET /api/v1/inbox`."""
    return await _call(services.notify_url, "notify", "GET", f"/api/v1/inbox?limit={int(limit)}", token)


async def mark_read(services: Services, token: str, ids: list[int] | None) -> dict[str, Any]:
    """Mark some (or, with None, all) of the person's notifications read."""
    return await _call(services.notify_url, "notify", "POST", "/api/v1/inbox/read", token, {"ids": ids})


MAX_SCAN_BYTES = 12 * 1024 * 1024  # intake keeps scans far smaller; a bigger answer is refused


async def slip_scan(services: Services, token: str, tracking_no: str) -> tuple[bytes, str] | None:
    """The scanned suggestion-box slip of an item (intake's `GET /api/v1/items/{no}/scan`, which
    logs the viewing as the person): its bytes and type, None if there is none or it is not theirs."""
    if not token:
        raise NotYetSynced
    try:
        async with (
            httpx.AsyncClient(base_url=services.intake_url, timeout=TIMEOUT) as client,
            client.stream(
                "GET", f"/api/v1/mailbox/items/{tracking_no}/scan", headers={"Authorization": f"Bearer {token}"}
            ) as response,
        ):
            if response.status_code == 401:
                raise NotYetSynced
            if response.status_code in (403, 404):
                return None
            if response.status_code != 200:
                raise Unreachable(f"{SERVICE_NAMES['intake']}暂时不可用，请稍后再试。")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body.extend(chunk)
                if len(body) > MAX_SCAN_BYTES:
                    raise Unreachable("扫描件过大，无法显示。")
            return bytes(body), response.headers.get("content-type", "application/octet-stream")
    except httpx.HTTPError as exc:
        log.warning("service_unreachable", service="intake", path="scan", error=type(exc).__name__)
        raise Unreachable(f"{SERVICE_NAMES['intake']}暂时无法连接，请稍后再试。") from None

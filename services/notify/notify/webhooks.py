"""Webhooks for other bureau systems: subscriptions per event type and station to the public case
events (the same CloudEvents as on `fengqiao.case-events.v1`, no personal data), delivered through
the queue with retries and signed per Standard Webhooks."""

from __future__ import annotations

import secrets
from fnmatch import fnmatchcase
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends, Path
from pydantic import AnyHttpUrl, BaseModel, Field, UrlConstraints

from fengqiao.auth import Principal
from fengqiao.events import CloudEvent
from fengqiao.http import OptionalPrincipal, api_error
from fengqiao.outbox import Outbox
from fengqiao.runtime import RuntimeDep
from notify import db
from notify.addresses import AddressRefused
from notify.channels import new_webhook_secret
from notify.deliveries import DeliveryQueue
from notify.deps import QueueDep, WebhookPolicyDep


async def matching_subscriptions(conn: asyncpg.Connection, event_type: str, station: str | None) -> list:
    rows = await db.active_subscriptions(conn)
    return [
        r
        for r in rows
        if any(fnmatchcase(event_type, pattern) for pattern in r["event_types"])
        and (not r["stations"] or station in r["stations"])
    ]


async def fan_out(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox, *, queue: DeliveryQueue) -> None:
    """One webhook delivery per matching subscription; the body is the event as published."""
    station = event.stationid
    body = None
    for sub in await matching_subscriptions(conn, event.type, station):
        body = body or event.to_json().decode()
        await queue.enqueue(
            conn,
            outbox,
            event_source=event.source,
            event_id=event.id,
            channel="webhook",
            audience="subscriber",
            recipient_key=sub["id"],
            address=sub["url"],
            body=body,
            template="cloudevent",
            tracking_no=event.subject,
            station=station,
        )


# -- management API (other bureau systems with an integration token; bureau and admin staff) --------

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])


async def subscriber(principal: OptionalPrincipal) -> Principal:
    if principal is None:
        raise api_error(401, "unauthenticated", "需要有效的访问令牌。")
    if principal.role not in ("integration", "bureau", "admin"):
        raise api_error(403, "forbidden", "只有分局、管理员或外部系统可以订阅推送。")
    return principal


Subscriber = Annotated[Principal, Depends(subscriber)]


class NewSubscription(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    url: Annotated[AnyHttpUrl, UrlConstraints(max_length=2000)]
    event_types: list[Annotated[str, Field(pattern=r"^fengqiao\.[a-z_.]*\*?$", max_length=100)]] = Field(
        min_length=1, max_length=50
    )
    stations: list[Annotated[str, Field(max_length=20)]] = Field(default_factory=list, max_length=200)


_REFUSED = {
    "invalid_url": "推送地址无效。",
    "unresolvable_host": "推送地址的主机名无法解析。",
    "address_not_allowed": (
        "推送地址不能是本机、内网、链路本地或其他非公网地址；如确需使用，请联系系统管理员加入允许列表。"
    ),
}


def _public(row) -> dict:
    return {
        "id": row["id"],
        "name": row["name"],
        "url": row["url"],
        "event_types": list(row["event_types"]),
        "stations": list(row["stations"]),
        "active": row["active"],
        "created_at": row["created_at"].isoformat(),
    }


@router.post("", status_code=201)
async def subscribe(
    body: NewSubscription, rt: RuntimeDep, principal: Subscriber, queue: QueueDep, policy: WebhookPolicyDep
) -> dict:
    """Create a subscription. The signing secret is returned once, here."""
    try:  # checked again at every send: DNS may change after this
        await policy.check(str(body.url))
    except AddressRefused as exc:
        raise api_error(422, exc.reason, _REFUSED[exc.reason], field="url") from None
    secret = new_webhook_secret()
    sub_id = "wh_" + secrets.token_hex(8)
    sealed = queue.cipher.seal(secret.encode(), context=f"webhook/{sub_id}/secret")
    async with rt.pool.acquire() as conn:
        unknown = sorted(set(body.stations) - await db.station_codes(conn))
        if unknown:
            raise api_error(422, "unknown_station", f"未知的派出所：{', '.join(unknown)}", field="stations")
        row = await db.add_subscription(
            conn,
            sub_id=sub_id,
            name=body.name,
            url=str(body.url),
            event_types=body.event_types,
            stations=body.stations,
            secret_kid=sealed.kid,
            secret_enc=sealed.blob,
            owner_id=principal.token_id,
        )
    return {**_public(row), "secret": secret}


@router.get("")
async def list_subscriptions(rt: RuntimeDep, principal: Subscriber) -> dict:
    async with rt.pool.acquire() as conn:
        rows = await db.subscriptions(conn, principal.token_id, every_owner=principal.role == "admin")
    return {"subscriptions": [_public(r) for r in rows]}


@router.delete("/{sub_id}", status_code=204)
async def unsubscribe(
    sub_id: Annotated[str, Path(max_length=40, pattern=r"^[A-Za-z0-9_-]+$")], rt: RuntimeDep, principal: Subscriber
) -> None:
    """Deactivate; deliveries not yet sent to it are dropped when their turn comes."""
    async with rt.pool.acquire() as conn:
        done = await db.deactivate_subscription(conn, sub_id, principal.token_id, any_owner=principal.role == "admin")
    if not done:
        raise api_error(404, "not_found", "没有这个订阅。")

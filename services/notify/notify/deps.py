"""Notify's route dependencies as typed aliases (as the FastAPI template's deps.py): a route names
what it needs; only this module knows that app.py keeps them on app.state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from fengqiao.pii import PiiCipher
from notify.addresses import WebhookPolicy
from notify.deliveries import DeliveryQueue
from notify.templates import Templates


# async: FastAPI would run a plain def dependency in a worker thread, a costly hop per request
async def get_queue(request: Request) -> DeliveryQueue:
    return request.app.state.queue


async def get_cipher(request: Request) -> PiiCipher:
    return request.app.state.queue.cipher


async def get_templates(request: Request) -> Templates:
    return request.app.state.templates


async def get_webhook_policy(request: Request) -> WebhookPolicy:
    return request.app.state.webhook_policy


QueueDep = Annotated[DeliveryQueue, Depends(get_queue)]
CipherDep = Annotated[PiiCipher, Depends(get_cipher)]
TemplatesDep = Annotated[Templates, Depends(get_templates)]
WebhookPolicyDep = Annotated[WebhookPolicy, Depends(get_webhook_policy)]

"""Helpers of the end-to-end tests."""

from __future__ import annotations

import time

import httpx


def token(stack, staff_id: str) -> dict:
    return {"Authorization": f"Bearer {stack['credentials'][staff_id]['token']}"}


def wait_for_status(url: str, headers: dict, status: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    body = {}
    while time.monotonic() < deadline:
        r = httpx.get(url, headers=headers, timeout=2)
        if r.status_code == 200:
            body = r.json()
            if body["status"] == status:
                return body
        time.sleep(0.05)
    raise AssertionError(f"status {status!r} not reached within {timeout}s; last: {body}")

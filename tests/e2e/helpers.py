"""Helpers of the end-to-end tests."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import httpx


def wait_alive(url: str, log_file: Path, timeout: float = 30) -> None:
    """Wait for a service process to answer /healthz; fail with the end of its log."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, log_file.read_text()[-2000:]
        time.sleep(0.2)


def token(stack, staff_id: str) -> dict:
    return {"Authorization": f"Bearer {stack['credentials'][staff_id]['token']}"}


def console_notifications(stack, staff: str, kind: str, tracking_no: str | None = None,
                          timeout: float = 15) -> list[dict]:
    """A staff member's console notifications of `kind` (for one item, if given), waiting until
    at least one arrives or the timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        items = httpx.get(f"{stack['urls']['notify']}/api/v1/inbox", headers=token(stack, staff)).json()["notifications"]
        found = [n for n in items if n["kind"] == kind and tracking_no in (None, n["tracking_no"])]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


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


def sql(dsn: str, query: str, *args):
    """Run one statement on its own connection and return its rows (tests look at and set up data)."""

    async def run():
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    return asyncio.run(run())

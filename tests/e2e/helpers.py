"""Helpers of the end-to-end tests."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer

from fengqiao.events import Topics


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


def submit(stack, station: str, content: str, *, address: str | None = None, **fields) -> dict:
    """A citizen's submission through intake's public API (`address` as its location); the receipt."""
    body = {"station": station, "content": content, **fields}
    if address:
        body["location"] = {"address": address}
    r = httpx.post(f"{stack['urls']['intake']}/api/v1/feedback", json=body, timeout=10)
    assert r.status_code == 202, r.text
    return r.json()


def console_notifications(
    stack, staff: str, kind: str, tracking_no: str | None = None, timeout: float = 15
) -> list[dict]:
    """A staff member's console notifications of `kind` (for one item, if given), waiting until
    at least one arrives or the timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        items = httpx.get(f"{stack['urls']['notify']}/api/v1/inbox", headers=token(stack, staff)).json()[
            "notifications"
        ]
        found = [n for n in items if n["kind"] == kind and tracking_no in (None, n["tracking_no"])]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def staff_get(url: str, headers: dict, timeout: float = 10) -> httpx.Response:
    """GET an item as staff of its station: an item is hidden from the station's staff until triage
    has said whom it names (fail closed, normally well under a second), so a 404 is retried."""
    deadline = time.monotonic() + timeout
    while True:
        r = httpx.get(url, headers=headers, timeout=2)
        if r.status_code != 404 or time.monotonic() > deadline:
            return r
        time.sleep(0.05)


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


async def read_public_stream(
    bootstrap: str,
    keep: Callable[[dict, list[dict]], bool],
    done: Callable[[list[dict]], bool] = lambda found: False,
    seconds: float = 10,
) -> list[dict]:
    """The events of the public stream, read from the beginning, that `keep(event, kept so far)`
    accepts, until `done(kept)` or `seconds` have passed."""
    consumer = AIOKafkaConsumer(
        Topics.CASE_EVENTS,
        bootstrap_servers=bootstrap,
        group_id=f"e2e-{uuid.uuid4()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    found: list[dict] = []
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not done(found):
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for record in records:
                    doc = json.loads(record.value)
                    if keep(doc, found):  # one at a time: `keep` may look at what was kept before
                        found.append(doc)
    finally:
        await consumer.stop()
    return found


def public_events(bootstrap: str, tracking_no: str, seconds: float = 5) -> list[dict]:
    """Every event about one item on the public stream (read from the beginning for `seconds`)."""
    return asyncio.run(read_public_stream(bootstrap, lambda d, _: d.get("subject") == tracking_no, seconds=seconds))


def console_sign_in(page, stack, staff_id: str, next_path: str = "/console/") -> None:
    """Sign a Playwright page in to the console as a demo account, through the sign-in form."""
    account = stack["credentials"][staff_id]
    base = stack["urls"]["mediation"]
    page.goto(f"{base}/login?next={next_path}")
    page.get_by_label("用户名").fill(account["username"])
    page.get_by_label("密码").fill(account["password"])
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{base}{next_path}*")

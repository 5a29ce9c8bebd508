"""The return-visit survey page, opened from a signed link, in headless Chromium."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from fengqiao import links
from fengqiao.events import Topics

pytestmark = pytest.mark.e2e
KEY = base64.b64decode(os.environ["FENGQIAO_LINK_KEY"])


def new_item(stack) -> str:
    r = httpx.post(
        f"{stack['urls']['intake']}/api/v1/feedback",
        json={"station": "KZ02", "content": f"新华街路面塌陷 {uuid.uuid4().hex[:6]}"},
    )
    return r.json()["tracking_no"]


async def survey_events(bootstrap: str, tracking_no: str) -> list[dict]:
    consumer = AIOKafkaConsumer(
        Topics.SURVEYS,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=f"t-{uuid.uuid4()}",
        enable_auto_commit=False,
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    found: list[dict] = []
    try:
        deadline = time.monotonic() + 10
        while not found and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                found += [d for d in (json.loads(r.value) for r in records) if d["subject"] == tracking_no]
    finally:
        await consumer.stop()
    return found


def test_a_dissatisfied_citizen_answers_once_and_the_answer_becomes_an_event(stack, infra, page):
    tracking_no = new_item(stack)
    token = links.sign(KEY, "survey", tracking_no, valid_for_s=3600)
    page.goto(f"{stack['urls']['intake']}/survey?t={token}")
    page.get_by_role("radio", name="不满意").check()
    page.get_by_role("button", name="提交评价").click()
    assert "不满意的原因" in page.locator("#errors").inner_text()  # a reason is asked for
    page.get_by_role("radio", name="不满意").check()
    page.get_by_label("意见或理由").fill("塌陷处只放了个锥桶，没有修")
    page.get_by_role("button", name="提交评价").click()
    assert "重新办理" in page.locator("#thanks").inner_text()

    page.goto(f"{stack['urls']['intake']}/survey?t={token}")  # the link again: the first answer stands
    page.get_by_role("radio", name="满意", exact=True).check()
    page.get_by_role("button", name="提交评价").click()
    assert "已收到您的评价" in page.locator("#thanks").inner_text()

    # Playwright's sync API owns this thread's event loop: read Kafka from another thread.
    with ThreadPoolExecutor(1) as pool:
        events = pool.submit(asyncio.run, survey_events(infra.bootstrap, tracking_no)).result()
    assert len(events) == 1 and events[0]["data"]["result"] == "dissatisfied"
    assert events[0]["data"]["reason"] == "塌陷处只放了个锥桶，没有修" and events[0]["stationid"] == "KZ02"


def test_expired_and_forged_links_explain_themselves(stack, page):
    tracking_no = new_item(stack)
    expired = links.sign(KEY, "survey", tracking_no, valid_for_s=-1)
    page.goto(f"{stack['urls']['intake']}/survey?t={expired}")
    assert "已过期" in page.locator("#errors").inner_text()
    forged = links.sign(os.urandom(32), "survey", tracking_no, valid_for_s=3600)
    page.goto(f"{stack['urls']['intake']}/survey?t={forged}")
    assert "无效" in page.locator("#errors").inner_text()
    r = httpx.post(f"{stack['urls']['intake']}/survey", data={"t": forged, "result": "satisfied"})
    assert r.status_code == 400

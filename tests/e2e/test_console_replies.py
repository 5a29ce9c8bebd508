"""Reusable replies (常用答复, issue 16): the station's leadership keeps them; officers read them;
another station neither sees nor changes them; a form without its token is refused."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.e2e.helpers import console_sign_in, submit, token, wait_for_status

pytestmark = pytest.mark.e2e


@contextmanager
def _client(stack, staff_id: str) -> Iterator[httpx.Client]:
    """A signed-in console session outside the browser (to send what a browser would not)."""
    with httpx.Client(base_url=stack["urls"]["mediation"], timeout=10) as client:
        csrf = _csrf(client.get("/login").text)
        account = stack["credentials"][staff_id]
        r = client.post(
            "/login", data={"username": account["username"], "password": account["password"], "csrf_token": csrf}
        )
        assert r.status_code == 303
        yield client


def _csrf(page_html: str) -> str:
    return page_html.split('name="csrf_token" value="')[1].split('"')[0]


def test_the_leader_keeps_the_stations_replies_and_officers_read_them(stack, desk):
    title = f"噪声扰民已处理{uuid.uuid4().hex[:4]}"
    console_sign_in(desk, stack, "KZ01-LD", "/console/replies")
    desk.get_by_label("标题").last.fill(title)
    desk.get_by_label("答复内容").last.fill("{称呼}您好，您反映的事项（{编号}）已处理，民警已上门劝导。")
    desk.get_by_role("button", name="保存").last.click()
    assert "已保存" in desk.get_by_role("status").inner_text()
    assert desk.get_by_role("heading", name=title).count() == 1
    # the same title twice is refused, naming the field, with what was typed kept
    desk.get_by_label("标题").last.fill(title)
    desk.get_by_label("答复内容").last.fill("另一种说法")
    desk.get_by_role("button", name="保存").last.click()
    assert "已有同名的常用答复" in desk.locator("#new-title-error").inner_text()
    assert desk.get_by_label("答复内容").last.input_value() == "另一种说法"

    with _client(stack, "KZ01-P1") as officer:
        page = officer.get("/console/replies")
        assert title in page.text and "新增常用答复" not in page.text
        r = officer.post("/console/replies", data={"csrf_token": _csrf(page.text), "title": "x", "body": "y"})
        assert r.status_code == 403
    with _client(stack, "KZ02-LD") as other:
        page = other.get("/console/replies")
        assert title not in page.text
        reply_id = desk.locator("input[name=id]").first.get_attribute("value")
        r = other.post(
            "/console/replies", data={"csrf_token": _csrf(page.text), "id": reply_id, "title": "改掉", "body": "改掉"}
        )
        assert r.status_code == 422 and "不存在" in r.text
        r = other.post(f"/console/replies/{reply_id}/delete", data={"csrf_token": _csrf(page.text)})
        assert r.status_code == 404
        r = other.post(f"/console/replies/{reply_id}/delete", data={})
        assert r.status_code == 403
    desk.reload()
    assert desk.get_by_role("heading", name=title).count() == 1


def test_the_officer_resolves_with_a_reply_and_the_citizen_is_addressed_by_name(stack, desk):
    officer, phone = "KZ01-P2", f"137{random.randrange(10**8):08d}"
    title = f"证件咨询已答复{uuid.uuid4().hex[:4]}"
    with _client(stack, "KZ01-LD") as leader:
        page = leader.get("/console/replies")
        body = "{称呼}您好，您咨询的事项（{编号}）已电话答复，材料清单已发送。"
        r = leader.post("/console/replies", data={"csrf_token": _csrf(page.text), "title": title, "body": body})
        assert r.status_code == 303
    no = submit(
        stack,
        "KZ01",
        f"咨询身份证补办要带什么材料（{uuid.uuid4().hex[:6]}）",
        reporter={"name": "张桂兰", "phone": phone},
    )["tracking_no"]
    url = f"{stack['urls']['mediation']}/api/v1/cases/{no}"
    case = wait_for_status(url, token(stack, "KZ01-LD"), "assigned", timeout=20)
    if case["assignee_id"] != officer:
        r = httpx.post(f"{url}/reassign", json={"assignee_id": officer}, headers=token(stack, "KZ01-LD"), timeout=10)
        assert r.status_code == 200, r.text
    console_sign_in(desk, stack, officer, f"/console/cases/{no}")
    desk.get_by_role("button", name="签收").click()
    desk.locator("summary", has_text="办结").click()
    desk.get_by_label("常用答复").select_option(label=title)
    summary = desk.locator("#resolve-summary")
    summary.filter(has_text=no).wait_for(timeout=10_000)  # htmx put the reply in, with the number
    assert "{称呼}您好" in summary.input_value()
    desk.locator("form[action$='/act/resolve'] button[type=submit]").click()
    assert wait_for_status(url, token(stack, officer), "resolved", timeout=10)["status"] == "resolved"
    (sms,) = stack["sms"].wait_for(1, where=lambda r: no in r.json()["text"] and "已电话答复" in r.json()["text"])
    assert "张桂兰您好" in sms.json()["text"] and "{称呼}" not in sms.json()["text"]

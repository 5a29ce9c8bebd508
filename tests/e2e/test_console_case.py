"""The case detail page of the officer's console (issue 16), in Chromium against the running
services: a case taken from assignment to closure through the pages only, a classification
corrected, the citizen's words revealed with a logged reason, a stale form refused with the change
shown, and another station's case answered 404."""

from __future__ import annotations

import base64
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.e2e.helpers import console_sign_in, staff_get, submit, token

pytestmark = pytest.mark.e2e


def new_case(stack, content: str, phone: str | None = None) -> tuple[str, str]:
    """A citizen's web submission to KZ01, once assigned: (tracking number, holder). Each its own
    reporter unless `phone` says (the same reporter's similar items are merged as repeats)."""
    phone = phone or f"139{random.randrange(10**8):08d}"
    no = submit(stack, "KZ01", content, reporter={"phone": phone})["tracking_no"]
    url = f"{stack['urls']['mediation']}/api/v1/cases/{no}"
    deadline = time.monotonic() + 20
    while True:
        r = httpx.get(url, headers=token(stack, "KZ01-LD"), timeout=5)
        if r.status_code == 200 and r.json()["assignee_id"]:
            holder = r.json()["assignee_id"]
            break
        assert time.monotonic() < deadline, f"{no} not assigned: {r.status_code} {r.text[:300]}"
        time.sleep(0.1)
    assert staff_get(url, token(stack, holder)).status_code == 200  # the holder may open it (access settled)
    return no, holder


def api_case(stack, no: str, who: str = "KZ01-LD") -> dict:
    return httpx.get(f"{stack['urls']['mediation']}/api/v1/cases/{no}", headers=token(stack, who), timeout=5).json()


def post_action(page, command: str) -> None:
    page.locator(f"form[action$='/act/{command}'] button[type=submit]").click()


def test_an_officer_takes_a_case_to_resolution_and_the_leader_visits_and_closes_it(stack, browser):
    no, holder = new_case(stack, "小区门口的路灯坏了一个多月，晚上很黑，老人出门不方便。联系电话 13911112222")
    base = stack["urls"]["mediation"]
    officer = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900}).new_page()
    console_sign_in(officer, stack, holder, f"/console/cases/{no}")
    assert officer.get_by_role("heading", name=f"事项 {no}").is_visible()
    assert officer.get_by_text("分诊分类及依据").is_visible()
    assert officer.get_by_text("网上留言").is_visible()  # the channel in words
    # only what the holder may do now: accept, return, escalate; never the leader's close or void
    assert officer.locator("form[action$='/act/accept']").count() == 1
    assert officer.locator("form[action$='/act/close'], form[action$='/act/void']").count() == 0

    post_action(officer, "accept")
    officer.wait_for_url(f"{base}/console/cases/{no}?done=accept")
    assert officer.get_by_text("已签收。").is_visible()
    officer.locator("summary", has_text="添加办理记录").click()
    officer.get_by_label("办理情况").fill("已联系物业，约定本周内更换路灯。")
    post_action(officer, "note")
    officer.wait_for_url(f"{base}/console/cases/{no}?done=note")
    assert officer.locator("#timeline-h + ol").get_by_text("已联系物业，约定本周内更换路灯。").is_visible()

    # a resolution without a summary is refused in words, next to the form, and nothing changes
    officer.locator("summary", has_text="办结").click()
    officer.locator("#resolve-summary").evaluate("el => el.removeAttribute('required')")
    post_action(officer, "resolve")
    assert "办理结果" in officer.locator("#resolve-error").inner_text()
    assert api_case(stack, no)["status"] == "in_progress"
    officer.get_by_label("办理结果（群众将看到）").fill("路灯已于今日更换，感谢您的反映。")
    post_action(officer, "resolve")
    officer.wait_for_url(f"{base}/console/cases/{no}?done=resolve")
    assert api_case(stack, no)["status"] == "resolved"
    assert officer.locator("form[action$='/act/visit']").count() == 0  # the handler never visits his own case
    officer.context.close()

    leader = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900}).new_page()
    console_sign_in(leader, stack, "KZ01-LD", f"/console/cases/{no}")
    leader.locator("summary", has_text="记录回访").click()
    leader.get_by_label("回访结果").select_option("satisfied")
    leader.get_by_label("回访情况").fill("电话联系群众，表示满意。")
    post_action(leader, "visit")
    leader.wait_for_url(f"{base}/console/cases/{no}?done=visit")
    printed = leader.context.request.get(f"{base}/console/cases/{no}/visit-record")
    assert printed.status == 200
    assert "电话联系群众，表示满意。" in printed.text() and "路灯已于今日更换" in printed.text()
    leader.locator("summary", has_text="结案").click()
    post_action(leader, "close")
    leader.wait_for_url(f"{base}/console/cases/{no}?done=close")
    assert api_case(stack, no)["status"] == "closed"
    form = leader.context.request.get(f"{base}/console/cases/{no}/print")
    assert form.status == 200 and "受理登记表" in form.text()
    assert "139****2222" in form.text() and "13911112222" not in form.text()  # masked on paper too
    leader.context.close()


def test_the_holder_corrects_the_classification_and_a_reveal_is_audited(stack, desk):
    earlier, _ = new_case(stack, "我的身份证丢了，请问在哪里补办？", phone="13700001111")
    no, holder = new_case(
        stack, "邻居家晚上装修噪音很大，请帮忙处理，我的电话 13812345678。<b>装修</b>", phone="13700001111"
    )
    base = stack["urls"]["mediation"]
    console_sign_in(desk, stack, holder, f"/console/cases/{no}")
    # the same reporter's earlier case (by the keyed hash of the phone), and triage's reasons in words
    assert desk.locator("#links-h ~ ul a", has_text=earlier).count() == 1
    assert desk.locator("#triage-h ~ ul code").count() >= 1
    # the citizen's words are masked until a reveal with a reason
    assert "13812345678" not in desk.content() and "138" in desk.locator(".words").first.inner_text()
    desk.locator("summary", has_text="更正分类").click()
    desk.get_by_label("业务类别").select_option("noise")
    desk.get_by_label("紧急程度").select_option("low")
    desk.get_by_label("更正理由").fill("实为噪声扰民，不涉及纠纷")
    desk.locator("form[action$='/classification'] button[type=submit]").click()
    desk.wait_for_url(f"{base}/console/cases/{no}?done=classification")
    case = api_case(stack, no)
    assert (case["category"], case["urgency"]) == ("noise", "low")
    assert desk.get_by_text("实为噪声扰民，不涉及纠纷").first.is_visible()  # in the timeline

    desk.locator("summary", has_text="显示完整内容").click()
    desk.get_by_label("查看理由（将记入审计日志）").fill("需电话联系群众核实")
    desk.locator("form[action$='/reveal'] button[type=submit]").click()
    desk.wait_for_load_state()
    assert "13812345678" in desk.locator(".words").first.inner_text()
    assert "<b>装修</b>" in desk.locator(".words").first.inner_text()  # the citizen's HTML is text, never markup
    assert desk.locator(".words b").count() == 0
    entries = httpx.get(
        f"{base}/api/v1/audit", params={"tracking_no": no}, headers=token(stack, "KZ01-LD"), timeout=5
    ).json()["entries"]
    reveals = [(e["staff_id"], e["detail"]) for e in entries if e["action"] == "reveal_words"]
    assert reveals == [(holder, "需电话联系群众核实")]
    desk.goto(f"{base}/console/cases/{no}")  # the full words were on that response only
    assert "13812345678" not in desk.content()
    # the printed form, masked unless revealed (with a reason) in the same request
    desk.goto(f"{base}/console/cases/{no}/print")
    assert "138****5678" in desk.content() and "13812345678" not in desk.content()
    desk.locator("summary", has_text="打印完整内容").click()
    desk.get_by_label("理由（将记入审计日志）").fill("群众来所领取书面答复")
    desk.locator("form[action$='/print'] button[type=submit]").click()
    desk.wait_for_load_state()
    assert "13812345678" in desk.content() and "本表含完整个人信息" in desk.content()


def test_a_stale_form_is_refused_with_the_change_shown_and_what_was_typed_kept(stack, browser):
    no, holder = new_case(stack, "小区健身器材损坏，存在安全隐患，希望尽快维修。")
    assert httpx.post(
        f"{stack['urls']['mediation']}/api/v1/cases/{no}/accept", json={}, headers=token(stack, holder)
    ).is_success
    base = stack["urls"]["mediation"]
    contexts = [browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900}) for _ in range(2)]
    try:
        leader, officer = (c.new_page() for c in contexts)
        console_sign_in(leader, stack, "KZ01-LD", f"/console/cases/{no}")
        console_sign_in(officer, stack, holder, f"/console/cases/{no}")
        assert officer.get_by_text("正在查看此事项").first.is_visible()  # the leader has it open
        officer.locator("summary", has_text="办结").click()
        officer.get_by_label("办理结果（群众将看到）").fill("器材已报修，物业三日内更换。")

        leader.locator("summary", has_text="添加办理记录").click()
        leader.get_by_label("办理情况").fill("所领导：请先核实器材产权单位。")
        post_action(leader, "note")
        leader.wait_for_url(f"{base}/console/cases/{no}?done=note")

        # the poll's fragment tells the officer before he submits
        version = officer.locator("#case-changes").get_attribute("hx-get")
        assert version and "since=" in version
        fragment = officer.context.request.get(f"{base}{version}")
        assert "已有变化" in fragment.text() and "请先核实器材产权单位" in fragment.text()

        with officer.expect_response(lambda r: r.request.method == "POST") as posted:
            post_action(officer, "resolve")
        assert posted.value.status == 409
        assert "此事项在您打开页面后已有变化" in officer.locator("#resolve-error").inner_text()
        assert officer.locator(".errors").get_by_text("所领导：请先核实器材产权单位。").is_visible()
        assert officer.get_by_label("办理结果（群众将看到）").input_value() == "器材已报修，物业三日内更换。"
        assert api_case(stack, no)["status"] == "in_progress"  # the note's, not a resolution
        # the refreshed form (new version) goes through
        post_action(officer, "resolve")
        officer.wait_for_url(f"{base}/console/cases/{no}?done=resolve")
        assert api_case(stack, no)["status"] == "resolved"
    finally:
        for c in contexts:
            c.close()


def test_another_stations_officer_gets_404_for_the_case_and_its_forms(stack, desk):
    no, _ = new_case(stack, "公园里有人深夜聚集喧哗，影响休息。")
    base = stack["urls"]["mediation"]
    console_sign_in(desk, stack, "KZ02-P1")
    for path in (f"/console/cases/{no}", f"/console/cases/{no}/print", f"/console/cases/{no}/changes?since=0"):
        r = desk.context.request.get(f"{base}{path}")
        assert r.status == 404, path
        assert no not in r.text(), path
    desk.goto(f"{base}/console/cases/{no}")
    assert desk.get_by_role("heading", name="未找到该事项").is_visible()
    csrf = desk.locator("header form input[name=csrf_token]").get_attribute("value")
    for action, data in (
        ("act/note", {"text": "越权备注", "version": "999999999"}),
        ("act/accept", {"version": "999999999"}),
        ("reveal", {"reason": "越权"}),
        ("classification", {"category": "other", "reason": "越权", "version": "999999999"}),
    ):
        r = desk.context.request.post(f"{base}/console/cases/{no}/{action}", form={"csrf_token": csrf or "", **data})
        assert r.status == 404, action
    assert api_case(stack, no)["status"] == "assigned"


def test_the_scanned_slip_opens_from_the_case_page_and_not_for_another_station(stack, desk):
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64 + uuid.uuid4().hex.encode()
    item = {
        "station": "KZ01",
        "kind": "suggestion_box",
        "content": f"意见箱纸条：建议派出所延长周末办证时间（{uuid.uuid4().hex[:6]}）",
        "opened_at": (datetime.now(UTC) - timedelta(minutes=random.randrange(1, 100_000))).isoformat(),
        "opened_by": "KZ01-IN",
        "scan_image_base64": base64.b64encode(png).decode(),
    }
    r = httpx.post(f"{stack['urls']['intake']}/api/v1/mailbox/items", json=item, headers=token(stack, "KZ01-P2"))
    assert r.status_code == 202, r.text
    no = r.json()["tracking_no"]
    base = stack["urls"]["mediation"]
    assert staff_get(f"{base}/api/v1/cases/{no}", token(stack, "KZ01-LD")).status_code == 200
    console_sign_in(desk, stack, "KZ01-LD", f"/console/cases/{no}")
    link = desk.get_by_role("link", name="意见单扫描件")
    assert link.get_attribute("href") == f"/console/cases/{no}/scan"
    # the browser's own session fetches it (the session's token may need a moment to reach intake)
    deadline = time.monotonic() + 15
    while (scan := desk.request.get(f"{base}/console/cases/{no}/scan")).status == 503 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert scan.status == 200 and scan.body() == png, scan.status
    assert scan.headers["content-type"] == "image/png" and "sandbox" in scan.headers["content-security-policy"]
    assert scan.headers["x-content-type-options"] == "nosniff"
    console_sign_in(desk, stack, "KZ02-LD", "/console/")
    assert desk.request.get(f"{base}/console/cases/{no}/scan").status == 404

"""The console's mediation page in Chromium (issue 16): a neighbour dispute submitted through intake,
accepted through the API, then mediated from the page alone to a saved agreement and its printed
page; personal data masked on the page and the print; another station's officer gets 404."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from fengqiao.constants import STATION_TZ
from tests.e2e.helpers import console_sign_in, staff_get, submit, token

pytestmark = pytest.mark.e2e


def local_input(at: datetime) -> str:
    """A `datetime-local` field's value at the station."""
    return at.astimezone(STATION_TZ).strftime("%Y-%m-%dT%H:%M")


def test_a_neighbour_dispute_is_mediated_to_a_printed_agreement_in_the_browser(stack, desk, browser):
    receipt = submit(
        stack,
        "KZ01",
        "幸福路12号楼上邻居每天深夜拖动家具、噪音很大，多次上门沟通无果，双方吵了起来，请派出所帮忙调解",
        reporter={"phone": "13912345671"},
    )
    no = receipt["tracking_no"]
    base = stack["urls"]["mediation"]
    r = staff_get(f"{base}/api/v1/cases/{no}", token(stack, "KZ01-LD"))
    assert r.status_code == 200, r.text
    assert r.json()["needs_mediation"], r.json()
    holder = r.json()["assignee_id"]
    accepted = httpx.post(f"{base}/api/v1/cases/{no}/accept", json={}, headers=token(stack, holder))
    assert accepted.status_code == 200, accepted.text

    page = desk
    console_sign_in(page, stack, holder, f"/console/cases/{no}/mediation")
    # No record yet: the page offers to open one (the station's mediator chosen by default).
    page.get_by_role("button", name="建立调解记录").click()
    page.wait_for_url(f"{base}/console/cases/{no}/mediation*")
    assert httpx.get(f"{base}/api/v1/cases/{no}", headers=token(stack, holder)).json()["status"] == "mediating"

    # Parties: personal data masked once saved.
    page.get_by_label("姓名").fill("周<i>桂</i>兰")
    page.get_by_label("联系电话").fill("13912345671")
    page.get_by_label("身份证号码").fill("410102196505051226")
    page.get_by_label("住址").fill("幸福路12号201")
    page.get_by_role("button", name="登记").click()
    page.locator("#parties summary").click()
    page.get_by_label("身份", exact=True).select_option("respondent")
    page.get_by_label("姓名").fill("吴建军")
    page.get_by_label("联系电话").fill("13912348765")
    page.get_by_role("button", name="登记").click()
    parties = page.inner_text("#parties table")
    assert "139****5671" in parties and "139****8765" in parties
    assert "13912345671" not in page.content() and "410102196505051226" not in page.content()
    assert page.locator("#parties table i").count() == 0  # a name is text, never markup
    # a link cannot reveal them; a POST with a reason does, once, and the reason is audited
    page.goto(f"{base}/console/cases/{no}/mediation?reveal=true")
    assert "13912345671" not in page.content()
    page.locator("summary", has_text="显示完整信息").click()
    page.get_by_label("查看理由").fill("核对当事人联系方式")
    page.get_by_role("button", name="显示完整信息").click()
    assert "13912345671" in page.content()
    audit = httpx.get(f"{base}/api/v1/audit", params={"tracking_no": no}, headers=token(stack, "KZ01-LD"), timeout=10)
    assert any(e["detail"] == "personal data: 核对当事人联系方式" for e in audit.json()["entries"])
    page.goto(f"{base}/console/cases/{no}/mediation")

    # A session and its minutes.
    page.locator("#sessions summary", has_text="安排调解").click()
    page.get_by_label("调解时间", exact=True).fill(local_input(datetime.now(UTC) - timedelta(hours=3)))
    page.get_by_label("调解地点").fill("幸福路社区调解室")
    page.get_by_role("button", name="安排").click()
    page.locator("#sessions summary", has_text="记录调解笔录").click()
    page.get_by_label("实际调解时间").fill(local_input(datetime.now(UTC) - timedelta(hours=2)))
    page.get_by_label("调解笔录").fill("双方陈述噪音情况，吴建军同意晚十点后不再拖动家具。")
    page.get_by_role("button", name="保存笔录").click()
    assert "晚十点后不再拖动家具" in page.inner_text("#sessions")

    # The agreement: a date in the future is refused naming the field, and nothing typed is lost.
    page.get_by_label("纠纷的主要事实").fill("吴建军深夜拖动家具，噪音影响楼下周桂兰休息。")
    page.get_by_label("争议事项").fill("夜间噪音。")
    page.get_by_label("协议内容（每行一条）").fill("吴建军晚十点后不拖动家具。\n吴建军在椅脚加装静音垫。")
    page.get_by_label("履行方式").fill("自觉履行")
    page.get_by_label("履行地点").fill("幸福路12号")
    page.get_by_label("履行期限").fill("即日起")
    page.get_by_label("签订时间").fill(local_input(datetime.now(UTC) + timedelta(days=2)))
    check_day = (datetime.now(STATION_TZ) + timedelta(days=10)).date().isoformat()
    page.get_by_label("第 1 次回访").fill(check_day)
    with page.expect_response(lambda resp: resp.request.method == "POST") as posted:
        page.get_by_role("button", name="保存调解协议").click()
    assert posted.value.status == 422
    assert "签订时间不能晚于现在" in page.inner_text("#agreement")
    assert page.get_by_label("纠纷的主要事实").input_value() == "吴建军深夜拖动家具，噪音影响楼下周桂兰休息。"
    assert page.get_by_label("第 1 次回访").input_value() == check_day
    page.get_by_label("签订时间").fill(local_input(datetime.now(UTC) - timedelta(hours=1)))
    page.get_by_role("button", name="保存调解协议").click()
    agreement = page.inner_text("#agreement")
    assert "吴**在椅脚加装静音垫。" in agreement and "吴建军" not in agreement  # names masked in the page
    followups = page.inner_text("#followups")
    assert "司法确认" in followups and "待办理" in followups

    # The performance check, recorded as done.
    page.locator("#followups table").get_by_label("已履行").check()
    page.locator("#followups table").get_by_role("button", name="记录").click()
    assert "已履行" in page.inner_text("#followups table")

    # The printable agreement, from the console with the session cookie: names and terms, no full phone.
    with page.expect_popup() as popup:
        page.get_by_role("link", name="打印调解协议书").click()
    printed = popup.value
    printed.wait_for_load_state()
    assert printed.title().startswith("人民调解协议书")
    text = printed.inner_text("body")
    for expected in ("周<i>桂</i>兰", "吴建军", "吴建军晚十点后不拖动家具。", "吴建军在椅脚加装静音垫。", "司法确认"):
        assert expected in text
    assert "13912345671" not in text and "13912348765" not in text and "410102196505051226" not in text
    assert "139****5671" in text

    # Another station's leader: 404 for the page, the print and a forged form.
    other = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    try:
        stranger = other.new_page()
        console_sign_in(stranger, stack, "KZ02-LD")
        for path in (f"/console/cases/{no}/mediation", f"/console/cases/{no}/mediation/agreement"):
            response = stranger.goto(f"{base}{path}")
            assert response is not None and response.status == 404, path
            assert "13912345671" not in stranger.content()
    finally:
        other.close()

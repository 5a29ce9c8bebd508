"""The console's rectification register in Chromium (issue 16): the leader creates a measure for a
complaint about the station's work, the owner records progress and completes it, the leader
verifies it; an officer may not create one, and another station's leader gets 404 for it."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from fengqiao.constants import STATION_TZ
from tests.e2e.helpers import console_sign_in, staff_get, submit, token

pytestmark = pytest.mark.e2e


def test_a_measure_is_created_progressed_completed_and_verified_in_the_browser(stack, desk, browser):
    receipt = submit(stack, "KZ01", "窗口民警办户籍时态度生硬，让我来回跑了三趟，希望派出所整改服务态度")
    no = receipt["tracking_no"]
    base = stack["urls"]["mediation"]
    assert staff_get(f"{base}/api/v1/cases/{no}", token(stack, "KZ01-LD")).status_code == 200

    leader = desk
    console_sign_in(leader, stack, "KZ01-LD", "/console/rectification")
    today = datetime.now(STATION_TZ).date()
    leader.get_by_label("整改事项").fill("户籍窗口服务态度整改")
    leader.get_by_label("整改措施", exact=True).fill("一次性告知清单上墙；窗口民警服务规范培训。")
    leader.get_by_label("责任人").select_option("KZ01-P1")
    # A deadline in the past is refused naming the field, with what was typed kept.
    leader.get_by_label("整改期限").fill((today - timedelta(days=1)).isoformat())
    leader.get_by_label("关联的反映事项编号").fill(no)
    with leader.expect_response(lambda r: r.request.method == "POST") as posted:
        leader.get_by_role("button", name="建立").click()
    assert posted.value.status == 422
    assert "整改期限须晚于现在" in leader.inner_text("#create")
    assert leader.get_by_label("整改事项").input_value() == "户籍窗口服务态度整改"
    leader.get_by_label("整改期限").fill((today + timedelta(days=14)).isoformat())
    leader.get_by_role("button", name="建立").click()
    leader.wait_for_url(re.compile(r".*/console/rectification/\d+$"))
    measure_url = leader.url
    assert leader.inner_text("#measure-status") == "整改中"
    assert no in leader.inner_text("#items")

    # The owner notes progress and completes it; the register lists it as waiting for verification.
    people = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    try:
        owner = people.new_page()
        console_sign_in(owner, stack, "KZ01-P1", "/console/rectification")
        assert "户籍窗口服务态度整改" in owner.inner_text("main")
        assert owner.locator("#create").count() == 0  # officers do not create measures
        owner.goto(measure_url)
        owner.get_by_label("进展情况（可写明证明材料）").fill("已制作一次性告知清单并上墙，照片存档。")
        owner.get_by_role("button", name="记录进展").click()
        assert "一次性告知清单并上墙" in owner.inner_text("#progress")
        owner.get_by_label("完成情况及证明材料").fill("培训签到表、告知清单照片各一份。")
        owner.get_by_role("button", name="提交完成").click()
        assert owner.inner_text("#measure-status") == "待验收"
        assert owner.locator("#verify").count() == 0  # the owner does not verify their own work
    finally:
        people.close()

    leader.goto(measure_url)
    leader.get_by_label("验收意见").fill("经回访群众，窗口服务已改进。")
    leader.get_by_role("button", name="验收通过").click()
    assert leader.inner_text("#measure-status") == "已验收"

    # Another station's leader guessing the id: 404, and nothing of the measure shown.
    stranger_context = browser.new_context(locale="zh-CN")
    try:
        stranger = stranger_context.new_page()
        console_sign_in(stranger, stack, "KZ02-LD", "/console/rectification")
        assert "户籍窗口服务态度整改" not in stranger.inner_text("main")
        response = stranger.goto(measure_url)
        assert response is not None and response.status == 404
        assert "户籍窗口" not in stranger.content()
    finally:
        stranger_context.close()

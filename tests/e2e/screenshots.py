"""`make screenshots`: the console's and the citizen's main pages, saved into docs/screenshots/ (or
$SCREENSHOTS_DIR) after a short realistic day at KZ01 on the test stack. Not a test: pytest only
runs it when named (`pytest tests/e2e/screenshots.py`), and CI does not. Chinese needs a CJK font
(Debian's fonts-noto-cjk, which the make target installs as root)."""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from fengqiao.constants import STATION_TZ
from tests.e2e.helpers import console_sign_in, submit, token, wait_for_status

OUT = Path(os.environ.get("SCREENSHOTS_DIR", Path(__file__).resolve().parents[2] / "docs" / "screenshots"))
LEADER, OFFICER = "KZ01-LD", "KZ01-P1"
ITEMS = [
    (
        "楼上邻居每天深夜拖动家具，噪音很大，协商多次无果，希望派出所出面调解。",
        {"name": "王芳", "phone": "13800138001"},
    ),
    ("东风路菜市场门口早上占道经营，车辆和行人无法通行。", {"phone": "13800138002"}),
    ("咨询一下居住证办理需要带哪些材料，周末能不能办。", {"name": "李明", "phone": "13800138003"}),
    ("小区楼道里堆满杂物，还有人给电动车在楼道充电，存在火灾隐患。", {"phone": "13800138004"}),
    ("建议在实验小学门口增设减速带和斑马线，上下学时段安排警力。", {}),
]


def _api(stack, method: str, path: str, who: str, **body) -> dict:
    r = httpx.request(
        method, f"{stack['urls']['mediation']}/api/v1{path}", json=body, headers=token(stack, who), timeout=15
    )
    assert r.status_code in (200, 201), r.text
    return r.json()


def _shoot(page, name: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)


@pytest.fixture
def wide(browser):
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 860}, device_scale_factor=1)
    yield context.new_page()
    context.close()


def test_screenshots(stack, wide, page):
    intake, mediation = stack["urls"]["intake"], stack["urls"]["mediation"]
    # the citizen's side, on a phone
    page.goto(f"{intake}/")
    _shoot(page, "citizen-form")
    numbers = []
    for content, reporter in ITEMS:
        numbers.append(submit(stack, "KZ01", f"{content}（{uuid.uuid4().hex[:4]}）", reporter=reporter)["tracking_no"])
    for no in numbers:
        case = wait_for_status(f"{mediation}/api/v1/cases/{no}", token(stack, LEADER), "assigned", timeout=30)
        if case["assignee_id"] != OFFICER:
            _api(stack, "POST", f"/cases/{no}/reassign", LEADER, assignee_id=OFFICER, reason="社区民警负责")
    dispute, *_ = numbers
    _api(stack, "POST", f"/cases/{numbers[2]}/accept", OFFICER)
    _api(stack, "POST", f"/cases/{dispute}/accept", OFFICER)

    # the leader's day: replies, the station queue, a rectification measure, reception
    console_sign_in(wide, stack, LEADER, "/console/replies")
    wide.get_by_label("标题").last.fill("噪声扰民已调处")
    wide.get_by_label("答复内容").last.fill("{称呼}您好，您反映的事项（{编号}）民警已上门调处，双方已达成一致。")
    wide.get_by_role("button", name="保存").last.click()
    _shoot(wide, "console-replies")
    wide.goto(f"{mediation}/console/station")
    _shoot(wide, "console-station")
    wide.goto(f"{mediation}/console/rectification")
    _shoot(wide, "console-rectification")
    wide.goto(f"{mediation}/console/reception")
    wide.get_by_label("群众姓名").fill("赵大爷")
    wide.get_by_label("联系电话").fill("13800138009")
    wide.get_by_label("诉求内容").fill("来所反映小区门口的路灯坏了一个多月，晚上老人出门不方便。")
    _shoot(wide, "console-reception")
    wide.get_by_role("button", name="登记并打印回执").click()
    _shoot(wide, "console-receipt")

    # the officer's day: the queue, a case, mediation, the inbox
    console_sign_in(wide, stack, OFFICER)
    _shoot(wide, "console-queue")
    wide.goto(f"{mediation}/console/cases/{numbers[2]}")
    _shoot(wide, "console-case")
    wide.goto(f"{mediation}/console/cases/{dispute}/mediation")
    wide.get_by_role("button", name="建立调解记录").click()
    for role, name, phone in (("applicant", "周桂兰", "13800138001"), ("respondent", "吴建军", "13800138765")):
        if role == "respondent":  # the party form folds away once there is a party
            wide.locator("#parties summary").first.click()
        wide.get_by_label("身份", exact=True).select_option(role)
        wide.get_by_label("姓名").fill(name)
        wide.get_by_label("联系电话").fill(phone)
        wide.get_by_role("button", name="登记").click()
    wide.locator("#sessions summary", has_text="安排调解").click()
    wide.get_by_label("调解时间", exact=True).fill(
        (datetime.now(STATION_TZ) + timedelta(days=1)).strftime("%Y-%m-%dT10:00")
    )
    wide.get_by_label("调解地点").fill("幸福路社区调解室")
    wide.get_by_role("button", name="安排").click()
    _shoot(wide, "console-mediation")
    wide.goto(f"{mediation}/console/inbox")
    _shoot(wide, "console-inbox")
    wide.goto(f"{mediation}/console/cases/{numbers[2]}/print")
    _shoot(wide, "console-print-form")

    # the officer on patrol: the queue on a phone
    console_sign_in(page, stack, OFFICER)
    _shoot(page, "console-queue-phone")
    page.goto(f"{intake}/track")
    _shoot(page, "citizen-track")
    print(f"screenshots in {OUT}")

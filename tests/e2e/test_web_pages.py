"""The citizen's web pages in a real headless Chromium (Debian's): fill the form, submit, read
the confirmation, follow the item on the tracking page."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.e2e


def test_a_citizen_submits_the_form_and_follows_the_item(stack, page):
    intake = stack["urls"]["intake"]
    page.goto(f"{intake}/")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    page.get_by_label("派出所").select_option(label="新村派出所")
    page.get_by_label("反映内容").fill("幸福小区 3 栋楼道堆满杂物，存在消防隐患，希望尽快清理。")
    page.get_by_label("联系电话").fill("138 0013 8000")
    page.get_by_role("button", name="提交").click()

    page.wait_for_selector("#tracking-no")
    assert page.get_by_role("heading", name="提交成功").is_visible()
    tracking_no = page.locator("#tracking-no").inner_text()
    access_code = page.locator("#access-code").inner_text()
    assert re.fullmatch(r"FQ[2-9A-Z]{8}", tracking_no) and re.fullmatch(r"\d{8}", access_code)
    assert access_code not in page.url

    page.reload()  # the browser re-posts the form: the same receipt, nothing new
    assert page.locator("#tracking-no").inner_text() == tracking_no

    for _ in range(50):  # the item moves through triage in the background
        page.goto(f"{intake}/track?no={tracking_no}")
        page.get_by_label("查询码").fill(access_code)
        page.get_by_role("button", name="查询").click()
        page.wait_for_selector("#status")
        if page.locator("#status").inner_text() == "已分派":
            break
        page.wait_for_timeout(200)
    assert page.locator("#status").inner_text() == "已分派"
    steps = page.locator("#timeline li").all_inner_texts()
    assert [s.split()[0] for s in steps] == ["已受理", "已分类", "已分派"]
    assert "安全隐患" in page.locator("#result").inner_text()


def test_the_form_explains_what_is_wrong_and_keeps_what_was_typed(stack, page):
    page.goto(f"{stack['urls']['intake']}/")
    page.get_by_label("反映内容").fill("")
    page.get_by_label("联系电话").fill("12345")
    page.get_by_label("电子邮箱").fill("不是邮箱")
    page.get_by_role("button", name="提交").click()
    errors = page.locator("#errors").inner_text()
    assert "请填写反映内容" in errors and "电话号码格式不正确" in errors and "请选择派出所" in errors
    assert page.get_by_label("联系电话").input_value() == "12345"


def test_the_station_is_found_from_the_address(stack, page):
    page.goto(f"{stack['urls']['intake']}/")
    page.get_by_label("反映内容").fill("路口红绿灯坏了，车辆乱行")
    page.get_by_label("事发地址").fill("矿山路与矿工新村交叉口")
    page.get_by_role("button", name="提交").click()
    page.wait_for_selector("#tracking-no")
    assert "矿区派出所" in page.locator("[role=status]").inner_text()


def test_html_typed_into_the_form_is_shown_as_text(stack, page):
    page.goto(f"{stack['urls']['intake']}/")
    page.get_by_label("派出所").select_option(label="矿区派出所")
    page.get_by_label("反映内容").fill("")
    page.get_by_label("标题").fill("<img src=x onerror=\"document.title='pwned'\">")
    page.get_by_role("button", name="提交").click()
    assert page.title() != "pwned"
    assert page.get_by_label("标题").input_value().startswith("<img")


def test_a_wrong_access_code_reveals_nothing(stack, page):
    page.goto(f"{stack['urls']['intake']}/track")
    page.get_by_label("编号").fill("FQ22222222")
    page.get_by_label("查询码").fill("00000000")
    page.get_by_role("button", name="查询").click()
    assert "未找到该编号，或查询码不正确" in page.locator("#errors").inner_text()

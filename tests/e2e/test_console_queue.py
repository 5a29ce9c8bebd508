"""The console's queues in Chromium (issue 16): the officer's own queue shows a new assignment
without a reload, with its clock in words; the station queue finds a case by tracking number, by
the caller's phone and by words, and the leadership assigns a selection in bulk; an expired
session goes to the sign-in page and back; a form without its CSRF token changes nothing."""

from __future__ import annotations

import random
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.helpers import console_sign_in, sql, submit, token, wait_for_status

pytestmark = pytest.mark.e2e
LEADER, OFFICER, COLLEAGUE = "KZ01-LD", "KZ01-P3", "KZ01-P4"


def _case(stack, content: str, assignee: str | None = None, **fields) -> str:
    """A citizen's item at KZ01, assigned by triage, then by the leader to `assignee`."""
    no = submit(stack, "KZ01", content, **fields)["tracking_no"]
    url = f"{stack['urls']['mediation']}/api/v1/cases/{no}"
    case = wait_for_status(url, token(stack, LEADER), "assigned", timeout=20)
    if assignee and case["assignee_id"] != assignee:
        r = httpx.post(f"{url}/reassign", json={"assignee_id": assignee}, headers=token(stack, LEADER), timeout=10)
        assert r.status_code == 200, r.text
    return no


def test_a_new_assignment_appears_in_the_open_queue_with_its_clock_in_words(stack, desk):
    # newest first: in a long suite the officer's queue holds older cases with nearer deadlines
    console_sign_in(desk, stack, OFFICER, "/console/?sort=-submitted_at")
    no = _case(stack, f"小区门口的路灯坏了一个多月，晚上很黑（{uuid.uuid4().hex[:6]}）", OFFICER)
    # no reload: the results refresh themselves (CONSOLE_REFRESH_S is 2 s in the test stack)
    row = desk.locator("tr", has=desk.get_by_role("link", name=no))
    row.wait_for(timeout=20_000)
    clock = row.locator("td[data-label=时限]")
    assert clock.inner_text().startswith(("剩余", "已超时"))
    assert clock.get_attribute("class") in ("fine", "soon", "late")
    # a filter is a plain GET: the page and its address say what is shown
    if desk.locator("details.more-filters[open]").count() == 0:  # open already when a filter is set
        desk.locator("summary", has_text="筛选条件").click()
    desk.get_by_label("紧急程度").select_option("urgent")
    desk.get_by_role("button", name="查询").click()
    desk.wait_for_url("**urgency=urgent**")
    assert desk.get_by_role("link", name=no).count() == 0
    assert "已设置" in desk.locator("summary", has_text="筛选条件").inner_text()  # the panel says so, open


def test_the_station_queue_finds_a_case_by_number_phone_and_words(stack, desk):
    marker = "".join(random.choice("甲乙丙丁戊己庚辛壬癸") for _ in range(6))
    phone = f"139{random.randrange(10**8):08d}"
    no = _case(stack, f"{marker}修车铺占用人行道，行人只能走机动车道", reporter={"name": "李四", "phone": phone})
    other = _case(stack, f"咨询护照办理时间（{uuid.uuid4().hex[:6]}）")
    console_sign_in(desk, stack, LEADER, "/console/station")
    search = desk.get_by_label("查找（编号、来电号码或反映内容中的字词）")

    for typed in (f"{no[:5].lower()}-{no[5:].lower()}", f"{phone[:3]} {phone[3:7]} {phone[7:]}", marker[1:5]):
        search.fill(typed)
        search.press("Enter")
        desk.wait_for_load_state()
        assert desk.get_by_role("link", name=no).count() == 1, typed
        assert desk.get_by_role("link", name=other).count() == 0, typed
    # one character is not enough to search words
    search.fill(marker[0])
    search.press("Enter")
    assert "请至少输入两个字" in desk.locator("#q-error").inner_text()


def test_another_stations_leader_finds_nothing_of_ours(stack, desk):
    no = _case(stack, f"建议小区增加垃圾分类指导员（{uuid.uuid4().hex[:6]}）")
    console_sign_in(desk, stack, "KZ02-LD", f"/console/station?q={no}")
    assert "没有找到符合条件的事项" in desk.content()
    r = desk.goto(f"{stack['urls']['mediation']}/console/cases/{no}")
    assert r is not None and r.status == 404


def test_the_leader_assigns_a_selection_in_bulk_and_reads_what_was_done(stack, desk):
    marker = "".join(random.choice("子丑寅卯辰巳午未申酉") for _ in range(6))
    first = _case(stack, f"楼道里堆放杂物，存在消防隐患。{marker}", OFFICER)
    second = _case(stack, f"建议在公园门口增加自行车停放点。{marker}", OFFICER)
    # the two found by their words, on one page however many cases the station has
    console_sign_in(desk, stack, LEADER, f"/console/station?q={quote(marker)}")
    for no in (first, second):
        desk.get_by_label(f"选择 {no}").check()
    desk.get_by_label("操作").select_option("reassign")
    desk.get_by_label("承办人（分派）").select_option(COLLEAGUE)
    desk.get_by_label("理由").fill("集中由社区民警办理")
    desk.get_by_role("button", name="执行").click()
    assert "已完成 2 件" in desk.get_by_role("status").inner_text(), desk.locator("table").inner_text()
    for no in (first, second):
        r = httpx.get(f"{stack['urls']['mediation']}/api/v1/cases/{no}", headers=token(stack, LEADER), timeout=10)
        assert r.json()["assignee_id"] == COLLEAGUE


def test_an_officer_may_not_act_in_bulk_and_a_form_without_its_token_changes_nothing(stack):
    no = _case(stack, f"咨询户口迁移需要什么材料（{uuid.uuid4().hex[:6]}）", OFFICER)
    base = stack["urls"]["mediation"]
    with httpx.Client(base_url=base, timeout=10) as client:
        login = client.get("/login")
        csrf = login.text.split('name="csrf_token" value="')[1].split('"')[0]
        account = stack["credentials"][LEADER]
        r = client.post(
            "/login", data={"username": account["username"], "password": account["password"], "csrf_token": csrf}
        )
        assert r.status_code == 303
        forged = {"case": no, "action": "reassign", "assignee_id": COLLEAGUE, "reason": "x"}
        r = client.post("/console/station/bulk", data=forged)
        assert r.status_code == 403 and "页面已过期" in r.text
    case = httpx.get(f"{base}/api/v1/cases/{no}", headers=token(stack, LEADER), timeout=10).json()
    assert case["assignee_id"] == OFFICER


def test_an_expired_session_goes_to_sign_in_and_back_to_the_page(stack, desk, infra):
    console_sign_in(desk, stack, OFFICER)
    # the session ends (idle timeout, sign-out elsewhere): its row is gone
    # (on a thread of its own: Playwright's sync API holds this thread's event loop)
    with ThreadPoolExecutor(1) as pool:
        pool.submit(sql, infra.dsn, "DELETE FROM mediation.sessions WHERE staff_id = $1", OFFICER).result()
    desk.goto(f"{stack['urls']['mediation']}/console/station?status=all")
    desk.wait_for_url("**/login?next=**")
    account = stack["credentials"][OFFICER]
    desk.get_by_label("用户名").fill(account["username"])
    desk.get_by_label("密码").fill(account["password"])
    desk.get_by_role("button", name="登录").click()
    desk.wait_for_url(re.compile(r".*/console/station\?status=all$"))

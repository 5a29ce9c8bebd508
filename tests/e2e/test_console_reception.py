"""接访登记 and 通知 in the console (issue 16), in Chromium against the real stack: a walk-in recorded
at the reception page, its printed receipt, the citizen tracking it on intake with the receipt's
numbers, its same-day target at mediation, the assignee's inbox; the session-bound token ending
with the session; and another station's officer filing for their own station only."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from fengqiao.constants import STATION_TZ
from mediation.signin import session_api_token, sweep_expired_sessions, use_token_key
from tests.e2e.helpers import console_notifications, console_sign_in, sql, staff_get, token

SUBMIT = "登记并打印回执"
AGE = "UPDATE mediation.sessions SET {} WHERE staff_id = $1"


def api_token(cookie: str) -> str:
    """The session's token as mediation derives it, with the test stack's key (tests/conftest.py)."""
    use_token_key(os.environ["FENGQIAO_PII_INDEX_KEY"].encode())
    return session_api_token(cookie)


def _record(desk, kind: str, content: str, **fields: str) -> tuple[str, str | None]:
    """Fill the reception form and submit it (again while the session's token is on its way to
    intake: the page keeps what was typed); the receipt's tracking number and access code."""
    desk.get_by_role("radio", name=kind).check()
    for label, value in fields.items():
        desk.get_by_label(label).fill(value)
    desk.get_by_label("诉求内容").fill(content)
    deadline = time.monotonic() + 20
    while True:
        desk.get_by_role("button", name=SUBMIT).click()
        desk.wait_for_load_state()
        if desk.locator("[data-tracking-no]").count() or time.monotonic() > deadline:
            break
        assert "正在同步" in desk.content(), desk.content()[:2000]
        assert desk.get_by_label("诉求内容").input_value() == content  # nothing typed was lost
        desk.wait_for_timeout(300)
    no = desk.locator("[data-tracking-no]").inner_text().strip()
    code = desk.locator("[data-access-code]")
    return no, (code.inner_text().strip() if code.count() else None)


def _case(stack, no: str, staff: str = "KZ01-LD", clock: str = "resolve", timeout: float = 20) -> dict:
    """The case at mediation once its clock runs (triage assigns it within seconds)."""
    url = f"{stack['urls']['mediation']}/api/v1/cases/{no}"
    deadline = time.monotonic() + timeout
    while True:
        r = staff_get(url, token(stack, staff))
        if r.status_code == 200 and any(c["clock"] == clock for c in r.json()["clocks"]):
            return r.json()
        assert time.monotonic() < deadline, r.text
        time.sleep(0.1)


def _sign_out(desk) -> None:
    desk.get_by_role("button", name="退出").click()
    desk.wait_for_url("**/login?signed_out=true")


def test_a_walk_in_gets_a_printed_receipt_a_same_day_target_and_an_inbox_notice(stack, desk):
    console_sign_in(desk, stack, "KZ01-P1", "/console/reception")
    words = "请问办理户口迁入需要准备哪些材料？<b>谢谢</b>"
    no, code = _record(desk, "来访", words, 群众姓名="王秀英", 联系电话="13912345678", 地址="矿区幸福路 3 号")
    assert no and code, desk.content()[:2000]
    receipt = desk.locator("section.receipt")
    assert "当日办结" in receipt.locator("[data-target]").inner_text()
    assert "请妥善保管" in receipt.inner_text()

    # The printed receipt: the numbers the citizen needs, without the console around them.
    desk.emulate_media(media="print")
    assert desk.locator("[data-tracking-no]").is_visible() and desk.locator("[data-access-code]").is_visible()
    assert not desk.locator("header.top").is_visible()
    assert not desk.get_by_role("button", name="打印回执").is_visible()
    desk.emulate_media(media="screen")

    # The citizen tracks it on intake with the two numbers on the receipt.
    desk.goto(f"{stack['urls']['intake']}/track")
    desk.locator("#tracking_no").fill(no)
    desk.locator("#access_code").fill(code)
    desk.get_by_role("button", name="查询").click()
    desk.wait_for_load_state()
    assert no in desk.content() and "查询码错误" not in desk.content()

    # At mediation: a walk-in (来访) with the same-day resolution target.
    case = _case(stack, no)
    assert case["channel"] == "walk_in"
    resolve = next(c for c in case["clocks"] if c["clock"] == "resolve")
    assert resolve["note"].startswith("来访事项：当日办结"), resolve
    started = datetime.fromisoformat(resolve["started_at"]).astimezone(STATION_TZ)
    due = datetime.fromisoformat(resolve["due_at"]).astimezone(STATION_TZ)
    assert due.date() == started.date() or due - started <= timedelta(hours=2), resolve

    # The assigned officer's inbox shows the assignment (the citizen's HTML as text), and marks it read.
    assignee = case["assignee_id"]
    assert console_notifications(stack, assignee, "assigned", no), "no assignment notice"
    desk.goto(f"{stack['urls']['mediation']}/console/")
    if assignee != "KZ01-P1":
        _sign_out(desk)
        console_sign_in(desk, stack, assignee, "/console/inbox")
    else:
        desk.goto(f"{stack['urls']['mediation']}/console/inbox")
    notice = desk.locator("li[data-notice]", has=desk.locator(f"a[href='/console/cases/{no}']"))
    notice.wait_for(timeout=15000)  # a new session's token may still be on its way: htmx retries the list
    desk.locator("#inbox-badge .badge").wait_for()  # the nav's unread count (htmx)
    assert notice.count() == 1 and "未读" in notice.inner_text(), desk.content()[:3000]
    notice.get_by_role("button", name="标为已读").click()
    desk.wait_for_url("**/console/inbox")
    notice = desk.locator("li[data-notice]", has=desk.locator(f"a[href='/console/cases/{no}']"))
    assert notice.get_by_role("button", name="标为已读").count() == 0
    assert "未读" not in notice.locator("h2").inner_text()


def _wait_status(url: str, headers: dict, statuses: set[int], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while (code := httpx.get(url, headers=headers, timeout=5).status_code) not in statuses:
        assert time.monotonic() < deadline, f"{url}: {code}, not {statuses}"
        time.sleep(0.1)


def test_signing_out_revokes_the_session_token(stack, desk):
    console_sign_in(desk, stack, "KZ01-P2", "/console/")
    (cookie,) = [c["value"] for c in desk.context.cookies() if c["name"] == "fq_session"]
    bearer = {"Authorization": f"Bearer {api_token(cookie)}"}
    inbox = f"{stack['urls']['notify']}/api/v1/inbox"
    disclosures = f"{stack['urls']['intake']}/api/v1/disclosures"  # leadership only: 403 for an officer
    _wait_status(inbox, bearer, {200})  # the token reached notify and intake as the person
    _wait_status(disclosures, bearer, {403})
    # the cookie alone does not give the token: it is keyed with the server's secret too
    unkeyed = hmac.new(cookie.encode(), b"console-api", hashlib.sha256).digest()
    guess = "fq_" + base64.urlsafe_b64encode(unkeyed).rstrip(b"=").decode()
    assert httpx.get(inbox, headers={"Authorization": f"Bearer {guess}"}, timeout=5).status_code == 401
    _sign_out(desk)
    _wait_status(inbox, bearer, {401})
    _wait_status(disclosures, bearer, {401})


def test_a_timed_out_session_takes_its_token_with_it(stack, infra, desk):
    """Seen again after the idle timeout: the console sends the person to sign in, and the token is
    revoked; one nobody comes back to is swept (its SQL run here directly, as the sweep runs it)."""
    console_sign_in(desk, stack, "KZ01-P3", "/console/")
    (cookie,) = [c["value"] for c in desk.context.cookies() if c["name"] == "fq_session"]
    bearer = {"Authorization": f"Bearer {api_token(cookie)}"}
    inbox = f"{stack['urls']['notify']}/api/v1/inbox"
    _wait_status(inbox, bearer, {200})
    _off_loop(sql, infra.dsn, AGE.format("last_seen_at = now() - interval '31 minutes'"), "KZ01-P3")
    desk.goto(f"{stack['urls']['mediation']}/console/inbox")
    assert "/login" in desk.url
    _wait_status(inbox, bearer, {401})

    console_sign_in(desk, stack, "KZ01-P4", "/console/")
    (cookie,) = [c["value"] for c in desk.context.cookies() if c["name"] == "fq_session"]
    bearer = {"Authorization": f"Bearer {api_token(cookie)}"}
    _wait_status(inbox, bearer, {200})
    _off_loop(sql, infra.dsn, AGE.format("created_at = now() - interval '13 hours'"), "KZ01-P4")
    _off_loop(asyncio.run, _sweep(infra.dsn))
    _wait_status(inbox, bearer, {401})


def _off_loop(fn, *args):
    """Run `fn` on another thread: Playwright's sync API holds an event loop on this one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result()


async def _sweep(dsn: str) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1, server_settings={"search_path": "mediation"})
    try:
        assert await sweep_expired_sessions(pool, datetime.now(UTC)) >= 1
    finally:
        await pool.close()


def test_another_stations_officer_files_for_their_own_station_only(stack, desk):
    console_sign_in(desk, stack, "KZ02-P1", "/console/reception")
    # a forged field naming another station changes nothing: the station is the session's
    desk.evaluate(
        "() => { const i = document.createElement('input'); i.type = 'hidden'; i.name = 'station';"
        " i.value = 'KZ01'; document.querySelector('form.card').appendChild(i); }"
    )
    no, code = _record(desk, "热线电话", "来电反映新村菜市场门口占道经营，早上堵车。", 联系电话="13700001111")
    assert no and code
    assert "新村派出所" in desk.locator("section.receipt h1").inner_text()
    url = f"{stack['urls']['intake']}/api/v1/feedback/{no}"
    assert staff_get(url, token(stack, "KZ02-LD")).json()["station"] == "KZ02"
    assert httpx.get(url, headers=token(stack, "KZ01-LD"), timeout=5).status_code == 404

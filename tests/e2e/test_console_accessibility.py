"""The console's pages checked by axe-core (from npm, the lockfile's version) in Chromium (issue 16):
no serious or critical violations of WCAG 2.1 A/AA; every page reachable at 200 % zoom (a
1280-pixel screen at 200 % is a 640-pixel-wide page) without scrolling sideways."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

from tests.e2e.helpers import console_sign_in, submit, token, wait_for_status

pytestmark = pytest.mark.e2e
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
LEADER = "KZ01-LD"


@pytest.fixture
def audited(browser):
    """A browser window at 200 % zoom; CSP is bypassed only so axe's script can be injected."""
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: make install runs npm ci")
    context = browser.new_context(
        locale="zh-CN", viewport={"width": 640, "height": 900}, device_scale_factor=2, bypass_csp=True
    )
    page = context.new_page()
    yield page
    context.close()


def _violations(page) -> list[dict]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async () => JSON.stringify(await axe.run(document, "
        "{runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}}))"
    )
    found = json.loads(result)["violations"]
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


def test_the_console_pages_pass_axe_and_reflow_at_200_percent(stack, audited):
    no = submit(stack, "KZ01", f"小区门口有人占道摆摊，影响通行（{uuid.uuid4().hex[:6]}）")["tracking_no"]
    wait_for_status(f"{stack['urls']['mediation']}/api/v1/cases/{no}", token(stack, LEADER), "assigned", timeout=20)
    base = stack["urls"]["mediation"]
    audited.goto(f"{base}/login")
    problems = {"/login": _violations(audited)}
    console_sign_in(audited, stack, LEADER)
    pages = [
        "/console/",
        "/console/station",
        f"/console/station?q={no}",
        f"/console/cases/{no}",
        "/console/replies",
        "/console/rectification",
        "/console/reception",
        "/console/inbox",
        "/console/password",
    ]
    for path in pages:
        response = audited.goto(f"{base}{path}")
        assert response is not None and response.status == 200, path
        problems[path] = _violations(audited)
        wide = audited.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert wide <= 1, f"{path} scrolls sideways by {wide}px at 200 %"
    assert not any(problems.values()), json.dumps(problems, ensure_ascii=False, indent=1)


def test_the_queue_is_worked_from_the_keyboard(stack, desk):
    no = submit(stack, "KZ01", f"建议社区增设老年人办证绿色通道（{uuid.uuid4().hex[:6]}）")["tracking_no"]
    wait_for_status(f"{stack['urls']['mediation']}/api/v1/cases/{no}", token(stack, LEADER), "assigned", timeout=20)
    console_sign_in(desk, stack, LEADER, f"/console/station?q={no}")
    desk.keyboard.press("/")
    assert desk.evaluate("document.activeElement.id") == "q"
    desk.keyboard.press("Escape")
    desk.locator("body").click()
    desk.keyboard.press("j")
    assert desk.evaluate("document.activeElement.textContent.trim()") == no
    desk.keyboard.press("Enter")
    desk.wait_for_url(f"**/console/cases/{no}")
    # the shortcuts are written down on the page
    desk.go_back()
    desk.locator("body").click()
    desk.keyboard.press("?")
    assert desk.locator("#shortcuts").is_visible()
    assert httpx.get(f"{stack['urls']['mediation']}/console/static/htmx.min.js", timeout=10).status_code == 200

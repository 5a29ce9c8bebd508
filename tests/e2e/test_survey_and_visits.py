"""Return visits that hold up (issue 13, items 2 and 7): a case resolved again after a reopening is
asked again and the citizen's new answer counts (one answer per resolution); the staff return visit
is not recorded by whoever handled the case, and the citizen's timeline says the station called
rather than thanking them for a survey they were not sent."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from tests.e2e.helpers import submit, token, wait_for_status

pytestmark = pytest.mark.e2e
LEADER = "KZ01-LD"
INSTRUCTOR = "KZ01-IN"


def case_url(stack, no: str) -> str:
    return f"{stack['urls']['mediation']}/api/v1/cases/{no}"


def act(stack, no: str, who: str, command: str, **body) -> httpx.Response:
    return httpx.post(f"{case_url(stack, no)}/{command}", json=body, headers=token(stack, who))


def citizen_view(stack, receipt: dict) -> dict:
    r = httpx.get(
        f"{stack['urls']['intake']}/api/v1/feedback/{receipt['tracking_no']}",
        headers={"X-Access-Code": receipt["access_code"]},
    )
    assert r.status_code == 200, r.text
    return r.json()


def wait_citizen_note(stack, receipt: dict, status: str, timeout: float = 15) -> str:
    """The note of the citizen's latest timeline step once it reaches `status`."""
    deadline = time.monotonic() + timeout
    while True:
        timeline = citizen_view(stack, receipt)["timeline"]
        if timeline and timeline[-1]["status"] == status:
            return timeline[-1]["note"]
        assert time.monotonic() < deadline, f"citizen's timeline ends with {timeline[-1:]}, not {status}"
        time.sleep(0.1)


def survey_tokens(stack, no: str, count: int) -> list[str]:
    """The survey links' tokens in the result e-mails the citizen received, oldest first."""

    def is_result(m) -> bool:
        return no in m[1].get_body(("plain",)).get_content() and "/survey?t=" in m[1].get_body(("plain",)).get_content()

    mails = stack["mail"].wait_for(count, where=is_result)
    assert len(mails) == count, f"{len(mails)} result e-mails, not {count}"
    texts = [m[1].get_body(("plain",)).get_content() for m in mails]
    return [next(w for w in t.split() if "/survey?t=" in w).split("t=", 1)[1] for t in texts]


def answer(stack, survey_token: str, result: str, reason: str = "") -> str:
    r = httpx.post(f"{stack['urls']['intake']}/survey", data={"t": survey_token, "result": result, "reason": reason})
    assert r.status_code == 200, r.text
    return r.text


def new_case(stack, content: str, **reporter) -> tuple[dict, str]:
    receipt = submit(stack, "KZ01", f"{content}（{uuid.uuid4().hex[:6]}）", reporter=reporter)
    c = wait_for_status(case_url(stack, receipt["tracking_no"]), token(stack, LEADER), "assigned", timeout=15)
    return receipt, c["assignee_id"]


def test_a_case_resolved_again_is_surveyed_again_and_the_new_answer_visits_it(stack):
    receipt, officer = new_case(stack, "建设路菜市场门口早上占道经营，堵得车过不去", email="survey7@example.com")
    no = receipt["tracking_no"]
    assert act(stack, no, officer, "accept").status_code == 200
    assert act(stack, no, officer, "resolve", summary="已劝离占道摊贩。").status_code == 200
    (first,) = survey_tokens(stack, no, 1)
    assert "重新办理" in answer(stack, first, "dissatisfied", "第二天又摆出来了")
    wait_for_status(case_url(stack, no), token(stack, LEADER), "reopened", timeout=15)

    assert act(stack, no, LEADER, "reassign", assignee_id=officer).status_code == 200
    assert act(stack, no, officer, "accept").status_code == 200
    assert act(stack, no, officer, "resolve", summary="已与城管联合，每日早间巡查。").status_code == 200
    _, second = survey_tokens(stack, no, 2)  # a new link, for the new resolution
    assert second != first

    assert "感谢您的评价" in answer(stack, second, "satisfied")
    c = wait_for_status(case_url(stack, no), token(stack, LEADER), "visited", timeout=15)
    assert c["visit_result"] == "satisfied"
    visit_clocks = [k for k in c["clocks"] if k["clock"] == "visit"]
    assert visit_clocks and all(k["done_at"] for k in visit_clocks)  # its visit clock stopped
    assert "感谢您的评价" in wait_citizen_note(stack, receipt, "visited")  # the survey path keeps its thanks

    # The same resolution answered again, by either link: refused politely, nothing changes.
    assert "已收到您的评价" in answer(stack, second, "dissatisfied", "改主意了")
    assert "已收到您的评价" in answer(stack, first, "satisfied")
    time.sleep(2)  # time enough for any answer to reach mediation
    c = httpx.get(case_url(stack, no), headers=token(stack, LEADER)).json()
    assert (c["status"], c["visit_result"]) == ("visited", "satisfied")


def test_the_handler_cannot_visit_their_own_case_and_the_citizen_is_told_the_station_called(stack):
    receipt, officer = new_case(stack, "建设路小区门口路灯坏了一周", phone="+8613900139002")
    no = receipt["tracking_no"]
    assert act(stack, no, officer, "accept").status_code == 200
    # The leader resolves it on the officer's behalf: the officer still holds (and handled) it.
    assert act(stack, no, LEADER, "resolve", summary="已报修，路灯已修复。").status_code == 200
    for handler in (officer, LEADER):
        r = act(stack, no, handler, "visit", result="satisfied")
        assert r.status_code == 409 and r.json()["detail"]["error"] == "same_handler", r.text
    assert httpx.get(case_url(stack, no), headers=token(stack, LEADER)).json()["status"] == "resolved"

    r = act(stack, no, INSTRUCTOR, "visit", result="satisfied", method="phone")
    assert r.status_code == 200 and r.json()["status"] == "visited", r.text
    note = wait_citizen_note(stack, receipt, "visited")
    assert "电话回访" in note and "派出所" in note
    assert not any("感谢您的评价" in t["note"] for t in citizen_view(stack, receipt)["timeline"])

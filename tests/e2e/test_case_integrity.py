"""Case handling that holds up over a station's day (issue 13): a reopened case goes back to its own
officer with the citizen's reason in front of them, and the case list shows the current
assignment. (A miss surviving every command is proven with the controllable clock in
tests/integration/test_clocks.py.)"""

from __future__ import annotations

import base64
import os
import uuid
from datetime import datetime

import httpx
import pytest

from fengqiao import links
from tests.e2e.helpers import submit, token, wait_for_status

pytestmark = pytest.mark.e2e
LEADER = "KZ01-LD"


def case_url(stack, no: str) -> str:
    return f"{stack['urls']['mediation']}/api/v1/cases/{no}"


def act(stack, no: str, who: str, command: str, **body) -> httpx.Response:
    return httpx.post(f"{case_url(stack, no)}/{command}", json=body, headers=token(stack, who))


def new_case(stack, content: str) -> tuple[str, str]:
    """A citizen's item at KZ01, once triage has assigned it: its number and its officer."""
    no = submit(stack, "KZ01", f"{content}（{uuid.uuid4().hex[:6]}）")["tracking_no"]
    c = wait_for_status(case_url(stack, no), token(stack, LEADER), "assigned", timeout=15)
    return no, c["assignee_id"]


def test_a_reopened_case_goes_back_to_its_own_officer_with_the_citizens_reason(stack):
    no, officer = new_case(stack, "东风路公交站旁的垃圾桶一直没人清理，夏天味道很大")
    assert act(stack, no, officer, "accept").status_code == 200
    assert act(stack, no, officer, "resolve", summary="已联系环卫清理。").status_code == 200
    signed = links.sign(base64.b64decode(os.environ["FENGQIAO_LINK_KEY"]), "survey", no, valid_for_s=3600)
    reason = "只清了一次，第二天又满了"
    r = httpx.post(f"{stack['urls']['intake']}/survey", data={"t": signed, "result": "dissatisfied", "reason": reason})
    assert r.status_code == 200
    wait_for_status(case_url(stack, no), token(stack, LEADER), "reopened", timeout=15)
    # Until the leader decides, the officer cannot work on it.
    assert act(stack, no, officer, "accept").status_code == 409

    r = act(stack, no, LEADER, "reassign", assignee_id=officer)  # send it back to the same officer
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["assignee_id"]) == ("assigned", officer)
    detail = httpx.get(case_url(stack, no), headers=token(stack, officer)).json()
    assert reason in detail["reopen_reason"]  # what the citizen said, in front of the officer
    assert act(stack, no, officer, "accept").status_code == 200
    assert act(stack, no, officer, "note", text="已与环卫约定每日清运两次。").status_code == 200
    assert act(stack, no, officer, "resolve", summary="已安排每日清运两次。").json()["status"] == "resolved"
    # A case being handled is not "sent back" to the one handling it.
    other, holder = new_case(stack, "东风路路灯闪烁，晚上忽明忽暗")
    assert act(stack, other, LEADER, "reassign", assignee_id=holder).status_code == 409


def test_the_case_list_shows_the_current_assignment_and_its_acceptance_deadline(stack):
    no, officer = new_case(stack, "东风路小区门口的减速带被压坏了，铁钉露在外面")

    def listed() -> dict:
        r = httpx.get(f"{stack['urls']['mediation']}/api/v1/cases?sort=-submitted_at", headers=token(stack, LEADER))
        return next(c for c in r.json()["cases"] if c["tracking_no"] == no)

    first = listed()
    second_officer = next(s for s in ("KZ01-P1", "KZ01-P2", "KZ01-P3") if s != officer)
    assert act(stack, no, LEADER, "reassign", assignee_id=second_officer).status_code == 200
    detail = httpx.get(case_url(stack, no), headers=token(stack, LEADER)).json()
    (accept,) = [k for k in detail["clocks"] if k["clock"] == "accept"]
    now = listed()
    assert now["assignee_id"] == second_officer
    assert datetime.fromisoformat(now["assigned_at"]) > datetime.fromisoformat(first["assigned_at"])
    assert datetime.fromisoformat(now["assigned_at"]) == datetime.fromisoformat(accept["started_at"])
    assert datetime.fromisoformat(now["accept_due_at"]) == datetime.fromisoformat(accept["due_at"])

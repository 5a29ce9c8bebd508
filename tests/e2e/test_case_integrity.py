"""Case handling that holds up over a station's day (issue 13): the case list shows the current
assignment. (A miss surviving every command is proven with the controllable clock in
tests/integration/test_clocks.py.)"""

from __future__ import annotations

import uuid
from datetime import datetime

import httpx
import pytest

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


def test_the_case_list_shows_the_current_assignment_and_its_acceptance_deadline(stack):
    no, officer = new_case(stack, "东风路小区门口的减速带被压坏了，铁钉露在外面")

    def listed() -> dict:
        r = httpx.get(f"{stack['urls']['mediation']}/api/v1/cases?limit=500", headers=token(stack, LEADER))
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

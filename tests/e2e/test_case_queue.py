"""The officer's own queue (issue 13): `GET :8081/api/v1/cases` filtered by assignee, status, type,
category, urgency, overdue and submission date, paged with a total, soonest deadline first; another
station's leader sees none of it."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import httpx
import pytest

from fengqiao.constants import STATION_TZ
from tests.e2e.helpers import sql, submit, token, wait_for_status

pytestmark = pytest.mark.e2e
LEADER = "KZ02-LD"
OFFICER = "KZ02-P1"
COLLEAGUE = "KZ02-P2"


def cases_url(stack) -> str:
    return f"{stack['urls']['mediation']}/api/v1/cases"


def queue(stack, who: str, **params) -> httpx.Response:
    return httpx.get(cases_url(stack), params=params, headers=token(stack, who), timeout=10)


def numbers(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [c["tracking_no"] for c in r.json()["cases"]]


def new_case(stack, content: str, assignee: str) -> dict:
    """A citizen's item at KZ02, triaged, then (re)assigned by the leader to `assignee`."""
    no = submit(stack, "KZ02", f"{content}（{uuid.uuid4().hex[:6]}）")["tracking_no"]
    url = f"{cases_url(stack)}/{no}"
    c = wait_for_status(url, token(stack, LEADER), "assigned", timeout=15)
    if c["assignee_id"] != assignee:
        r = httpx.post(f"{url}/reassign", json={"assignee_id": assignee}, headers=token(stack, LEADER))
        assert r.status_code == 200, r.text
    return httpx.get(url, headers=token(stack, LEADER)).json()


@pytest.fixture(scope="module")
def mine(stack, infra) -> dict[str, dict]:
    """Three cases of OFFICER (one accepted, one overdue) and one of a colleague."""
    made = {
        "overdue": new_case(stack, "东风路菜市场门口早上占道经营，车辆无法通行", OFFICER),
        "accepted": new_case(stack, "咨询一下居住证办理需要带哪些材料", OFFICER),
        "waiting": new_case(stack, "小区楼下烧烤店夜里噪音很大，影响休息", COLLEAGUE),
    }
    # Sent to the colleague first, then reassigned to the officer: it is the officer's now.
    made["moved"] = new_case(stack, "建议在学校门口增设减速带和斑马线", COLLEAGUE)
    no = made["moved"]["tracking_no"]
    r = httpx.post(f"{cases_url(stack)}/{no}/reassign", json={"assignee_id": OFFICER}, headers=token(stack, LEADER))
    assert r.status_code == 200, r.text
    accepted = made["accepted"]["tracking_no"]
    r = httpx.post(f"{cases_url(stack)}/{accepted}/accept", json={}, headers=token(stack, OFFICER))
    assert r.status_code == 200, r.text
    sql(
        infra.dsn,
        "UPDATE mediation.case_clocks SET due_at = now() - interval '1 minute' "
        "WHERE tracking_no = $1 AND clock = 'accept'",
        made["overdue"]["tracking_no"],
    )
    return made


def test_the_officers_own_queue_holds_his_cases_soonest_deadline_first(stack, mine):
    ours = {c["tracking_no"] for c in mine.values()}
    r = queue(stack, OFFICER, assignee="me", limit=200)
    listed = numbers(r)
    assert ours & set(listed) == {mine[k]["tracking_no"] for k in ("overdue", "accepted", "moved")}
    assert all(c["assignee_id"] == OFFICER for c in r.json()["cases"])
    # The same queue by staff id, as the leader reads it.
    assert numbers(queue(stack, LEADER, assignee=OFFICER, limit=200)) == listed
    assert mine["waiting"]["tracking_no"] in numbers(queue(stack, LEADER, assignee=COLLEAGUE, limit=200))

    # Soonest acceptance/resolution deadline first, cases without a running one last.
    dues = [c["due_at"] for c in r.json()["cases"]]
    running = [datetime.fromisoformat(d) for d in dues if d is not None]
    assert running == sorted(running) and dues == [*dues[: len(running)], *[None] * (len(dues) - len(running))]
    overdue, accepted = mine["overdue"]["tracking_no"], mine["accepted"]["tracking_no"]
    assert listed.index(overdue) < listed.index(accepted)  # past due before days ahead
    first = r.json()["cases"][listed.index(overdue)]
    assert first["overdue"] is True and datetime.fromisoformat(first["due_at"]) < datetime.now(STATION_TZ)
    # The sort is a parameter.
    newest = queue(stack, OFFICER, assignee="me", sort="-submitted_at", limit=200).json()["cases"]
    submitted = [datetime.fromisoformat(c["submitted_at"]) for c in newest]
    assert submitted == sorted(submitted, reverse=True)


def test_each_filter_narrows_the_queue(stack, mine):
    overdue, accepted, moved = (mine[k]["tracking_no"] for k in ("overdue", "accepted", "moved"))

    def of(**params) -> set[str]:
        return set(numbers(queue(stack, OFFICER, assignee="me", limit=200, **params)))

    assert accepted in of(status="accepted") and overdue not in of(status="accepted")
    assert {overdue, accepted, moved} <= of(status=["assigned", "accepted"])
    assert of(status="closed").isdisjoint({overdue, accepted, moved})

    assert overdue in of(overdue="true") and accepted not in of(overdue="true") and moved not in of(overdue="true")
    assert accepted in of(overdue="false") and overdue not in of(overdue="false")

    for field in ("type", "category", "urgency"):
        for case in (mine["overdue"], mine["accepted"]):
            r = queue(stack, OFFICER, assignee="me", limit=200, **{field: case[field]})
            assert case["tracking_no"] in numbers(r), field
            assert all(c[field] == case[field] for c in r.json()["cases"]), field

    today = datetime.now(STATION_TZ).date()
    assert {overdue, accepted, moved} <= of(since=today.isoformat(), until=today.isoformat())
    assert of(until=(today - timedelta(days=1)).isoformat()).isdisjoint({overdue, accepted, moved})
    later = queue(stack, LEADER, since=(today + timedelta(days=1)).isoformat())
    assert later.json()["total"] == 0 and later.json()["cases"] == []


def test_pages_add_up_to_the_total(stack, mine):
    whole = queue(stack, LEADER, sort="-submitted_at", limit=200).json()
    assert whole["total"] >= len(mine) and whole["limit"] == 200 and whole["offset"] == 0
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None and offset < 200:
        page = queue(stack, LEADER, sort="-submitted_at", limit=2, offset=offset).json()
        assert page["total"] == whole["total"] and len(page["cases"]) <= 2
        seen += [c["tracking_no"] for c in page["cases"]]
        offset = page["next_offset"]
    assert seen == [c["tracking_no"] for c in whole["cases"]][: len(seen)]
    assert len(seen) == min(whole["total"], 200)
    assert {c["tracking_no"] for c in mine.values()} <= set(seen)
    # Without `limit`: the first 50.
    default = queue(stack, LEADER).json()
    assert default["limit"] == 50 and len(default["cases"]) == min(50, default["total"])
    assert default["total"] == whole["total"]
    # A filtered total counts the filtered cases, not the station's.
    two = queue(stack, OFFICER, assignee="me", limit=1).json()
    assert len(two["cases"]) == 1 and two["total"] >= 3 and two["next_offset"] == 1


@pytest.mark.parametrize(
    "param,value",
    [
        ("limit", "0"),
        ("limit", "201"),
        ("offset", "-1"),
        ("status", "sleeping"),
        ("type", "wish"),
        ("category", "nothing"),
        ("urgency", "whenever"),
        ("overdue", "perhaps"),
        ("since", "yesterday"),
        ("sort", "random"),
        ("assignee", "KZ01-P1"),  # another station's officer
        ("assignee", "NOBODY-99"),
    ],
)
def test_an_invalid_filter_is_a_422_naming_it(stack, param, value):
    r = queue(stack, LEADER, **{param: value})
    assert r.status_code == 422, r.text
    assert r.json()["detail"]["error"] == "invalid_field"
    assert r.json()["detail"]["field"].split("[")[0] == param  # status[0]: the first of the statuses


def test_an_empty_date_range_is_refused(stack):
    r = queue(stack, LEADER, since="2026-03-02", until="2026-03-01")
    assert r.status_code == 422 and r.json()["detail"]["field"] == "until"


def test_another_stations_leader_sees_none_of_them(stack, mine):
    ours = {c["tracking_no"] for c in mine.values()}
    for params in ({}, {"sort": "-submitted_at", "limit": 200}, {"overdue": "true", "limit": 200}):
        r = queue(stack, "KZ01-LD", **params)
        assert ours.isdisjoint(numbers(r)) and all(c["station"] == "KZ01" for c in r.json()["cases"])
    # Not even by naming the officer: he is not of that station.
    assert queue(stack, "KZ01-LD", assignee=OFFICER).status_code == 422
    # The bureau sees the officer's queue.
    bureau = set(numbers(queue(stack, "BUREAU-01", assignee=OFFICER, limit=200)))
    assert {mine[k]["tracking_no"] for k in ("overdue", "accepted", "moved")} <= bureau

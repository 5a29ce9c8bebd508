"""Unit tests of triage's rules: classification and choice of officer."""

from __future__ import annotations

from datetime import time

import pytest

from triage.domain import Candidate, Classification, choose_assignee, classify, on_shift


@pytest.mark.parametrize("text", [
    "楼下有人持刀威胁路人", "工地上几十个工人聚集讨薪，堵路了", "我老公又在家暴我，救命", "邻居说要跳楼",
    "幸福小区有人在楼道里吵架，快打起来了",
])
def test_urgent_safety_signals_are_caught_first(text):
    assert classify(None, text).urgency == "urgent"


@pytest.mark.parametrize("text, category, mediation", [
    ("楼上邻居每天深夜装修，协商无果", "neighbor_dispute", True),
    ("老板拖欠工资三个月不给", "labor_dispute", True),
    ("接到冒充客服电话被骗转账两万", "fraud", False),
    ("投诉值班民警态度恶劣，推诿不办", "police_conduct", False),
    ("请问办理居住证需要什么材料", "admin_service", False),
])
def test_categories_from_keywords(text, category, mediation):
    c = classify(None, text)
    assert c.category == category and c.needs_mediation is mediation
    assert f"rule:category:{category}" in c.reasons


def test_types_from_keywords():
    assert classify(None, "感谢张警官帮我找回电动车").type == "praise"
    assert classify(None, "我要举报小区里有人聚众赌博").type == "report"
    assert classify(None, "请问户口迁移多久能办好").type == "inquiry"


def cands(*specs) -> list[Candidate]:
    return [Candidate(*s) for s in specs]


STAFF = cands(("P1", "officer", "community", 3, True), ("P2", "officer", "community", 1, True),
              ("P3", "officer", "patrol", 0, False), ("MD", "mediator", "mediation", 0, True),
              ("IN", "instructor", None, 0, False), ("LD", "leader", None, 0, False))


def test_least_loaded_officer_on_duty_gets_the_item():
    a = choose_assignee(classify(None, "小区电动车被偷了"), STAFF)
    assert a.assignee_id == "P2" and "least_load=1" in a.reason and not a.flagged


def test_disputes_go_to_the_mediation_team():
    a = choose_assignee(classify(None, "楼上邻居漏水不管"), STAFF)
    assert a.assignee_id == "MD" and "team:mediation" in a.reason


def test_police_conduct_complaints_go_to_leadership_never_an_officer():
    a = choose_assignee(classify(None, "投诉民警态度恶劣"), STAFF)
    assert a.assignee_id == "IN" and a.assignee_role == "instructor"


def test_nobody_on_duty_goes_to_the_leader_flagged():
    off = [Candidate(c.staff_id, c.role, c.team, c.open_items, False) for c in STAFF]
    a = choose_assignee(classify(None, "小区电动车被偷了"), off)
    assert a.assignee_id == "LD" and a.flagged


def test_no_staff_at_all_is_flagged_not_dropped():
    a = choose_assignee(Classification("help", "other", "normal", False, 0.4), [])
    assert a.assignee_id is None and a.flagged


@pytest.mark.parametrize("now, starts, ends, expected", [
    (time(9), time(8), time(20), True), (time(20), time(8), time(20), False),
    (time(23), time(20), time(8), True), (time(3), time(20), time(8), True), (time(12), time(20), time(8), False),
])
def test_shifts_including_overnight(now, starts, ends, expected):
    assert on_shift(now, starts, ends) is expected

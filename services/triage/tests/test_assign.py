"""Assignment rules: teams, roster, load, urgency, conflict of interest, confidentiality."""

from __future__ import annotations

from datetime import time

from triage.assign import Candidate, Item, choose_assignee, excluded_staff, named_in, on_shift

TEAMS = {"neighbor_dispute": "mediation", "theft": "patrol", "noise": "community"}


def staff(on_duty=True, leaders_on_duty=False):
    return [
        Candidate("P1", "officer", "community", 3, on_duty, "张伟", "010003", confidential_handler=True),
        Candidate("P2", "officer", "community", 1, on_duty, "刘洋", "010004"),
        Candidate("P3", "officer", "patrol", 2, on_duty, "陈静", "010005"),
        Candidate("MD", "mediator", "mediation", 0, on_duty, "赵秀兰", "010007"),
        Candidate("IN", "instructor", None, 0, leaders_on_duty, "李红梅", "010002"),
        Candidate("LD", "leader", None, 0, leaders_on_duty, "王建国", "010001"),
    ]


def test_category_team_on_duty_least_load():
    a = choose_assignee(Item("help", "theft", "normal", "电动车被偷了"), staff(), TEAMS)
    assert (a.assignee_id, a.team) == ("P3", "patrol")
    assert a.reason.startswith("rule:team:patrol;roster:on_duty;load:2") and not a.flagged


def test_disputes_go_to_the_mediation_team():
    a = choose_assignee(Item("help", "neighbor_dispute", "normal", "楼上漏水"), staff(), TEAMS)
    assert a.assignee_id == "MD"


def test_without_a_team_rule_the_least_loaded_officer():
    a = choose_assignee(Item("inquiry", "other", "low", "请问上班时间"), staff(), TEAMS)
    assert a.assignee_id == "P2" and "default_any_officer" in a.reason


def test_urgent_goes_to_whoever_is_on_duty_now_and_the_leader_is_told():
    people = staff()
    a = choose_assignee(Item("help", "neighbor_dispute", "urgent", "持刀威胁"), people, TEAMS)
    assert a.assignee_id == "P2" and a.notify_leader and "urgent_on_duty_now" in a.reason


def test_police_conduct_never_goes_to_the_named_officer_nor_to_officers():
    a = choose_assignee(Item("complaint", "police_conduct", "normal", "民警张伟态度恶劣"), staff(), TEAMS)
    assert a.assignee_id == "IN" and "excluded_named:1" in a.reason


def test_police_conduct_naming_the_instructor_goes_to_the_leader():
    a = choose_assignee(Item("complaint", "police_conduct", "normal", "指导员李红梅推诿不办"), staff(), TEAMS)
    assert a.assignee_id == "LD"


def test_police_conduct_naming_all_leadership_is_flagged_for_the_bureau():
    a = choose_assignee(Item("complaint", "police_conduct", "normal", "王建国和李红梅包庇"), staff(), TEAMS)
    assert a.assignee_id is None and a.flagged and "bureau_review" in a.reason


def test_a_complaint_by_badge_number_excludes_that_officer_from_any_category():
    a = choose_assignee(Item("complaint", "theft", "normal", "警号010005的民警处理盗窃案拖拉"), staff(), TEAMS)
    assert a.assignee_id != "P3"


def test_confidential_tip_offs_only_to_approved_handlers():
    a = choose_assignee(Item("report", "public_order", "normal", "举报赌博", confidential=True), staff(), TEAMS)
    assert a.assignee_id == "P1"


def test_confidential_with_no_approved_handler_on_duty_goes_to_the_leader_queue():
    people = [c if c.staff_id != "P1" else Candidate("P1", "officer", "community", 3, False, "张伟") for c in staff()]
    a = choose_assignee(Item("report", "public_order", "normal", "举报赌博", confidential=True), people, TEAMS)
    assert a.assignee_id == "LD" and a.flagged and "confidential" in a.reason


def test_nobody_on_duty_goes_to_the_leader_queue_flagged():
    a = choose_assignee(Item("help", "theft", "normal", "电动车被偷了"), staff(on_duty=False), TEAMS)
    assert (a.assignee_id, a.flagged, a.notify_leader) == ("LD", True, True)
    assert "no_one_on_duty" in a.reason


def test_no_staff_at_all_is_flagged_not_dropped():
    a = choose_assignee(Item("help", "theft", "normal", ""), [], TEAMS)
    assert a.assignee_id is None and a.flagged


def test_names_need_two_characters_and_badges_four_digits():
    people = [Candidate("X", "officer", None, 0, True, "王", "12")]
    assert named_in("王先生说12点", people) == set()


def test_overnight_shifts():
    assert on_shift(time(23), time(20), time(8)) and on_shift(time(7, 59), time(20), time(8))
    assert not on_shift(time(8), time(20), time(8))


def test_staff_named_in_a_complaint_are_handed_over_by_id_not_only_counted():
    """Issue 13: who a complaint names travels (internally) with the assignment; a help request
    naming an officer keeps nobody out."""
    a = choose_assignee(Item("complaint", "police_conduct", "normal", "投诉民警刘洋态度恶劣"), staff(), TEAMS)
    assert a.excluded == frozenset({"P2"}) and "excluded_named:1" in a.reason
    assert excluded_staff(Item("help", "theft", "normal", "请刘洋警官帮忙找电动车"), staff()) == frozenset()

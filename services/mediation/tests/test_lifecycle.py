"""The case state machine: legal transitions, and clear refusals for illegal ones."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import TypeAdapter, ValidationError

from mediation.commands import (
    STAFF_COMMANDS,
    Accept,
    CaseCommand,
    Close,
    Merge,
    Note,
    Reassign,
    RequestInfo,
    Resolve,
    Return,
    ReviewReturn,
    StaffCommand,
    Survey,
    Transfer,
    Visit,
)
from mediation.lifecycle import DECIDERS, Actor, Case, Rejected, decide

OFFICER = Actor("KZ01-P1", "officer", "KZ01")
OTHER = Actor("KZ01-P2", "officer", "KZ01")
LEADER = Actor("KZ01-LD", "leader", "KZ01")
FOREIGN_LEADER = Actor("KZ02-LD", "leader", "KZ02")


def case(status="assigned", **kw):
    return Case("FQTEST0001", "KZ01", status, kw.pop("assignee_id", "KZ01-P1"), **kw)


def test_the_happy_path():
    t = decide(case(), OFFICER, Accept())
    assert (t.status, t.event) == ("accepted", "accepted")
    t = decide(case("accepted"), OFFICER, Note(text="已联系双方"))
    assert t.status == "in_progress" and t.event is None
    t = decide(case("in_progress"), OFFICER, Resolve(summary="已协调物业修复路灯"))
    assert (t.status, t.event, t.changes) == ("resolved", "resolved", {"handled_by": "KZ01-P1"})
    t = decide(case("resolved", handled_by="KZ01-P1"), OTHER, Visit(result="satisfied"))
    assert (t.status, t.event) == ("visited", "visited")
    t = decide(case("visited"), LEADER, Close())
    assert (t.status, t.event) == ("closed", "closed")


@pytest.mark.parametrize(
    "status, command, code",
    [
        ("resolved", Accept(), "illegal_transition"),
        ("assigned", Resolve(summary="x"), "illegal_transition"),
        ("in_progress", Resolve(summary="  "), "missing_summary"),
        ("assigned", Return(reason=""), "missing_reason"),
        ("closed", Reassign(assignee_id="KZ01-P2"), "illegal_transition"),
        ("in_progress", Close(), "illegal_transition"),
    ],
)
def test_illegal_commands_are_rejected_with_a_reason(status, command, code):
    with pytest.raises(Rejected) as exc:
        decide(case(status), LEADER if isinstance(command, (Reassign, Close)) else OFFICER, command)
    assert exc.value.code == code and exc.value.message


def test_every_command_has_its_rule_and_a_stranger_command_is_refused():
    assert set(STAFF_COMMANDS) | {Survey} == set(DECIDERS)

    class Fly(CaseCommand):
        command: Literal["fly"] = "fly"

    with pytest.raises(Rejected) as exc:
        decide(case(), OFFICER, Fly())
    assert exc.value.code == "unknown_command"


def test_a_command_says_what_it_needs():
    with pytest.raises(ValidationError):
        Resolve()  # the result for the citizen
    with pytest.raises(ValidationError):
        Return()  # the reason
    with pytest.raises(ValidationError):
        Note(text="x", summary="not a field of a note")
    parsed = TypeAdapter(StaffCommand).validate_python({"command": "resolve", "summary": "已修复"})
    assert parsed == Resolve(summary="已修复")


def test_only_the_assignee_accepts_and_only_leaders_reassign_or_close():
    with pytest.raises(Rejected, match="承办人"):
        decide(case(), OTHER, Accept())
    with pytest.raises(Rejected) as exc:
        decide(case("in_progress"), OFFICER, Reassign(assignee_id="KZ01-P2"))
    assert exc.value.code == "forbidden"
    with pytest.raises(Rejected):
        decide(case("visited"), OFFICER, Close())


def test_another_stations_staff_cannot_touch_the_case():
    with pytest.raises(Rejected) as exc:
        decide(case(), FOREIGN_LEADER, Reassign(assignee_id="KZ02-P1"))
    assert exc.value.code == "not_found"


def test_return_is_reviewed_by_the_leader():
    t = decide(case(), OFFICER, Return(reason="不属于本所管辖"))
    assert (t.status, t.changes) == ("returned", {"returned_by": "KZ01-P1"})
    returned = case("returned", returned_by="KZ01-P1")
    with pytest.raises(Rejected):
        decide(returned, OTHER, ReviewReturn(approve=True, assignee_id="KZ01-P2"))
    approved = decide(returned, LEADER, ReviewReturn(approve=True, assignee_id="KZ01-P2"))
    assert (approved.status, approved.event, approved.assignee_id) == ("assigned", "reassigned", "KZ01-P2")
    rejected = decide(returned, LEADER, ReviewReturn(approve=False, reason="属于本所"))
    assert rejected.assignee_id == "KZ01-P1"
    with pytest.raises(Rejected):  # approving must name someone else
        decide(returned, LEADER, ReviewReturn(approve=True, assignee_id="KZ01-P1"))


def test_a_reopened_case_goes_back_to_its_own_officer_who_accepts_it_again():
    reopened = case("reopened")
    t = decide(reopened, LEADER, Reassign(assignee_id="KZ01-P1"))
    assert (t.status, t.event, t.assignee_id) == ("assigned", "reassigned", "KZ01-P1")
    assert decide(case("assigned"), OFFICER, Accept()).status == "accepted"
    with pytest.raises(Rejected) as exc:  # a case already being handled: nothing to send back
        decide(case("in_progress"), LEADER, Reassign(assignee_id="KZ01-P1"))
    assert exc.value.code == "same_assignee"


def test_the_return_visit_is_by_someone_else_and_dissatisfaction_reopens():
    resolved = case("resolved", handled_by="KZ01-P1")
    with pytest.raises(Rejected) as exc:
        decide(resolved, OFFICER, Visit(result="satisfied"))
    assert exc.value.code == "same_handler"
    t = decide(resolved, OTHER, Visit(result="dissatisfied", reason="问题没有解决"))
    assert (t.status, t.event, t.note) == ("reopened", "reopened", "问题没有解决")


def test_the_holder_may_not_visit_a_case_the_leader_resolved_for_him():
    resolved_by_leader = case("resolved", handled_by="KZ01-LD")  # held by KZ01-P1
    for handler in (OFFICER, LEADER):
        with pytest.raises(Rejected) as exc:
            decide(resolved_by_leader, handler, Visit(result="satisfied"))
        assert exc.value.code == "same_handler"
    t = decide(resolved_by_leader, OTHER, Visit(result="satisfied", method="in_person"))
    assert (t.status, t.note, t.changes["visit_method"]) == ("visited", "上门回访", "in_person")


def test_staff_kept_out_of_the_case_may_not_visit_it():
    """Issue 13, item 2: the officer a complaint names (or whom the leader kept out) does not
    record the return visit of the complaint against himself."""
    resolved = case("resolved", assignee_id="KZ01-IN", handled_by="KZ01-IN", excluded=frozenset({"KZ01-P2"}))
    with pytest.raises(Rejected) as exc:
        decide(resolved, OTHER, Visit(result="satisfied"))
    assert exc.value.code == "excluded"
    assert decide(resolved, OFFICER, Visit(result="satisfied")).status == "visited"


def test_transfer_moves_the_case_to_the_other_station():
    t = decide(case("in_progress"), LEADER, Transfer(to_station="KZ02"))
    assert (t.status, t.event, t.assignee_id, t.changes) == ("assigned", "transferred", None, {"station": "KZ02"})
    with pytest.raises(Rejected):
        decide(case("in_progress"), LEADER, Transfer(to_station="KZ01"))


def test_the_citizens_survey_answer():
    citizen = Actor("citizen:survey", "citizen", "KZ01")
    t = decide(case("resolved"), citizen, Survey(result="satisfied"))
    assert (t.status, t.event) == ("visited", "visited")
    t = decide(case("closed"), citizen, Survey(result="dissatisfied", reason="没有解决"))
    assert (t.status, t.event, t.note) == ("reopened", "reopened", "群众评价不满意：没有解决")
    with pytest.raises(Rejected):
        decide(case("in_progress"), citizen, Survey(result="satisfied"))


def test_merge_by_hand_and_request_for_information():
    t = decide(case("accepted"), LEADER, Merge(into="FQTEST0002"))
    assert (t.status, t.event, t.changes) == ("merged", "merged", {"into": "FQTEST0002"})
    with pytest.raises(Rejected):
        decide(case("accepted"), OFFICER, Merge(into="FQTEST0002"))
    with pytest.raises(Rejected):
        decide(case("accepted"), LEADER, Merge(into="FQTEST0001"))  # itself
    t = decide(case("accepted"), OFFICER, RequestInfo(text="请提供漏水处的照片"))
    assert (t.status, t.event) == ("in_progress", None)
    with pytest.raises(Rejected):
        decide(case("accepted"), OFFICER, RequestInfo(text=" "))


def test_available_lists_only_what_this_person_may_do_now_by_the_same_rules():
    from mediation.lifecycle import _PROBES, available

    assert set(_PROBES) == set(STAFF_COMMANDS), "every staff command has an example for the console"
    assert available(case(), OFFICER) == ["accept", "return", "escalate"]
    # the leader reassigns, transfers or voids an assigned case, but does not accept it for the officer
    assert set(available(case(), LEADER)) == {"reassign", "transfer", "escalate", "merge", "void"}
    assert available(case(), OTHER) == []
    assert available(case(), FOREIGN_LEADER) == []
    working = available(case("in_progress"), OFFICER)
    assert {"note", "request_info", "resolve", "start_mediation", "escalate"} <= set(working)
    assert "resume_clock" not in working and "accept" not in working
    assert "resume_clock" in available(case("in_progress", waiting=True), OFFICER)
    # the return visit: anyone of the station but the handler and the holder, never one kept out
    resolved = case("resolved", handled_by="KZ01-P1")
    assert "visit" not in available(resolved, OFFICER)
    assert set(available(resolved, LEADER)) == {"visit", "reopen"}
    assert "visit" not in available(case("resolved", excluded=frozenset({"KZ01-P2"})), OTHER)
    assert set(available(case("visited"), LEADER)) == {"close", "reopen"}
    assert available(case("returned"), LEADER)[0] == "review_return"
    assert available(case("closed"), OFFICER) == []

"""Staff notices that say what the reader needs (issue 13, item 8): a person's escalation, return,
transfer or reassignment reaches the console with who did it and why, through the real services;
the reason travels on the internal staff topic, never on the public stream; the previous holder of
a case taken from them sees their notices of it withdrawn and is told to stop. The clock's own
escalation keeps its 超时上报 text."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from tests.e2e.helpers import console_notifications, public_events, sql, submit, token, wait_for_status

pytestmark = pytest.mark.e2e
LEADERS = ("KZ01-LD", "KZ01-IN")


def case_url(stack, no: str) -> str:
    return f"{stack['urls']['mediation']}/api/v1/cases/{no}"


def act(stack, no: str, who: str, command: str, **body) -> httpx.Response:
    r = httpx.post(f"{case_url(stack, no)}/{command}", json=body, headers=token(stack, who))
    assert r.status_code == 200, r.text
    return r


def new_case(stack, content: str) -> tuple[str, str]:
    """A citizen's item at KZ01 once triage has assigned it: its number and its officer."""
    no = submit(stack, "KZ01", f"{content}（{uuid.uuid4().hex[:6]}）")["tracking_no"]
    c = wait_for_status(case_url(stack, no), token(stack, "KZ01-LD"), "assigned", timeout=15)
    return no, c["assignee_id"]


def name(stack, staff_id: str) -> str:
    return stack["credentials"][staff_id]["name"]


def notices(stack, staff_id: str, no: str) -> list[dict]:
    items = httpx.get(f"{stack['urls']['notify']}/api/v1/inbox?limit=200", headers=token(stack, staff_id)).json()
    return [n for n in items["notifications"] if n["tracking_no"] == no]


def test_a_manual_escalation_reaches_the_leaders_with_its_reason_under_its_own_title(stack, infra):
    no, officer = new_case(stack, "矿山路菜市场两家摊贩为摊位位置长期有矛盾，多次吵架")
    # Looks like template syntax: it must be shown as typed, never evaluated (a value, not a template).
    reason = "双方扬言今晚再去找对方，需所领导协调 {{ 7*7 }}{% if true %}"
    act(stack, no, officer, "escalate", reason=reason)
    for leader in LEADERS:
        (told,) = console_notifications(stack, leader, "manual_escalation", no)
        assert told["title"] == f"上报所领导：{no}"
        assert told["body"] == f"矿区派出所：{name(stack, officer)}将该事项上报所领导，理由：{reason}。请阅处。"
    # One notice for the step: not also the clock's "超时上报 … 已超过时限（）" from the public event.
    assert not console_notifications(stack, "KZ01-LD", "escalated", no, timeout=2)
    # The public stream has the step, without the officer's words.
    stream = public_events(infra.bootstrap, no)
    assert "fengqiao.case.escalated" in [e["type"] for e in stream]
    assert "扬言" not in json.dumps(stream, ensure_ascii=False)


def test_a_return_tells_the_leaders_who_returned_it_and_why_and_the_officer_why_it_was_refused(stack):
    no, officer = new_case(stack, "矿工新村5栋楼道里堆满杂物，消防通道被堵")
    act(stack, no, officer, "return", reason="该楼栋不在本人责任区，属社区民警陈静负责")
    for leader in LEADERS:
        (told,) = console_notifications(stack, leader, "returned", no)
        assert told["title"] == f"退单待审：{no}"
        assert told["body"] == (
            f"矿区派出所：{name(stack, officer)}申请退单，理由：该楼栋不在本人责任区，属社区民警陈静负责。请审核。"
        )
    act(stack, no, "KZ01-LD", "review_return", approve=False, reason="消防通道事关安全，先处置再移交")
    (refused,) = console_notifications(stack, officer, "return_rejected", no)
    assert refused["body"] == (
        f"矿区派出所：{name(stack, 'KZ01-LD')}不同意退单，说明：消防通道事关安全，先处置再移交。请继续办理。"
    )
    # Sent back to the officer who returned it: nothing of theirs is withdrawn.
    assert not any(n["withdrawn"] for n in notices(stack, officer, no))


def test_a_transfer_names_the_sending_station_to_the_receiving_leader(stack):
    no, officer = new_case(stack, "矿山路与新华街交界处的路口信号灯坏了")
    assert console_notifications(stack, officer, "assigned", no)
    act(stack, no, "KZ01-LD", "transfer", to_station="KZ02", reason="路口在新华街一侧，属新村派出所辖区")
    (told,) = console_notifications(stack, "KZ02-LD", "transferred", no)
    assert told["title"] == f"移交本所：{no}"
    assert told["body"] == (
        f"新村派出所：矿区派出所（{name(stack, 'KZ01-LD')}）将该事项移交本所，"
        "说明：路口在新华街一侧，属新村派出所辖区。请尽快指派。"
    )
    # The KZ01 officer stops: their assignment notice is withdrawn and they are told where it went.
    (stop,) = console_notifications(stack, officer, "withdrawn", no)
    assert "已移交新村派出所，无需再办理" in stop["body"] and stop["body"].startswith("矿区派出所：")
    (assigned,) = [n for n in notices(stack, officer, no) if n["kind"] == "assigned"]
    assert assigned["withdrawn"] and assigned["withdrawn_reason"] == "已移交新村派出所"


def test_a_reassignment_withdraws_the_old_holders_notices_and_tells_them(stack):
    no, first = new_case(stack, "矿区幼儿园门口早上车辆乱停，孩子过马路很危险")
    assert console_notifications(stack, first, "assigned", no)
    second = next(s for s in ("KZ01-P1", "KZ01-P2", "KZ01-P3", "KZ01-P4") if s != first)
    act(stack, no, "KZ01-LD", "reassign", assignee_id=second, reason="该路段由交通岗负责")

    (mine,) = console_notifications(stack, second, "reassigned", no)
    assert mine["body"] == (
        f"矿区派出所：{name(stack, 'KZ01-LD')}将该事项改派给您（原承办人：{name(stack, first)}），"
        "说明：该路段由交通岗负责。请尽快签收。"
    )
    assert not mine["withdrawn"] and mine["withdrawn_reason"] is None
    (stop,) = console_notifications(stack, first, "withdrawn", no)
    assert stop["title"] == f"无需再办理：{no}"
    assert stop["body"] == (
        f"矿区派出所：该事项已改派给{name(stack, second)}，无需再办理（说明：该路段由交通岗负责）。"
    )
    earlier = [n for n in notices(stack, first, no) if n["kind"] != "withdrawn"]
    assert earlier and all(n["withdrawn"] for n in earlier)
    assert {n["withdrawn_reason"] for n in earlier} == {f"已改派给{name(stack, second)}"}
    assert not stop["withdrawn"]  # the notice that says so is not itself withdrawn


def test_the_clocks_escalation_keeps_its_overdue_text_with_the_deadline(stack, infra):
    no, _ = new_case(stack, "矿山路12号楼下的路灯不亮")
    sql(
        infra.dsn,
        "UPDATE mediation.case_clocks SET due_at = now() - interval '1 minute', "
        "original_due_at = now() - interval '1 minute', remind_at = now() - interval '2 minutes' "
        "WHERE tracking_no = $1 AND clock = 'accept'",
        no,
    )
    (told,) = console_notifications(stack, "KZ01-LD", "escalated", no, timeout=20)
    assert told["title"] == f"超时上报：{no}"
    assert told["body"].startswith("矿区派出所：签收已超过时限（") and "（）" not in told["body"]
    assert not console_notifications(stack, "KZ01-LD", "manual_escalation", no, timeout=1)

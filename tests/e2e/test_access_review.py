"""The security review of case access (issue 13's exclusions), one test per finding, through the
running services: a transfer or a newcomer does not show a complaint to the officer it names; the
hotline does not join a named officer's call to the complaint against him; leadership kept out of
a case learns nothing of it (audit, disclosures, notices) and cannot be given it; the mailbox's
answer does not say whether an address is the reporter's; the citizen's additions reach staff
masked; a token that is nobody's opens no case; the exclusion routes authorise first."""

from __future__ import annotations

import os
import secrets
import smtplib
import subprocess
import sys
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from tests.e2e.helpers import console_notifications, staff_get, submit, token
from tests.hostile.helpers import wait_for_case

pytestmark = pytest.mark.e2e
FENGQIAO = str(Path(sys.executable).parent / "fengqiao")


def intake_get(stack, no: str, headers: dict) -> httpx.Response:
    return httpx.get(f"{stack['urls']['intake']}/api/v1/feedback/{no}", headers=headers, timeout=10)


def case_get(stack, no: str, headers: dict) -> httpx.Response:
    return httpx.get(f"{stack['urls']['mediation']}/api/v1/cases/{no}", headers=headers, timeout=10)


def act(stack, no: str, who: str, command: str, **body) -> httpx.Response:
    return httpx.post(
        f"{stack['urls']['mediation']}/api/v1/cases/{no}/{command}", json=body, headers=token(stack, who), timeout=10
    )


def eventually(check, what: str, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout}s"
        time.sleep(0.1)


def fengqiao(infra, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": infra.dsn}
    return subprocess.run([FENGQIAO, *args], env=env, capture_output=True, text=True, timeout=120)


def exclusions(stack, no: str, who: str) -> list[tuple[str, str]]:
    r = httpx.get(f"{stack['urls']['mediation']}/api/v1/cases/{no}/exclusions", headers=token(stack, who))
    assert r.status_code == 200, r.text
    return [(x["staff_id"], x["origin"]) for x in r.json()["exclusions"]]


def complaint(stack, station: str, about: str) -> tuple[dict, dict]:
    """A complaint about an officer, once mediation holds it (read as the bureau: no exclusion)."""
    receipt = submit(stack, station, f"投诉民警{about}出警时态度恶劣，还辱骂我（{uuid.uuid4().hex[:6]}）")
    return receipt, wait_for_case(stack, receipt["tracking_no"], token(stack, "BUREAU-01"))


# -- finding 1 ------------------------------------------------------------------------------------


def test_a_transfer_never_shows_the_complaint_to_the_receiving_leader_it_names(stack):
    # 孙立军 leads KZ02: filed at KZ01, the complaint names nobody there.
    receipt, case = complaint(stack, "KZ01", "孙立军")
    no = receipt["tracking_no"]
    assert case["station"] == "KZ01"
    r = act(stack, no, "KZ01-LD", "transfer", to_station="KZ02", reason="被投诉人系新村派出所民警")
    assert r.status_code == 200, r.text

    # Triage matches the complaint against KZ02's staff: its leader is kept out, the instructor holds it.
    bureau = token(stack, "BUREAU-01")
    moved = eventually(
        lambda: (c := case_get(stack, no, bureau).json())["station"] == "KZ02" and c["assignee_id"] == "KZ02-IN" and c,
        "the case held by KZ02's instructor",
    )
    assert moved["flagged"] is True
    assert "原承办人须回避本事项，改由本所领导承办" in [h["reason"] for h in moved["history"]]
    assert exclusions(stack, no, "KZ02-IN") == [("KZ02-LD", "triage")]
    assert case_get(stack, no, token(stack, "KZ02-LD")).status_code == 404
    assert intake_get(stack, no, token(stack, "KZ02-LD")).status_code == 404
    # The rest of KZ02 opens it once triage has checked them (settled for the receiving station).
    assert staff_get(f"{stack['urls']['intake']}/api/v1/feedback/{no}", token(stack, "KZ02-P2")).status_code == 200
    assert case_get(stack, no, token(stack, "KZ02-P2")).status_code == 200
    # Told: the instructor who holds it, never the leader it names.
    (told,) = console_notifications(stack, "KZ02-IN", "transferred", no)
    assert "矿区派出所" in told["body"]
    assert console_notifications(stack, "KZ02-LD", "transferred", no, timeout=2) == []


def test_a_newcomer_to_a_station_does_not_open_the_complaint_that_names_him(stack, infra):
    name = "欧阳" + secrets.choice("明亮清远") + secrets.choice("山川志宏")
    receipt, _ = complaint(stack, "KZ01", name)
    no = receipt["tracking_no"]
    plain = submit(stack, "KZ01", f"矿工新村路灯坏了（{uuid.uuid4().hex[:6]}）")["tracking_no"]
    wait_for_case(stack, plain, token(stack, "KZ01-LD"))

    added = fengqiao(infra, "staff", "add", "--station", "KZ01", "--name", name, "--role", "officer")
    assert added.returncode == 0, added.stderr
    staff_id = added.stderr.split("added ", 1)[1].split(" ", 1)[0]
    made = fengqiao(infra, "token", "create", "--staff-id", staff_id)
    assert made.returncode == 0, made.stderr
    newcomer = {"Authorization": f"Bearer {made.stdout.strip().splitlines()[-1]}"}
    # His token works and he opens the station's other items ...
    eventually(lambda: case_get(stack, plain, newcomer).status_code == 200, "the newcomer's token in mediation")
    eventually(lambda: intake_get(stack, plain, newcomer).status_code == 200, "the newcomer's token in intake")
    # ... but not the complaint naming him (triage matched it when he joined).
    eventually(lambda: case_get(stack, no, newcomer).status_code == 404, "the complaint hidden in mediation")
    eventually(lambda: intake_get(stack, no, newcomer).status_code == 404, "the complaint hidden in intake")
    assert (staff_id, "triage") in exclusions(stack, no, "KZ01-LD")


# -- finding 2 ------------------------------------------------------------------------------------


def test_the_hotline_does_not_join_a_named_officers_call_to_the_complaint_against_him(stack):
    number = f"+86136{secrets.randbelow(10**8):08d}"
    hotline = f"{stack['urls']['intake']}/api/v1/hotline/calls"

    def call(who: str, **extra) -> dict:
        body = {
            "call_id": f"CTI-{uuid.uuid4().hex[:10]}",
            "station": "KZ01",
            "caller_number": number,
            "started_at": "2026-11-28T21:05:00+08:00",
            "summary": f"来电投诉民警张伟出警时辱骂群众（{uuid.uuid4().hex[:6]}）",
        } | extra
        r = httpx.post(hotline, json=body, headers=token(stack, who), timeout=10)
        assert r.status_code == 202, r.text
        return r.json()

    first = call("integration")  # the call centre files the complaint naming 张伟 (KZ01-P1)
    no = first["tracking_no"]
    wait_for_case(stack, no, token(stack, "KZ01-LD"))
    assert staff_get(f"{stack['urls']['intake']}/api/v1/feedback/{no}", token(stack, "KZ01-P2")).status_code == 200
    # Another officer of the station, who may open it, joins a follow-up call to it.
    assert call("KZ01-P2", summary="来电补充：时间是昨晚十点")["added_to"] == no

    # 张伟 types in a call from the same number, and one naming the tracking number: new items, the
    # complaint is neither named nor written into.
    by_number = call("KZ01-P1", summary="来电询问处理进度")
    by_no = call("KZ01-P1", caller_number="", tracking_no=no, summary="撤销投诉")
    for answer in (by_number, by_no):
        assert "added_to" not in answer and answer["tracking_no"] != no and no not in str(answer)
    assert by_number["earlier_calls"] == []
    additions = eventually(
        lambda: case_get(stack, no, token(stack, "KZ01-LD")).json()["citizen_additions"], "the call in the case"
    )
    assert [a["channel"] for a in additions] == ["hotline"] and "撤销" not in str(additions)


# -- finding 3 ------------------------------------------------------------------------------------


def test_leadership_kept_out_of_a_case_learns_nothing_of_it_and_cannot_be_given_it(stack):
    # 李红梅 is KZ01's instructor: a police-conduct complaint about her goes to the leader.
    receipt, case = complaint(stack, "KZ01", "李红梅")
    no = receipt["tracking_no"]
    assert case["assignee_id"] == "KZ01-LD"
    eventually(lambda: exclusions(stack, no, "KZ01-LD") == [("KZ01-IN", "triage")], "the instructor kept out")
    intake = stack["urls"]["intake"]
    assert staff_get(f"{intake}/api/v1/feedback/{no}", token(stack, "KZ01-P2")).status_code == 200
    r = httpx.post(f"{intake}/api/v1/feedback/{no}/reveal", json={"reason": "核实"}, headers=token(stack, "KZ01-P2"))
    assert r.status_code == 200, r.text
    assert intake_get(stack, no, token(stack, "KZ01-IN")).status_code == 404  # refused: logged

    # The leader sees views, reveals and refusals; the instructor they are about sees none of them.
    def logs(who: str) -> tuple[list, list]:
        params, headers = {"tracking_no": no}, token(stack, who)
        audit = httpx.get(f"{stack['urls']['mediation']}/api/v1/audit", params=params, headers=headers)
        disclosed = httpx.get(f"{intake}/api/v1/disclosures", params=params, headers=headers)
        assert audit.status_code == 200 and disclosed.status_code == 200, (audit.text, disclosed.text)
        return audit.json()["entries"], disclosed.json()["entries"]

    audit, disclosed = logs("KZ01-LD")
    assert ("KZ01-P2", "reveal") in {(e["staff_id"], e["action"]) for e in disclosed}
    assert ("KZ01-IN", "refused_excluded") in {(e["staff_id"], e["action"]) for e in disclosed}
    assert audit
    assert logs("KZ01-IN") == ([], [])
    everything = httpx.get(f"{stack['urls']['mediation']}/api/v1/audit", headers=token(stack, "KZ01-IN"))
    assert no not in everything.text

    # Giving her the case is refused with a clear message.
    r = act(stack, no, "KZ01-LD", "reassign", assignee_id="KZ01-IN", reason="请指导员办理")
    assert r.status_code == 422 and r.json()["detail"]["error"] == "assignee_excluded", r.text
    assert "回避" in r.json()["detail"]["message"]
    r = act(stack, no, "KZ01-LD", "reassign", assignee_id="KZ01-P1", reason="换人")  # 张伟 is not named: fine
    assert r.status_code == 200, r.text

    # Steps that tell the leadership (a manual escalation) never tell her.
    assert act(stack, no, "KZ01-P1", "accept").status_code == 200
    assert act(stack, no, "KZ01-P1", "escalate", reason="需所领导协调").status_code == 200
    assert console_notifications(stack, "KZ01-LD", "manual_escalation", no)
    assert console_notifications(stack, "KZ01-IN", "manual_escalation", no, timeout=2) == []


# -- finding 4 ------------------------------------------------------------------------------------


def smtp_answer(stack, sender: str, subject: str, body: str) -> tuple[int, bytes]:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "kz01@example.cn", subject
    msg["Message-ID"] = f"<{uuid.uuid4()}@example.cn>"
    msg.set_content(body)
    with smtplib.SMTP("127.0.0.1", stack["smtp_port"], timeout=30) as client:
        client.ehlo()
        client.mail(sender)
        client.rcpt("kz01@example.cn")
        return client.data(msg.as_bytes())


def test_the_mailbox_answers_alike_whether_or_not_the_sender_is_the_reporter(stack):
    reporter = f"r-{uuid.uuid4().hex[:8]}@example.cn"
    receipt = submit(stack, "KZ01", f"矿山路井盖丢失（{uuid.uuid4().hex[:6]}）", reporter={"email": reporter})
    no = receipt["tracking_no"]
    wait_for_case(stack, no, token(stack, "KZ01-LD"))

    stranger = smtp_answer(stack, f"x-{uuid.uuid4().hex[:6]}@example.cn", f"关于 {no}", "这个编号是谁的？")
    own = smtp_answer(stack, reporter, f"关于 {no}", "井盖在3号路口")
    assert own == stranger == (250, b"OK received")
    # The reporter's mail did reach the case (the outcome is on the tracking page and in the case).
    eventually(
        lambda: case_get(stack, no, token(stack, "KZ01-LD")).json()["citizen_additions"], "the reply in the case"
    )


# -- finding 6 ------------------------------------------------------------------------------------


def test_a_station_token_that_is_nobodys_opens_no_case(stack, infra):
    receipt = submit(stack, "KZ01", f"矿区菜市场门口堆放垃圾（{uuid.uuid4().hex[:6]}）")
    no = receipt["tracking_no"]
    wait_for_case(stack, no, token(stack, "KZ01-LD"))
    made = fengqiao(infra, "token", "create", "--station", "KZ01", "--role", "leader")
    assert made.returncode == 0 and "opens no case" in made.stderr, made.stderr
    nameless = {"Authorization": f"Bearer {made.stdout.strip().splitlines()[-1]}"}
    # It works (it lists the station's cases: none) but opens nothing: exclusions are by person.
    lists = eventually(
        lambda: (
            (r := httpx.get(f"{stack['urls']['mediation']}/api/v1/cases", headers=nameless, timeout=10)).status_code
            == 200
            and r
        ),
        "the token accepted by mediation",
    )
    assert no not in lists.text
    assert case_get(stack, no, nameless).status_code == 404
    assert intake_get(stack, no, nameless).status_code == 404
    disclosures = httpx.get(f"{stack['urls']['intake']}/api/v1/disclosures", headers=nameless)
    assert disclosures.status_code == 403
    assert case_get(stack, no, token(stack, "KZ01-LD")).status_code == 200


# -- finding 7 ------------------------------------------------------------------------------------


def test_the_exclusion_routes_answer_a_stranger_404_before_the_body_and_take_reasons_in_bodies(stack):
    receipt = submit(stack, "KZ01", f"矿山路口红绿灯不亮（{uuid.uuid4().hex[:6]}）")
    no = receipt["tracking_no"]
    case = wait_for_case(stack, no, token(stack, "KZ01-LD"))
    url = f"{stack['urls']['mediation']}/api/v1/cases/{no}/exclusions"
    for body in ("{not json", "{}"):
        r = httpx.post(url, content=body, headers=token(stack, "KZ02-LD") | {"content-type": "application/json"})
        assert r.status_code == 404, r.text
        r = httpx.post(f"{url}/KZ01-P2/lift", content=body, headers=token(stack, "KZ02-LD"))
        assert r.status_code == 404, r.text
    r = httpx.post(url, content="{}", headers=token(stack, "KZ01-IN") | {"content-type": "application/json"})
    assert r.status_code == 403, r.text  # the leader's alone: told before the body
    other = next(s for s in ("KZ01-P3", "KZ01-P4") if s != case["assignee_id"])
    r = httpx.post(url, json={"staff_id": other, "reason": "近亲属回避"}, headers=token(stack, "KZ01-LD"))
    assert r.status_code == 201, r.text
    # The excluded person's try is refused as not found, and audited for the leader.
    r = httpx.post(f"{url}/{other}/lift", json={"reason": "我要看"}, headers=token(stack, other))
    assert r.status_code == 404, r.text
    # Lifting takes the reason in the body; the old DELETE with ?reason= in the URL is gone.
    assert httpx.delete(f"{url}/{other}", params={"reason": "x"}, headers=token(stack, "KZ01-LD")).status_code in (
        404,
        405,
    )
    r = httpx.post(f"{url}/{other}/lift", json={"reason": "经核实无利害关系"}, headers=token(stack, "KZ01-LD"))
    assert r.status_code == 200, r.text
    audit = httpx.get(
        f"{stack['urls']['mediation']}/api/v1/audit", params={"tracking_no": no}, headers=token(stack, "KZ01-LD")
    ).json()["entries"]
    assert (other, "refused_excluded") in {(e["staff_id"], e["action"]) for e in audit}
    assert ("KZ01-LD", "restore_access", f"{other}: 经核实无利害关系") in {
        (e["staff_id"], e["action"], e["detail"]) for e in audit
    }

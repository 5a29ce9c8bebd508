"""Who may read a case (issue 13, items 1 and 2, and "staff can read what the citizen wrote"): the
officer a complaint names does not open it in intake, triage or mediation, nor see it in his
queue, nor record its return visit; the leader keeps others out with a reason; every refusal and
every reveal of personal data is in the audit the leader reads; staff read the citizen's words
with personal data masked until they reveal them (logged)."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.e2e.helpers import submit, token
from tests.hostile.helpers import wait_for_case

pytestmark = pytest.mark.e2e

COMPLAINT = "投诉民警张伟出警时态度恶劣，还辱骂我。我叫赵六，电话13812345678，身份证110101199001011234"


def intake_get(stack, no: str, who: str) -> httpx.Response:
    return httpx.get(f"{stack['urls']['intake']}/api/v1/feedback/{no}", headers=token(stack, who), timeout=10)


def case_get(stack, no: str, who: str) -> httpx.Response:
    return httpx.get(f"{stack['urls']['mediation']}/api/v1/cases/{no}", headers=token(stack, who), timeout=10)


def queue(stack, who: str, **params) -> set[str]:
    r = httpx.get(
        f"{stack['urls']['mediation']}/api/v1/cases",
        params={"sort": "-submitted_at", "limit": 200, **params},
        headers=token(stack, who),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return {c["tracking_no"] for c in r.json()["cases"]}


def act(stack, no: str, who: str, command: str, **body) -> httpx.Response:
    return httpx.post(
        f"{stack['urls']['mediation']}/api/v1/cases/{no}/{command}", json=body, headers=token(stack, who), timeout=10
    )


def eventually(check, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the timeout"
        time.sleep(0.1)


def test_the_officer_a_complaint_names_cannot_open_it_anywhere_and_the_leader_reads_the_refusals(stack):
    receipt = submit(
        stack,
        "KZ01",
        COMPLAINT,
        address="矿山路5号",
        reporter={"name": "赵六", "phone": "13812345678"},
    )
    no = receipt["tracking_no"]
    case = wait_for_case(stack, no, token(stack, "KZ01-LD"))
    assert case["assignee_id"] in ("KZ01-IN", "KZ01-LD") and case["channel"] == "web"

    # KZ01-P1 (张伟) is named: "not found" in intake, mediation and triage, and not in his lists.
    assert intake_get(stack, no, "KZ01-P1").status_code == 404
    assert case_get(stack, no, "KZ01-P1").status_code == 404
    decision = f"{stack['urls']['triage']}/api/v1/triage/decisions/{no}"
    assert httpx.get(decision, headers=token(stack, "KZ01-P1")).status_code == 404
    assert no not in queue(stack, "KZ01-P1")
    assert act(stack, no, "KZ01-P1", "note", text="我来看看").status_code == 404
    # Another officer of the station opens it, the citizen's words masked.
    seen = intake_get(stack, no, "KZ01-P2")
    assert seen.status_code == 200, seen.text
    item = seen.json()
    assert "138****5678" in item["content"] and "13812345678" not in item["content"]
    assert "110101********1234" in item["content"] and "赵*" in item["content"] and "赵六" not in item["content"]
    assert item["reporter"]["phone"] == "138****5678" and item["reporter"]["name"] == "赵*"
    assert item["address"] == "矿山路5号" and item["channel"] == "web"
    assert no in queue(stack, "KZ01-P2") and no in queue(stack, "KZ01-LD", channel="web")
    assert no not in queue(stack, "KZ01-LD", channel="hotline")
    # Mediation's case detail shows the words too, masked, from its own sealed copy.
    detail = case_get(stack, no, "KZ01-LD").json()
    assert "138****5678" in detail["words"]["content"] and "13812345678" not in str(detail)

    # A reveal with a reason shows them as written, and is logged.
    reveal = f"{stack['urls']['intake']}/api/v1/feedback/{no}/reveal"
    r = httpx.post(reveal, json={"reason": "需要电话联系当事人"}, headers=token(stack, "KZ01-P2"))
    assert r.status_code == 200, r.text
    assert "13812345678" in r.json()["content"] and r.json()["reporter"]["phone"] == "+8613812345678"
    assert httpx.post(reveal, json={"reason": "看看"}, headers=token(stack, "KZ01-P1")).status_code == 404
    assert httpx.post(reveal, json={"reason": "看看"}, headers=token(stack, "KZ02-LD")).status_code == 404

    # The leader reads the disclosures and the refusals (intake) and the refusals (mediation).
    log = httpx.get(
        f"{stack['urls']['intake']}/api/v1/disclosures", params={"tracking_no": no}, headers=token(stack, "KZ01-LD")
    )
    assert log.status_code == 200, log.text
    entries = {(e["staff_id"], e["action"], e["reason"]) for e in log.json()["entries"]}
    assert ("KZ01-P1", "refused_excluded", None) in entries
    assert ("KZ01-P2", "reveal", "需要电话联系当事人") in entries
    assert (
        httpx.get(f"{stack['urls']['intake']}/api/v1/disclosures", headers=token(stack, "KZ01-P2")).status_code == 403
    )
    kz02_log = httpx.get(
        f"{stack['urls']['intake']}/api/v1/disclosures", params={"tracking_no": no}, headers=token(stack, "KZ02-LD")
    )
    assert kz02_log.status_code == 200 and kz02_log.json()["entries"] == []
    audit = httpx.get(
        f"{stack['urls']['mediation']}/api/v1/audit", params={"tracking_no": no}, headers=token(stack, "KZ01-LD")
    ).json()["entries"]
    assert {(e["staff_id"], e["action"]) for e in audit} >= {("KZ01-P1", "refused_excluded")}
    exclusions = httpx.get(
        f"{stack['urls']['mediation']}/api/v1/cases/{no}/exclusions", headers=token(stack, "KZ01-LD")
    ).json()["exclusions"]
    assert [(x["staff_id"], x["origin"]) for x in exclusions] == [("KZ01-P1", "triage")]

    # Another station's officer: still not found; the citizen's own view is unchanged (no words).
    assert intake_get(stack, no, "KZ02-P1").status_code == 404 and case_get(stack, no, "KZ02-LD").status_code == 404
    citizen = httpx.get(
        f"{stack['urls']['intake']}/api/v1/feedback/{no}", headers={"X-Access-Code": receipt["access_code"]}
    ).json()
    assert citizen["content"] is None and citizen["reporter"] is None and citizen["status"] == "assigned"

    # Item 2: the named officer does not record the return visit of the complaint against himself.
    holder = case["assignee_id"]
    assert act(stack, no, holder, "accept").status_code == 200
    assert act(stack, no, holder, "resolve", summary="已批评教育当事民警").status_code == 200
    assert act(stack, no, "KZ01-P1", "visit", result="satisfied", method="phone").status_code == 404
    assert act(stack, no, "KZ01-P2", "visit", result="satisfied", method="phone").status_code == 200


def test_the_leader_keeps_a_member_of_staff_out_of_a_case_with_a_reason_and_lets_them_back(stack):
    receipt = submit(stack, "KZ01", "矿工新村7号楼楼道的灯坏了好几天，晚上很黑，请派人修理")
    no = receipt["tracking_no"]
    case = wait_for_case(stack, no, token(stack, "KZ01-LD"))
    other = next(s for s in ("KZ01-P3", "KZ01-P4") if s != case["assignee_id"])
    url = f"{stack['urls']['mediation']}/api/v1/cases/{no}/exclusions"
    assert case_get(stack, no, other).status_code == 200
    eventually(lambda: intake_get(stack, no, other).status_code == 200)

    # Only the leader (所长), and never the holder.
    r = httpx.post(url, json={"staff_id": other, "reason": "近亲属回避"}, headers=token(stack, "KZ01-IN"))
    assert r.status_code == 403, r.text
    r = httpx.post(url, json={"staff_id": case["assignee_id"], "reason": "x"}, headers=token(stack, "KZ01-LD"))
    assert r.status_code == 409 and r.json()["detail"]["error"] == "holder_excluded", r.text
    r = httpx.post(url, json={"staff_id": other, "reason": "近亲属回避"}, headers=token(stack, "KZ01-LD"))
    assert r.status_code == 201, r.text

    assert case_get(stack, no, other).status_code == 404 and no not in queue(stack, other)
    eventually(lambda: intake_get(stack, no, other).status_code == 404)  # intake hears it on the internal topic
    listed = httpx.get(url, headers=token(stack, "KZ01-LD")).json()["exclusions"]
    assert [(x["staff_id"], x["origin"], x["reason"], x["added_by"]) for x in listed] == [
        (other, "leader", "近亲属回避", "KZ01-LD")
    ]
    assert httpx.get(url, headers=token(stack, "KZ02-LD")).status_code == 404

    r = httpx.post(f"{url}/{other}/lift", json={"reason": "经核实无利害关系"}, headers=token(stack, "KZ01-LD"))
    assert r.status_code == 200, r.text
    assert case_get(stack, no, other).status_code == 200
    eventually(lambda: intake_get(stack, no, other).status_code == 200)
    audit = httpx.get(
        f"{stack['urls']['mediation']}/api/v1/audit", params={"tracking_no": no}, headers=token(stack, "KZ01-LD")
    ).json()["entries"]
    actions = {(e["action"], e["detail"]) for e in audit}
    assert ("exclude", f"{other}: 近亲属回避") in actions
    assert ("restore_access", f"{other}: 经核实无利害关系") in actions
    assert ("refused_excluded", None) in actions

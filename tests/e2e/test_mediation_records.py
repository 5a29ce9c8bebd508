"""Mediation records through the running services (issue 13, items 9 and 10): an agreement saved
again is corrected, not duplicated (one set of follow-ups, the outcome counted once); a case has
one mediation record, and changing its mediator is the leadership's own command."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.e2e.helpers import submit, token

pytestmark = pytest.mark.e2e


def accepted_case(stack, content: str) -> tuple[str, str]:
    """A citizen's item of KZ01 accepted by its assignee: (tracking number, holder)."""
    no = submit(stack, "KZ01", content)["tracking_no"]
    url = f"{stack['urls']['mediation']}/api/v1/cases/{no}"
    deadline = time.monotonic() + 15
    while (r := httpx.get(url, headers=token(stack, "KZ01-LD"))).status_code != 200 or not r.json()["assignee_id"]:
        assert time.monotonic() < deadline, r.text[:300]
        time.sleep(0.1)
    holder = r.json()["assignee_id"]
    accepted = httpx.post(f"{url}/accept", json={}, headers=token(stack, holder))
    assert accepted.status_code == 200, accepted.text
    return no, holder


def agreements_counted(stack) -> float:
    for line in httpx.get(f"{stack['urls']['mediation']}/metrics").text.splitlines():
        labels = ('outcome="agreement"', 'station="KZ01"')
        if line.startswith("fengqiao_mediation_outcomes_total{") and all(x in line for x in labels):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_an_agreement_saved_again_is_corrected_with_one_set_of_followups_and_counted_once(stack):
    no, holder = accepted_case(stack, "邻居装修噪音持续到深夜，双方争吵，请求派出所调解")
    base = f"{stack['urls']['mediation']}/api/v1/cases/{no}/mediation"
    who = token(stack, holder)
    assert httpx.post(base, json={"mediator_id": "KZ01-MD"}, headers=who).status_code == 201
    parties = [
        httpx.post(f"{base}/parties", headers=who, json={"role": role, "name": name}).json()["party_id"]
        for role, name in (("applicant", "李桂兰"), ("respondent", "孙建国"))
    ]
    signed = "2026-12-01T10:00:00+08:00"
    agreement = {
        "facts": "孙建国家装修施工至深夜，影响楼下李桂兰休息。",
        "dispute": "施工时间。",
        "terms": ["晚八点后不施工。"],
        "performance": {"how": "自觉履行", "where": "矿工新村5栋", "when": "即日起"},
        "signatures": [{"party_id": p, "signed_at": signed} for p in parties],
        "signed_at": signed,
        "performance_checks": ["2026-12-08T10:00:00+08:00"],
    }
    before = agreements_counted(stack)
    for _ in range(2):  # the same agreement saved twice (a double click, a retry)
        r = httpx.put(f"{base}/agreement", headers=who, json=agreement)
        assert r.status_code == 200, r.text
    record = httpx.get(base, headers=who).json()
    assert sorted((f["kind"], f["due_at"][:10]) for f in record["followups"]) == [
        ("confirmation_window", "2026-12-31"),
        ("performance_check", "2026-12-08"),
    ]
    assert agreements_counted(stack) == before + 1

    # Corrected: new terms, signed a day later, the check moved; the follow-ups follow the new dates.
    corrected = agreement | {
        "terms": ["晚七点后不施工。", "孙建国向李桂兰赔礼道歉。"],
        "signed_at": "2026-12-02T10:00:00+08:00",
        "performance_checks": ["2026-12-09T10:00:00+08:00"],
    }
    assert httpx.put(f"{base}/agreement", headers=who, json=corrected).status_code == 200
    record = httpx.get(base, headers=who).json()
    assert record["agreement"]["terms"] == corrected["terms"]
    assert sorted((f["kind"], f["due_at"][:10]) for f in record["followups"]) == [
        ("confirmation_window", "2027-01-01"),
        ("performance_check", "2026-12-09"),
    ]
    assert agreements_counted(stack) == before + 1


def test_mediation_is_opened_once_and_only_leadership_changes_the_mediator_to_staff_of_the_station(stack):
    no, holder = accepted_case(stack, "两户人家因楼道堆放杂物发生纠纷，请求派出所调解")
    base = f"{stack['urls']['mediation']}/api/v1/cases/{no}/mediation"
    who = token(stack, holder)
    assert httpx.post(base, json={"mediator_id": "KZ01-MD"}, headers=who).status_code == 201

    # Opening it again is refused, naming the mediator; nothing changes.
    again = httpx.post(base, json={"mediator_id": "KZ01-IN"}, headers=who)
    assert again.status_code == 409 and again.json()["detail"]["error"] == "already_open", again.text
    assert "KZ01-MD" in again.json()["detail"]["message"]
    assert httpx.get(base, headers=who).json()["mediator_id"] == "KZ01-MD"

    change = f"{base}/mediator"
    body = {"mediator_id": "KZ01-IN", "reason": "原调解员休假"}
    officer = httpx.put(change, json=body, headers=who)
    assert officer.status_code == 403 and officer.json()["detail"]["error"] == "forbidden"
    assert httpx.put(change, json=body, headers=token(stack, "KZ02-LD")).status_code == 404
    foreign = httpx.put(change, json=body | {"mediator_id": "KZ02-MD"}, headers=token(stack, "KZ01-LD"))
    assert foreign.status_code == 422 and foreign.json()["detail"]["error"] == "invalid_mediator"
    assert httpx.get(base, headers=who).json()["mediator_id"] == "KZ01-MD"

    done = httpx.put(change, json=body, headers=token(stack, "KZ01-LD"))
    assert done.status_code == 200, done.text
    assert done.json()["previous_mediator_id"] == "KZ01-MD"
    assert httpx.get(base, headers=who).json()["mediator_id"] == "KZ01-IN"
    same = httpx.put(change, json=body, headers=token(stack, "KZ01-LD"))
    assert same.status_code == 409 and same.json()["detail"]["error"] == "same_mediator"

    history = httpx.get(f"{stack['urls']['mediation']}/api/v1/cases/{no}", headers=token(stack, "KZ01-LD")).json()
    (step,) = [h for h in history["history"] if "更换调解员" in (h["reason"] or "")]
    assert step["actor"] == "KZ01-LD" and "KZ01-MD" in step["reason"] and "原调解员休假" in step["reason"]
    audit = httpx.get(
        f"{stack['urls']['mediation']}/api/v1/audit", params={"tracking_no": no}, headers=token(stack, "KZ01-LD")
    ).json()
    assert any(e["action"] == "change_mediator" for e in audit["entries"]), audit

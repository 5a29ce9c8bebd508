"""Void (作废), authorisation before validation, and the smaller items of issue 13, through the
running services: a leader voids a spam or abusive item (audited, clocks stopped, out of the rates,
no result message, follow-ups cancelled, a neutral line for the citizen); a stranger is answered
404 or 403 before any field error; the survey link in e-mails is a real link; citizens are given
the station's own phone; future session and signing dates are refused."""

from __future__ import annotations

import html
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.e2e.helpers import public_events, sql, submit, token, wait_for_status

pytestmark = pytest.mark.e2e
LEADER = "KZ01-LD"
PAST = "2026-11-30T10:00:00+08:00"


def case_url(stack, no: str) -> str:
    return f"{stack['urls']['mediation']}/api/v1/cases/{no}"


def act(stack, no: str, who: str, command: str, **body) -> httpx.Response:
    return httpx.post(f"{case_url(stack, no)}/{command}", json=body, headers=token(stack, who))


def new_case(stack, content: str, **reporter) -> tuple[dict, str]:
    receipt = submit(stack, "KZ01", f"{content}（{uuid.uuid4().hex[:6]}）", reporter=reporter)
    c = wait_for_status(case_url(stack, receipt["tracking_no"]), token(stack, LEADER), "assigned", timeout=15)
    return receipt, c["assignee_id"]


def citizen_view(stack, receipt: dict) -> dict:
    r = httpx.get(
        f"{stack['urls']['intake']}/api/v1/feedback/{receipt['tracking_no']}",
        headers={"X-Access-Code": receipt["access_code"]},
    )
    assert r.status_code == 200, r.text
    return r.json()


def rates(stack) -> dict:
    r = httpx.get(f"{stack['urls']['mediation']}/api/v1/stations/KZ01/rates", headers=token(stack, LEADER))
    assert r.status_code == 200, r.text
    return r.json()


def error(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["detail"]["error"]


def test_a_leader_voids_an_abusive_item_and_it_leaves_the_rates_without_a_message(stack, infra):
    receipt, officer = new_case(stack, "派出所的人都是废物！！！骚扰电话", email="void1@example.com")
    no = receipt["tracking_no"]
    assert act(stack, no, officer, "accept").status_code == 200
    # The acceptance was late: the item counts against the response rate until it is voided.
    sql(infra.dsn, "UPDATE mediation.case_clocks SET breached_at = now() WHERE tracking_no = $1", no)
    before = rates(stack)["response"]

    assert error(act(stack, no, officer, "void", ground="abusive", reason="辱骂")) == (403, "forbidden")
    assert error(act(stack, no, LEADER, "void", ground="abusive", reason="  ")) == (422, "missing_reason")
    done = act(stack, no, LEADER, "void", ground="abusive", reason="辱骂民警，无具体诉求")
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "voided" and done.json()["status_label"] == "已作废"
    assert error(act(stack, no, LEADER, "resolve", summary="x")) == (409, "illegal_transition")

    c = httpx.get(case_url(stack, no), headers=token(stack, LEADER)).json()
    assert c["status"] == "voided" and c["void_ground"] == "abusive"
    assert c["history"][-1]["actor"] == LEADER and "辱骂民警，无具体诉求" in c["history"][-1]["reason"]
    assert all(k["done_at"] for k in c["clocks"])  # every clock stopped
    after = rates(stack)["response"]
    assert after is None or after > before  # the missed acceptance no longer counts

    # The public stream says `closed` with status voided (DESIGN 4.4's types are fixed), no reason.
    closed = [e for e in public_events(infra.bootstrap, no) if e["type"] == "fengqiao.case.closed"]
    assert [e["data"]["status"] for e in closed] == ["voided"]
    assert "辱骂" not in str(closed)

    # The citizen sees a neutral line, and gets no result message and no survey.
    deadline = time.monotonic() + 15
    while (view := citizen_view(stack, receipt))["status"] != "voided":
        assert time.monotonic() < deadline, view
        time.sleep(0.1)
    assert view["status_label"] == "不予受理"
    assert "不予受理" in view["timeline"][-1]["note"] and "辱骂" not in view["timeline"][-1]["note"]
    time.sleep(2)
    to_them = [m for to, m in stack["mail"].messages if "void1@example.com" in to]
    assert to_them and all("已办结" not in str(m["subject"]) for m in to_them)  # the acknowledgement only


def test_voiding_a_mediated_case_cancels_its_followups(stack):
    receipt, officer = new_case(stack, "楼上漏水到我家，协商不成，请求调解")
    no = receipt["tracking_no"]
    assert act(stack, no, officer, "accept").status_code == 200
    base = f"{case_url(stack, no)}/mediation"
    who = token(stack, officer)
    assert httpx.post(base, json={"mediator_id": "KZ01-MD"}, headers=who).status_code == 201
    parties = [
        httpx.post(f"{base}/parties", headers=who, json={"role": role, "name": name}).json()["party_id"]
        for role, name in (("applicant", "周兰"), ("respondent", "吴刚"))
    ]
    agreement = {
        "facts": "漏水",
        "dispute": "维修",
        "terms": ["吴刚负责维修。"],
        "performance": {"how": "自行维修", "where": "矿工新村", "when": "一周内"},
        "signatures": [{"party_id": p, "signed_at": PAST} for p in parties],
        "signed_at": PAST,
        "performance_checks": [(datetime.now(UTC) + timedelta(days=7)).isoformat()],
    }
    assert httpx.put(f"{base}/agreement", headers=who, json=agreement).status_code == 200
    assert act(stack, no, LEADER, "void", ground="test", reason="系统测试数据").status_code == 200
    followups = httpx.get(base, headers=token(stack, LEADER)).json()["followups"]
    assert len(followups) == 2 and all(f["cancelled_at"] and f["done_at"] for f in followups)


def test_strangers_are_refused_before_their_bodies_are_read(stack):
    receipt, officer = new_case(stack, "小区门口路灯坏了一个月")
    no = receipt["tracking_no"]
    other = "KZ02-P1"  # another station's officer
    bystander = next(s for s in ("KZ01-P1", "KZ01-P2", "KZ01-P3") if s != officer)
    url = case_url(stack, no)
    # A leader-only command with an invalid body, from an officer: 403, not 422.
    assert error(act(stack, no, officer, "void", bogus=1)) == (403, "forbidden")
    assert error(act(stack, no, officer, "close", bogus=1)) == (403, "forbidden")
    assert error(act(stack, no, bystander, "resolve")) == (403, "not_your_case")
    cmd = httpx.post(f"{url}/commands", json={"command": "reopen", "x": 1}, headers=token(stack, officer))
    assert error(cmd) == (403, "forbidden")
    # Another station's officer posting garbage, or no JSON at all: 404.
    assert error(act(stack, no, other, "void", ground=["?"])) == (404, "not_found")
    garbage = {"content": b"{not json", "headers": {**token(stack, other), "content-type": "application/json"}}
    assert error(httpx.post(f"{url}/resolve", **garbage)) == (404, "not_found")
    assert error(httpx.post(f"{url}/commands", **garbage)) == (404, "not_found")
    assert error(httpx.put(f"{url}/mediation/agreement", **garbage)) == (404, "not_found")
    assert error(httpx.post(f"{url}/clocks/accept/extend", json={}, headers=token(stack, other))) == (404, "not_found")
    assert error(httpx.put(f"{url}/classification", json={}, headers=token(stack, bystander))) == (
        403,
        "not_your_case",
    )
    assert error(httpx.put(f"{url}/mediation/mediator", json={}, headers=token(stack, officer))) == (403, "forbidden")
    # Those who may act still get the field error for a bad body, malformed JSON included.
    assert error(act(stack, no, LEADER, "void", ground="spam")) == (422, "invalid_field")
    own = {"content": b"{not json", "headers": {**token(stack, LEADER), "content-type": "application/json"}}
    assert error(httpx.post(f"{url}/void", **own)) == (422, "invalid_field")


def test_the_result_email_has_a_real_survey_link_and_the_station_phone(stack):
    receipt, officer = new_case(stack, "夜里广场舞音响太吵", email="link1@example.com")
    no = receipt["tracking_no"]
    assert act(stack, no, officer, "accept").status_code == 200
    assert act(stack, no, officer, "resolve", summary="已约谈广场舞负责人，晚九点后停止。").status_code == 200
    (mail,) = stack["mail"].wait_for(1, where=lambda m: no in str(m[1]["subject"]) and "评价" in str(m[1]["subject"]))
    page = mail[1].get_body(("html",)).get_content()
    text = mail[1].get_body(("plain",)).get_content()
    survey = next(w for w in text.split() if "/survey?t=" in w)
    assert f'<a href="{html.escape(survey)}">' in page
    assert "0516-87650110" in text and "0516-87650110" in page  # KZ01's own phone, not 110
    ack = stack["mail"].wait_for(1, where=lambda m: no in str(m[1]["subject"]) and "已受理" in str(m[1]["subject"]))
    ack_text = ack[0][1].get_body(("plain",)).get_content()
    assert "咨询电话 0516-87650110" in ack_text and "紧急情况请拨打110" in ack_text


def test_future_session_and_signing_dates_are_refused_naming_the_field(stack):
    receipt, officer = new_case(stack, "邻居家狗天天叫，沟通无果，请求调解")
    no = receipt["tracking_no"]
    assert act(stack, no, officer, "accept").status_code == 200
    base = f"{case_url(stack, no)}/mediation"
    who = token(stack, officer)
    assert httpx.post(base, json={"mediator_id": "KZ01-MD"}, headers=who).status_code == 201
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    session = httpx.post(f"{base}/sessions", headers=who, json={"scheduled_at": tomorrow, "place": "调解室"})
    assert session.status_code == 201  # a session is scheduled ahead; its minutes are not
    sid = session.json()["session_id"]
    r = httpx.post(f"{base}/sessions/{sid}/minutes", headers=who, json={"minutes": "调解记录", "held_at": tomorrow})
    assert r.status_code == 422 and r.json()["detail"]["field"] == "held_at"
    assert "held_at" in r.json()["detail"]["message"] and "不能晚于当前时间" in r.json()["detail"]["message"]
    ok = httpx.post(f"{base}/sessions/{sid}/minutes", headers=who, json={"minutes": "调解记录", "held_at": PAST})
    assert ok.status_code == 200, ok.text
    agreement = {
        "facts": "狗叫",
        "dispute": "噪声",
        "terms": ["夜间看管好狗。"],
        "performance": {"how": "自觉", "where": "本小区", "when": "即日起"},
        "signatures": [{"party_id": 1, "signed_at": PAST}, {"party_id": 2, "signed_at": PAST}],
        "signed_at": tomorrow,
    }
    r = httpx.put(f"{base}/agreement", headers=who, json=agreement)
    assert r.status_code == 422 and r.json()["detail"]["field"] == "signed_at", r.text
    assert "不能晚于当前时间" in r.json()["detail"]["message"]

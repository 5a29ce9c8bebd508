"""The case lifecycle through the real services, broker and database: a neighbour dispute by
hotline is accepted, mediated, resolved with a result for the citizen, visited and closed;
another case is returned, reassigned, misses its deadline, is escalated and supervised, then
resolved. Clocks are driven by moving deadlines in the database; the services' timers fire."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
import pytest

from tests.e2e.helpers import console_notifications, public_events, sql, token

pytestmark = pytest.mark.e2e


def hotline(stack, station: str, summary: str, phone: str) -> dict:
    r = httpx.post(
        f"{stack['urls']['intake']}/api/v1/hotline/calls",
        headers=token(stack, "integration"),
        json={
            "call_id": f"CTI-{uuid.uuid4().hex[:10]}",
            "station": station,
            "caller_number": phone,
            "line": "96110-1",
            "started_at": "2026-11-28T09:05:00+08:00",
            "summary": summary,
        },
    )
    assert r.status_code in (200, 201, 202), r.text
    return r.json()


def web(stack, station: str, content: str, phone: str) -> dict:
    r = httpx.post(
        f"{stack['urls']['intake']}/api/v1/feedback",
        json={"station": station, "content": content, "reporter": {"phone": phone}},
    )
    assert r.status_code == 202, r.text
    return r.json()


def case(stack, tracking_no: str, who: str, *, status: str | None = None, timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = httpx.get(f"{stack['urls']['mediation']}/api/v1/cases/{tracking_no}", headers=token(stack, who))
        if r.status_code == 200 and (status is None or r.json()["status"] == status):
            return r.json()
        assert time.monotonic() < deadline, f"case {tracking_no}: {r.status_code} {r.text[:300]}"
        time.sleep(0.1)


def act(stack, tracking_no: str, who: str, command: str, **body) -> httpx.Response:
    return httpx.post(
        f"{stack['urls']['mediation']}/api/v1/cases/{tracking_no}/{command}", json=body, headers=token(stack, who)
    )


def citizen_view(stack, receipt: dict) -> dict:
    return httpx.get(
        f"{stack['urls']['intake']}/api/v1/feedback/{receipt['tracking_no']}",
        headers={"X-Access-Code": receipt["access_code"]},
    ).json()


def wait_citizen(stack, receipt: dict, status: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        view = citizen_view(stack, receipt)
        if view["status"] == status:
            return view
        assert time.monotonic() < deadline, f"citizen sees {view['status']}, not {status}"
        time.sleep(0.1)


def other_officer(stack, station: str, not_: str) -> str:
    return next(s for s in (f"{station}-P1", f"{station}-P2", f"{station}-P3", f"{station}-P4") if s != not_)


def test_a_neighbour_dispute_by_hotline_is_mediated_resolved_visited_and_closed(stack, infra):
    receipt = hotline(stack, "KZ01", "矿工新村3栋楼上邻居家长期漏水，双方多次争吵，来电请求派出所调解", "13912340001")
    no = receipt["tracking_no"]
    c = case(stack, no, "KZ01-LD")
    assert c["needs_mediation"] and c["status"] == "assigned"
    holder = c["assignee_id"]
    clocks = {k["clock"]: k for k in c["clocks"]}
    assert set(clocks) == {"accept", "resolve"} and "30日" in clocks["resolve"]["note"]

    # Someone else cannot accept it; the holder can, once.
    assert act(stack, no, other_officer(stack, "KZ01", holder), "accept").status_code == 403
    assert act(stack, no, holder, "accept").json()["status"] == "accepted"
    again = act(stack, no, holder, "accept")
    assert again.status_code == 409 and again.json()["detail"]["error"] == "illegal_transition"
    wait_citizen(stack, receipt, "accepted")

    base = f"{stack['urls']['mediation']}/api/v1/cases/{no}/mediation"
    who = token(stack, holder)
    assert httpx.post(base, json={"mediator_id": "KZ02-MD"}, headers=who).status_code == 422  # not this station's
    opened = httpx.post(base, json={"mediator_id": "KZ01-MD"}, headers=who)
    assert opened.status_code == 201, opened.text
    assert case(stack, no, "KZ01-LD")["status"] == "mediating"
    applicant = httpx.post(
        f"{base}/parties",
        headers=who,
        json={
            "role": "applicant",
            "name": "王秀英",
            "phone": "13912340001",
            "id_no": "410102195803151224",
            "address": "矿工新村3栋201",
        },
    ).json()["party_id"]
    respondent = httpx.post(
        f"{base}/parties",
        headers=who,
        json={"role": "respondent", "name": "赵大勇", "phone": "13912349999", "address": "矿工新村3栋301"},
    ).json()["party_id"]
    for day, minutes in (
        ("2026-11-30T09:30:00+08:00", "第一次调解：双方同意请物业查明漏水原因"),
        ("2026-12-01T09:30:00+08:00", "第二次调解：楼上住户同意维修并赔偿800元，签订调解协议"),
    ):
        r = httpx.post(
            f"{base}/sessions",
            headers=who,
            json={
                "scheduled_at": day,
                "place": "矿区派出所人民调解室",
                "attendees": [f"party:{applicant}", f"party:{respondent}", "KZ01-MD"],
            },
        )
        assert r.status_code == 201, r.text
        assert (
            httpx.post(
                f"{base}/sessions/{r.json()['session_id']}/minutes",
                headers=who,
                json={"minutes": minutes, "held_at": day},
            ).status_code
            == 200
        )
    agreement = {
        "facts": "赵大勇家卫生间防水层老化，导致楼下王秀英家天花板长期渗水。",
        "dispute": "维修责任和损失赔偿。",
        "terms": ["赵大勇于2026年12月10日前请人修复卫生间防水层。", "赵大勇赔偿王秀英装修损失800元。"],
        "performance": {"how": "现金当面支付，维修由赵大勇负责", "where": "矿工新村3栋", "when": "2026年12月10日前"},
        "signed_at": "2026-12-01T11:00:00+08:00",
        "performance_checks": ["2026-12-11T10:00:00+08:00"],
    }
    unsigned = httpx.put(
        f"{base}/agreement",
        headers=who,
        json=agreement
        | {
            "signatures": [
                {"party_id": applicant, "signed_at": "2026-12-01T11:00:00+08:00"},
                {"party_id": applicant, "signed_at": "2026-12-01T11:00:00+08:00"},
            ]
        },
    )
    assert unsigned.status_code == 422 and unsigned.json()["detail"]["error"] == "unsigned"
    r = httpx.put(
        f"{base}/agreement",
        headers=who,
        json=agreement
        | {
            "signatures": [
                {"party_id": applicant, "signed_at": "2026-12-01T11:00:00+08:00"},
                {"party_id": respondent, "signed_at": "2026-12-01T11:05:00+08:00"},
            ]
        },
    )
    assert r.status_code == 200, r.text
    record = httpx.get(base, headers=who).json()
    assert record["outcome"] == "agreement" and [p["name"] for p in record["parties"]] == ["王秀英", "赵大勇"]
    assert [s["minutes"][:5] for s in record["sessions"]] == ["第一次调解", "第二次调解"]
    assert sorted(f["kind"] for f in record["followups"]) == ["confirmation_window", "performance_check"]
    window = next(f for f in record["followups"] if f["kind"] == "confirmation_window")
    assert window["due_at"].startswith("2026-12-31")  # 30 days after signing
    # Sealed at rest: no name or ID number in the database in the clear.
    stored = sql(infra.dsn, "SELECT sealed FROM mediation.mediation_parties WHERE tracking_no = $1", no)
    assert stored and all("王秀英".encode() not in r["sealed"] and b"410102" not in r["sealed"] for r in stored)
    assert act(stack, no, holder, "resolve").status_code == 422  # the result for the citizen is required
    summary = "经两次调解，楼上住户已同意维修防水并赔偿800元，双方签订调解协议。"
    assert act(stack, no, holder, "resolve", summary=summary).json()["status"] == "resolved"
    view = wait_citizen(stack, receipt, "resolved")
    assert summary in view["timeline"][-1]["note"]

    # The return visit is by someone other than the handler.
    assert act(stack, no, holder, "visit", result="satisfied").json()["detail"]["error"] == "same_handler"
    assert act(stack, no, "KZ01-IN", "visit", result="satisfied").json()["status"] == "visited"
    # The dispute is not closed while its follow-up is pending: the results are recorded first.
    assert act(stack, no, "KZ01-LD", "close").json()["detail"]["error"] == "followups_pending"
    for f in record["followups"]:
        done = httpx.post(f"{base}/followups/{f['followup_id']}", json={"result": "已履行"}, headers=who)
        assert done.status_code == 200, done.text
    assert act(stack, no, "KZ01-LD", "close").json()["status"] == "closed"
    wait_citizen(stack, receipt, "closed")

    c = case(stack, no, "KZ01-LD")
    steps = [h["status"] for h in c["history"]]
    assert steps == ["assigned", "accepted", "mediating", "mediating", "mediating", "resolved", "visited", "closed"]
    assert [h["event"] for h in c["history"]].count("mediation_scheduled") == 3  # opened, two sessions
    assert all(k["done_at"] for k in c["clocks"]) and {k["clock"] for k in c["clocks"]} == {
        "accept",
        "resolve",
        "visit",
    }
    assert not any(k["breached_at"] for k in c["clocks"])

    # The citizen is told the result on their phone; the public stream carries no free text.
    (sms,) = stack["sms"].wait_for(1, where=lambda r: no in r.json()["text"] and "已办结" in r.json()["text"])
    assert summary in sms.json()["text"] and sms.json()["to"] == "+8613912340001" and "/survey?t=" in sms.json()["text"]
    stream = public_events(infra.bootstrap, no)
    types = [d["type"].rsplit(".", 1)[1] for d in stream]
    for step in ("received", "triaged", "assigned", "accepted", "mediation_scheduled", "resolved", "visited", "closed"):
        assert step in types
    raw = json.dumps(stream, ensure_ascii=False)
    assert "800元" not in raw and "13912340001" not in raw and "物业查明" not in raw  # summary, phone, minutes
    assert "王秀英" not in raw and "410102" not in raw
    # Another station's staff see nothing of it.
    assert (
        httpx.get(f"{stack['urls']['mediation']}/api/v1/cases/{no}", headers=token(stack, "KZ02-LD")).status_code == 404
    )
    assert act(stack, no, "KZ02-LD", "reopen").status_code == 404


def test_a_returned_case_is_reassigned_misses_its_deadline_is_escalated_and_supervised_then_resolved(stack, infra):
    receipt = web(stack, "KZ02", "新村市场北门的路灯坏了半个月了，晚上很黑，希望尽快修好", "13912340002")
    no = receipt["tracking_no"]
    first = case(stack, no, "KZ02-LD")["assignee_id"]
    assert act(stack, no, first, "return").status_code == 422  # a reason is required
    assert act(stack, no, first, "return", reason="路灯属于市政，不是本人片区").json()["status"] == "returned"
    assert console_notifications(stack, "KZ02-LD", "returned", no)
    assert act(stack, no, first, "review_return", approve=True, assignee_id="KZ02-P4").status_code == 403
    second = other_officer(stack, "KZ02", first)
    r = act(stack, no, "KZ02-LD", "review_return", approve=True, assignee_id=second, reason="同意，改派")
    assert r.json() == {
        "tracking_no": no,
        "status": "assigned",
        "status_label": "已分派",
        "assignee_id": second,
        "event": "reassigned",
    }
    assert console_notifications(stack, second, "reassigned", no)
    assert act(stack, no, second, "accept").json()["status"] == "accepted"

    # The resolution deadline passes: the service's clock marks it, escalates to the leader, counts it.
    series = 'fengqiao_sla_breaches_total{clock="resolve",station="KZ02"}'

    def breaches() -> float:
        for line in httpx.get(f"{stack['urls']['mediation']}/metrics").text.splitlines():
            if line.startswith(series + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = breaches()
    case(stack, no, "KZ02-LD")  # assigned, with its clocks
    sql(
        infra.dsn,
        "UPDATE mediation.case_clocks SET due_at = now() - interval '1 minute', "
        "original_due_at = now() - interval '1 minute', remind_at = now() - interval '2 minutes' "
        "WHERE tracking_no = $1 AND clock = 'resolve'",
        no,
    )
    assert console_notifications(stack, "KZ02-LD", "escalated", no, timeout=20), "the leader was not told"
    c = case(stack, no, "KZ02-LD")
    resolve = next(k for k in c["clocks"] if k["clock"] == "resolve")
    assert resolve["breached_at"] and resolve["supervise_at"] and c["escalated"]
    assert breaches() == before + 1
    assert "overdue" in [h["event"] for h in c["history"]]

    # Five working days later, bureau supervision (督办).
    sql(
        infra.dsn,
        "UPDATE mediation.case_clocks SET supervise_at = now() - interval '1 second' "
        "WHERE tracking_no = $1 AND clock = 'resolve'",
        no,
    )
    assert console_notifications(stack, "BUREAU-01", "supervision", no, timeout=20), "no supervision for the bureau"

    # An extension needs the leader and a reason; the missed deadline stays missed.
    url = f"{stack['urls']['mediation']}/api/v1/cases/{no}/clocks/resolve/extend"
    later = "2030-01-01T00:00:00+08:00"
    assert (
        httpx.post(url, json={"due_at": later, "reason": "等待市政"}, headers=token(stack, second)).status_code == 403
    )
    assert (
        httpx.post(url, json={"due_at": later, "reason": "等待市政维修"}, headers=token(stack, "KZ02-LD")).status_code
        == 200
    )
    resolve = next(k for k in case(stack, no, "KZ02-LD")["clocks"] if k["clock"] == "resolve")
    assert (
        resolve["breached_at"]
        and resolve["extended_by"] == "KZ02-LD"
        and resolve["original_due_at"] != resolve["due_at"]
    )

    assert act(stack, no, second, "resolve", summary="已联系市政部门修复路灯。").json()["status"] == "resolved"
    assert breaches() == before + 1  # fired once, whatever the timer loop did since
    events = [h["event"] for h in case(stack, no, "KZ02-LD")["history"]]
    assert events.count("overdue") == 1 and events.count("escalated") == 1  # supervision: one more step
    assert [h for h in case(stack, no, "KZ02-LD")["history"] if "督办" in (h["reason"] or "")]


def test_a_dissatisfied_survey_answer_reopens_the_case_for_the_leader_with_the_reason(stack):
    import base64
    import os

    from fengqiao import links

    receipt = web(stack, "KZ01", "矿山路12号门口的井盖松动了，车压过去哐哐响，晚上很吵", "13912340003")
    no = receipt["tracking_no"]
    holder = case(stack, no, "KZ01-LD")["assignee_id"]
    assert act(stack, no, holder, "accept").status_code == 200
    assert act(stack, no, holder, "resolve", summary="已通知市政加固井盖。").status_code == 200
    token_ = links.sign(base64.b64decode(os.environ["FENGQIAO_LINK_KEY"]), "survey", no, valid_for_s=3600)
    r = httpx.post(
        f"{stack['urls']['intake']}/survey",
        data={"t": token_, "result": "dissatisfied", "reason": "井盖还是松的，没有人来修"},
    )
    assert r.status_code == 200
    c = case(stack, no, "KZ01-LD", status="reopened")
    assert c["visit_result"] == "dissatisfied"
    assert any("井盖还是松的" in (h["reason"] or "") and h["actor"] == "citizen:survey" for h in c["history"])
    # The leadership is told once, with the citizen's reason; the answer counts toward satisfaction.
    (told,) = console_notifications(stack, "KZ01-LD", "dissatisfied", no)
    assert "井盖还是松的" in told["body"] and not console_notifications(stack, "KZ01-LD", "reopened", no, timeout=1)
    assert (
        'fengqiao_survey_responses_total{result="dissatisfied",station="KZ01"}'
        in httpx.get(f"{stack['urls']['notify']}/metrics").text
    )
    resolve = next(k for k in c["clocks"] if k["clock"] == "resolve")
    assert resolve["done_at"] is None and "重新办理" in resolve["note"]  # a new resolution clock


def test_station_isolation_is_enforced_by_postgresql_and_every_view_and_change_is_audited(stack, infra):
    receipt = web(stack, "KZ02", "新华街菜市场门口早上经常有人乱停三轮车，堵住了路口", "13912340004")
    no = receipt["tracking_no"]
    holder = case(stack, no, "KZ02-LD")["assignee_id"]
    assert act(stack, no, holder, "accept").status_code == 200

    async def as_staff_of(station: str) -> dict:
        import asyncpg

        conn = await asyncpg.connect(infra.dsn, server_settings={"search_path": "mediation"})
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute("SET LOCAL ROLE fengqiao_staff_api")
            # as a person of the station (a request without a staff id opens no case: finding 6)
            await conn.execute(
                "SELECT set_config('fengqiao.station', $1, true), set_config('fengqiao.staff', $2, true)",
                station,
                f"{station}-P2",
            )
            return {
                "cases": await conn.fetchval("SELECT count(*) FROM cases WHERE tracking_no = $1", no),
                "history": await conn.fetchval("SELECT count(*) FROM case_history WHERE tracking_no = $1", no),
                "clocks": await conn.fetchval("SELECT count(*) FROM case_clocks WHERE tracking_no = $1", no),
                "updated": await conn.execute("UPDATE cases SET status = 'closed' WHERE tracking_no = $1", no),
                "foreign": await conn.fetchval("SELECT count(*) FROM cases WHERE station <> $1", station),
            }
        finally:
            await tx.rollback()  # look, never touch
            await conn.close()

    other = asyncio.run(as_staff_of("KZ01"))
    assert other == {"cases": 0, "history": 0, "clocks": 0, "updated": "UPDATE 0", "foreign": 0}
    own = asyncio.run(as_staff_of("KZ02"))  # rolled back: nothing was really closed
    assert own["cases"] == 1 and own["history"] >= 2 and own["clocks"] == 2 and own["updated"] == "UPDATE 1"
    assert own["foreign"] == 0
    assert case(stack, no, "KZ02-LD")["status"] == "accepted"

    # Through the API: another station's leader can neither read nor change it.
    assert (
        httpx.get(f"{stack['urls']['mediation']}/api/v1/cases/{no}", headers=token(stack, "KZ01-LD")).status_code == 404
    )
    assert act(stack, no, "KZ01-LD", "reassign", assignee_id="KZ01-P1").status_code == 404
    listed = httpx.get(
        f"{stack['urls']['mediation']}/api/v1/cases?sort=-submitted_at", headers=token(stack, "KZ01-LD")
    ).json()["cases"]
    assert no not in {c["tracking_no"] for c in listed}
    assert all(c["station"] == "KZ01" for c in listed)

    # Transfer to KZ01: the first station no longer sees it, the second does.
    assert act(stack, no, "KZ02-LD", "transfer", to_station="KZ01", reason="属于矿区派出所辖区").status_code == 200
    assert (
        httpx.get(f"{stack['urls']['mediation']}/api/v1/cases/{no}", headers=token(stack, "KZ02-LD")).status_code == 404
    )
    moved = case(stack, no, "KZ01-LD")
    assert moved["station"] == "KZ01" and moved["assignee_id"] == "KZ01-LD" and moved["transferred_from"] == "KZ02"
    wait_citizen(stack, receipt, "transferred")

    trail = httpx.get(
        f"{stack['urls']['mediation']}/api/v1/audit", params={"tracking_no": no}, headers=token(stack, "BUREAU-01")
    ).json()["entries"]
    actions = [(e["staff_id"], e["action"]) for e in reversed(trail)]
    assert (holder, "accept") in actions and ("KZ02-LD", "transfer") in actions and ("KZ02-LD", "view_case") in actions
    assert httpx.get(f"{stack['urls']['mediation']}/api/v1/audit", headers=token(stack, holder)).status_code == 403


def test_an_unloaded_year_is_flagged_and_loading_its_schedule_clears_it(stack, infra, tmp_path):
    import os
    import subprocess
    import sys
    from datetime import date

    from mediation.calendar import WorkCalendar

    def missing() -> float:
        for line in httpx.get(f"{stack['urls']['mediation']}/metrics").text.splitlines():
            if line.startswith("fengqiao_calendar_years_missing "):
                return float(line.rsplit(" ", 1)[1])
        return -1.0

    years = WorkCalendar().missing_years(date.today())
    deadline = time.monotonic() + 15
    while missing() != len(years):
        assert time.monotonic() < deadline, f"gauge {missing()} != {len(years)} missing years {years}"
        time.sleep(0.5)
    if not years:
        pytest.skip("every year within 60 days is known to chinese-calendar")
    schedule = tmp_path / "holidays.csv"
    schedule.write_text("date,kind,name\n" + "".join(f"{y}-12-31,holiday,测试\n" for y in years), encoding="utf-8")
    cli = os.path.join(os.path.dirname(sys.executable), "fengqiao")
    out = subprocess.run(
        [cli, "calendar", "load", str(schedule)],
        env={**os.environ, "DATABASE_URL": infra.dsn},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0 and f"loaded {len(years)} days" in out.stdout, out.stderr
    deadline = time.monotonic() + 15
    while missing() != 0:
        assert time.monotonic() < deadline, "the gauge did not clear after loading the schedule"
        time.sleep(0.5)


def test_opinions_about_the_station_become_rectification_measures_verified_by_someone_else(stack, infra):
    base = f"{stack['urls']['mediation']}/api/v1/rectifications"
    a = web(stack, "KZ01", "建议户籍窗口中午不要关门，上班族只能中午去办事", "13912340006")
    b = web(stack, "KZ01", "建议户籍窗口午休时间也开放，我们上班的人很不方便", "13912340007")
    for r in (a, b):
        case(stack, r["tracking_no"], "KZ01-LD")
    # Nothing sits in a drawer: without a measure they are listed (here with days=0).
    waiting = httpx.get(f"{base}/unaddressed", params={"days": 0}, headers=token(stack, "KZ01-LD")).json()["items"]
    assert {a["tracking_no"], b["tracking_no"]} <= {i["tracking_no"] for i in waiting}

    body = {
        "title": "户籍窗口中午错时服务",
        "description": "工作日12:00-14:00安排一名民警值守户籍窗口",
        "owner_id": "KZ01-P2",
        "due_at": "2030-01-01T00:00:00+08:00",
        "tracking_nos": [a["tracking_no"], b["tracking_no"]],
    }
    assert httpx.post(base, json=body, headers=token(stack, "KZ01-P1")).status_code == 403
    assert (
        httpx.post(base, json=body | {"tracking_nos": ["FQNOSUCH1"]}, headers=token(stack, "KZ01-LD")).status_code
        == 422
    )
    created = httpx.post(base, json=body, headers=token(stack, "KZ01-LD"))
    assert created.status_code == 201, created.text
    mid = created.json()["measure_id"]
    waiting = httpx.get(f"{base}/unaddressed", params={"days": 0}, headers=token(stack, "KZ01-LD")).json()["items"]
    assert a["tracking_no"] not in {i["tracking_no"] for i in waiting}

    assert (
        httpx.post(f"{base}/{mid}/progress", json={"note": "已排班"}, headers=token(stack, "KZ01-P2")).status_code
        == 200
    )
    assert httpx.post(f"{base}/{mid}/verify", json={"note": "x"}, headers=token(stack, "KZ01-LD")).status_code == 409
    assert (
        httpx.post(f"{base}/{mid}/complete", json={"evidence": "排班表"}, headers=token(stack, "KZ01-LD")).status_code
        == 403
    )
    assert (
        httpx.post(
            f"{base}/{mid}/complete", json={"evidence": "已公示中午排班表，12月起执行"}, headers=token(stack, "KZ01-P2")
        ).status_code
        == 200
    )
    verified = httpx.post(f"{base}/{mid}/verify", json={"note": "现场查看，落实到位"}, headers=token(stack, "KZ01-IN"))
    assert verified.status_code == 200 and sorted(verified.json()["citizens_told"]) == sorted(
        [a["tracking_no"], b["tracking_no"]]
    )
    measure = httpx.get(f"{base}/{mid}", headers=token(stack, "KZ01-LD")).json()
    assert measure["status"] == "verified" and measure["verified_by"] == "KZ01-IN" and len(measure["progress"]) == 1
    assert httpx.get(f"{base}/{mid}", headers=token(stack, "KZ02-LD")).status_code == 404  # another station

    # The citizens are told: on their tracking page, and by SMS.
    view = wait_note = None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        view = citizen_view(stack, a)
        wait_note = [t for t in view["timeline"] if "已整改" in (t["note"] or "")]
        if wait_note:
            break
        time.sleep(0.2)
    assert wait_note and "户籍窗口中午错时服务" in wait_note[0]["note"]
    no_b = b["tracking_no"]
    (told,) = stack["sms"].wait_for(1, where=lambda r: no_b in r.json()["text"] and "已整改" in r.json()["text"])
    assert "户籍窗口中午错时服务" in told.json()["text"]

    rates = httpx.get(
        f"{stack['urls']['mediation']}/api/v1/stations/KZ01/rates", headers=token(stack, "KZ01-LD")
    ).json()
    assert set(rates) == {"station", "days", "response", "resolution", "on_time", "satisfaction"}
    assert 0 <= rates["resolution"] <= 1
    assert (
        httpx.get(
            f"{stack['urls']['mediation']}/api/v1/stations/KZ01/rates", headers=token(stack, "KZ02-LD")
        ).status_code
        == 404
    )
    deadline = time.monotonic() + 15
    while True:
        text = httpx.get(f"{stack['urls']['mediation']}/metrics").text
        if (
            'fengqiao_station_rate{rate="resolution",station="KZ01"}' in text
            and 'fengqiao_rectification_measures{state="open",station="KZ01"}' in text
        ):
            break
        assert time.monotonic() < deadline, "station rates or rectification measures are not exported"
        time.sleep(0.5)


def test_more_information_is_asked_of_the_citizen_and_a_repeat_is_merged_by_hand(stack, infra):
    first = web(stack, "KZ02", "新村市场西侧的下水道堵了一个星期，污水漫到路面上，气味很大", "13912340008")
    repeat = web(stack, "KZ02", "菜场旁边臭水沟冒水，走路都没法走", "13912340009")
    holder = case(stack, first["tracking_no"], "KZ02-LD")["assignee_id"]
    case(stack, repeat["tracking_no"], "KZ02-LD")
    assert act(stack, first["tracking_no"], holder, "accept").status_code == 200
    assert act(stack, first["tracking_no"], holder, "fly").json()["detail"]["error"] == "unknown_command"
    # the same command through the typed endpoint the console's forms use (the command named in the body)
    r = httpx.post(
        f"{stack['urls']['mediation']}/api/v1/cases/{first['tracking_no']}/commands",
        json={"command": "request_info", "text": "请提供堵塞位置的照片或具体门牌号"},
        headers=token(stack, holder),
    )
    assert r.json()["status"] == "in_progress"
    view = wait_citizen(stack, first, "in_progress")
    assert "需要您补充：请提供堵塞位置的照片" in view["timeline"][-1]["note"]
    no = first["tracking_no"]
    (asked,) = stack["sms"].wait_for(1, where=lambda r: no in r.json()["text"] and "需要您补充" in r.json()["text"])
    assert "请提供堵塞位置的照片或具体门牌号" in asked.json()["text"] and asked.json()["to"] == "+8613912340008"

    assert act(stack, repeat["tracking_no"], "KZ02-LD", "merge", into=first["tracking_no"]).json()["status"] == "merged"
    wait_citizen(stack, repeat, "merged")
    listed = httpx.get(
        f"{stack['urls']['mediation']}/api/v1/cases?sort=-submitted_at", headers=token(stack, "KZ02-LD")
    ).json()["cases"]
    primary = next(c for c in listed if c["tracking_no"] == first["tracking_no"])
    assert repeat["tracking_no"] in primary["duplicates"]
    merged = case(stack, repeat["tracking_no"], "KZ02-LD")
    assert all(k["done_at"] for k in merged["clocks"])  # a merged case's clocks stop


def test_a_classification_corrected_in_the_console_reaches_triage_as_a_labelled_example(stack, infra):
    receipt = web(stack, "KZ01", "小区里有人养了十几条狗，天天叫，还咬伤过小孩，跟主人说了也不管", "13912340010")
    no = receipt["tracking_no"]
    c = case(stack, no, "KZ01-LD")
    url = f"{stack['urls']['mediation']}/api/v1/cases/{no}/classification"
    body = {"category": "neighbor_dispute", "urgency": "high", "reason": "养犬纠纷属于邻里纠纷，已有人受伤"}
    stranger = other_officer(stack, "KZ01", c["assignee_id"])
    assert httpx.put(url, json=body, headers=token(stack, stranger)).status_code in (403, 404)
    assert httpx.put(url, json={"reason": "x"}, headers=token(stack, "KZ01-LD")).status_code == 422
    assert httpx.put(url, json=body | {"category": "aliens"}, headers=token(stack, "KZ01-LD")).status_code == 422
    r = httpx.put(url, json=body, headers=token(stack, "KZ01-LD"))
    assert r.status_code == 200, r.text
    c = case(stack, no, "KZ01-LD")
    assert (c["category"], c["urgency"], c["needs_mediation"]) == ("neighbor_dispute", "high", True)
    deadline = time.monotonic() + 10
    while not (rows := sql(infra.dsn, "SELECT * FROM triage.examples WHERE tracking_no = $1", no)):
        assert time.monotonic() < deadline, "triage did not receive the correction"
        time.sleep(0.2)
    assert (rows[0]["category"], rows[0]["urgency"], rows[0]["corrected_by"]) == ("neighbor_dispute", "high", "KZ01-LD")
    assert "13912340010" not in rows[0]["text"]

"""Triage through the real broker and database: classification with reasons and model version,
merges of repeats, early-warning alerts, assignment rules, deployment rules, corrections and
retraining."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from fengqiao.events import CONTENT_TYPE, EventTypes, Topics, TriageCorrected, new_event
from tests.e2e import helpers
from tests.e2e.helpers import console_notifications, read_public_stream, sql, token

pytestmark = pytest.mark.e2e


def submit(
    stack,
    station: str,
    content: str,
    *,
    phone: str | None = None,
    address: str | None = None,
    confidential: bool = False,
) -> dict:
    return helpers.submit(
        stack, station, content, address=address, reporter={"phone": phone or "", "confidential": confidential}
    )


def settled(stack, receipt: dict, timeout: float = 15) -> dict:
    """Wait until triage has assigned or merged the item; returns the citizen's view."""
    url = f"{stack['urls']['intake']}/api/v1/feedback/{receipt['tracking_no']}"
    deadline = time.monotonic() + timeout
    body = {}
    while time.monotonic() < deadline:
        body = httpx.get(url, headers={"X-Access-Code": receipt["access_code"]}).json()
        if body.get("status") in ("assigned", "merged"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"not assigned or merged within {timeout}s: {body}")


def decision(stack, tracking_no: str, staff: str) -> dict:
    r = httpx.get(f"{stack['urls']['triage']}/api/v1/triage/decisions/{tracking_no}", headers=token(stack, staff))
    assert r.status_code == 200, r.text
    return r.json()


def metric(stack, service: str, series: str) -> float:
    for line in httpx.get(f"{stack['urls'][service]}/metrics").text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def metric_sum(stack, service: str, name: str, **labels: str) -> float:
    """The sum of a metric's series whose labels include `labels`."""
    total = 0.0
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    for line in httpx.get(f"{stack['urls'][service]}/metrics").text.splitlines():
        if line.startswith(name + "{") and all(w in line for w in wanted):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_an_urgent_item_is_classified_with_reasons_and_model_version_and_the_leader_is_told(stack):
    receipt = submit(stack, "KZ01", "矿山路菜市场门口有人拿刀威胁摊主，周围很多人围观，请马上来人")
    settled(stack, receipt)
    d = decision(stack, receipt["tracking_no"], "KZ01-LD")
    assert d["urgency"] == "urgent" and d["category"] == "public_order"
    assert d["model_version"].startswith("police-")
    assert any(r.startswith("rule:urgency=urgent") for r in d["reasons"])
    assert set(d["confidences"]) == {"type", "category", "urgency"} and -1 <= d["sentiment"] <= 1
    assert d["assignment"]["reason"].startswith("rule:urgent_on_duty_now;roster:on_duty")
    urgent = [
        n for n in console_notifications(stack, "KZ01-LD", "urgent") if n["tracking_no"] == receipt["tracking_no"]
    ]
    assert len(urgent) == 1 and "紧急" in urgent[0]["title"]
    # Another station's staff cannot read the decision.
    r = httpx.get(
        f"{stack['urls']['triage']}/api/v1/triage/decisions/{receipt['tracking_no']}", headers=token(stack, "KZ02-LD")
    )
    assert r.status_code == 404
    assert metric(stack, "triage", f'fengqiao_triage_model_info{{version="{d["model_version"]}"}}') == 1.0


def test_a_repeat_is_merged_into_the_open_case_and_counted_not_assigned_twice(stack):
    text = "新华街18号楼下的烧烤摊每天半夜喝酒划拳吵闹，已经持续一个多月了，严重影响休息，希望派出所管一管。"
    before = metric_sum(stack, "triage", "fengqiao_triage_merges_total", station="KZ02")
    first = submit(stack, "KZ02", text, phone="13600001111", address="新华街18号")
    assert settled(stack, first)["status"] == "assigned"
    again = submit(
        stack, "KZ02", "又来了！" + text.replace("一个多月", "一个半月"), phone="13600001111", address="新华街18号"
    )
    view = settled(stack, again)
    assert view["status"] == "merged" and view["status_label"] == "已并单"
    assert "并单" in view["timeline"][-1]["note"]
    d = decision(stack, again["tracking_no"], "KZ02-LD")
    assert d["merged_into"] == first["tracking_no"] and d["assignment"] is None
    cases = httpx.get(
        f"{stack['urls']['mediation']}/api/v1/cases?sort=-submitted_at", headers=token(stack, "KZ02-LD")
    ).json()["cases"]
    assert again["tracking_no"] not in {c["tracking_no"] for c in cases}  # not a second case
    deadline = time.monotonic() + 10
    while True:
        cases = httpx.get(
            f"{stack['urls']['mediation']}/api/v1/cases?sort=-submitted_at", headers=token(stack, "KZ02-LD")
        ).json()["cases"]
        primary = next(c for c in cases if c["tracking_no"] == first["tracking_no"])
        if primary["duplicates"] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert primary["duplicates"] == [again["tracking_no"]]
    assert metric_sum(stack, "triage", "fengqiao_triage_merges_total", station="KZ02") == before + 1


async def _alert_events(bootstrap: str, alert_id: str) -> list[dict]:
    def ours(doc: dict, _found: list[dict]) -> bool:
        return doc["type"] == EventTypes.ALERT_RAISED and doc["data"]["alert_id"] == alert_id

    return await read_public_stream(bootstrap, ours, done=lambda found: len(found) >= 2)


async def _case_events(bootstrap: str, tracking_no: str, type_: str) -> dict:
    found = await read_public_stream(
        bootstrap, lambda d, _: d["type"] == type_ and d.get("subject") == tracking_no, done=bool
    )
    if not found:
        raise AssertionError(f"no {type_} for {tracking_no}")
    return found[0]


def test_distinct_reporters_at_one_place_raise_a_cluster_alert_that_rises_a_level(stack, infra):
    place = f"测试{uuid.uuid4().hex[:4]}工业园"
    series = 'fengqiao_alerts_raised_total{kind="cluster",station="KZ02"}'
    before = metric(stack, "triage", series)
    texts = [
        "{p}的包工头拖欠我们半年工资，一直不给",
        "我在{p}干活，老板欠了三个月劳务费跑了",
        "{p}工地工资拖欠，工友们准备一起去讨说法",
    ]
    receipts = [
        submit(stack, "KZ02", t.format(p=place), phone=f"1370000{i:04d}", address=place) for i, t in enumerate(texts)
    ]
    for r in receipts:
        settled(stack, r)
    alerts = httpx.get(f"{stack['urls']['triage']}/api/v1/triage/alerts", headers=token(stack, "KZ02-LD")).json()
    ours = [a for a in alerts["alerts"] if a["kind"] == "cluster" and receipts[0]["tracking_no"] in a["members"]]
    assert len(ours) == 1, alerts
    alert = ours[0]
    # labor_dispute thresholds: 2 reporters yellow, 3 orange (48 hours).
    assert alert["level"] == "orange" and alert["reporters"] == 3 and alert["window_hours"] == 48
    assert set(alert["members"]) == {r["tracking_no"] for r in receipts}
    assert place in alert["explanation"] and "3名不同群众" in alert["explanation"]
    events = asyncio.run(_alert_events(infra.bootstrap, alert["alert_id"]))
    assert [e["data"]["level"] for e in events] == ["yellow", "orange"]  # raised, then raised a level
    raw = json.dumps(events, ensure_ascii=False)
    assert "1370000" not in raw  # no personal data on the public stream
    assert place not in raw and "同一地点" in events[-1]["data"]["explanation"]  # nor the citizens' address
    assert metric(stack, "triage", series) == before + 2
    # The station's leadership sees it in the console; another station's staff do not see it.
    assert any(alert["alert_id"] and "预警" in n["title"] for n in console_notifications(stack, "KZ02-LD", "alert"))
    other = httpx.get(f"{stack['urls']['triage']}/api/v1/triage/alerts", headers=token(stack, "KZ01-LD")).json()
    assert alert["alert_id"] not in {a["alert_id"] for a in other["alerts"]}


def test_repeated_disputes_of_the_same_reporter_raise_a_repeat_dispute_alert(stack):
    phone = "13500009999"
    texts = [
        ("楼上邻居家漏水把我家天花板泡坏了，对方拒绝赔偿", "矿工新村5栋"),
        ("前夫不按时给孩子抚养费，还不让我见孩子", "矿山路9号"),
        ("邻居把围墙往我家这边砌了半米，找村里也没解决", "煤矿东村"),
    ]
    receipts = [submit(stack, "KZ01", t, phone=phone, address=a) for t, a in texts]
    for r in receipts:
        assert settled(stack, r)["status"] == "assigned"
    alerts = httpx.get(f"{stack['urls']['triage']}/api/v1/triage/alerts", headers=token(stack, "KZ01-IN")).json()
    ours = [
        a for a in alerts["alerts"] if a["kind"] == "repeat_dispute" and receipts[-1]["tracking_no"] in a["members"]
    ]
    assert len(ours) == 1 and ours[0]["level"] == "yellow" and "第3次" in ours[0]["explanation"]


def test_police_conduct_naming_the_instructor_goes_to_the_leader(stack):
    receipt = submit(stack, "KZ01", "投诉矿区派出所指导员李红梅，我反映的问题推诿了两个月没人管，态度恶劣")
    settled(stack, receipt)
    d = decision(stack, receipt["tracking_no"], "KZ01-LD")
    assert d["category"] == "police_conduct"
    assert d["assignment"]["assignee_id"] == "KZ01-LD" and "excluded_named:1" in d["assignment"]["reason"]


def test_confidential_tip_off_goes_only_to_an_approved_handler(stack):
    receipt = submit(
        stack,
        "KZ02",
        "举报幸福小区地下室有人聚众赌博，每天晚上都有，请为我保密",
        phone="13300004444",
        confidential=True,
    )
    settled(stack, receipt)
    d = decision(stack, receipt["tracking_no"], "KZ02-LD")
    # Approved handlers in the demo: KZ02-P1 (day shift) and the leadership; at night the leader's queue.
    assert d["assignment"]["assignee_id"] in {"KZ02-P1", "KZ02-LD", "KZ02-IN"}
    assert d["confidential"] and decision(stack, receipt["tracking_no"], "KZ02-P1")["confidential"]
    # The rest of the station does not see the decision of a confidential tip-off.
    r = httpx.get(
        f"{stack['urls']['triage']}/api/v1/triage/decisions/{receipt['tracking_no']}", headers=token(stack, "KZ02-P2")
    )
    assert r.status_code == 404


def test_with_nobody_on_duty_the_item_waits_in_the_leaders_queue_flagged(stack, infra):
    saved = sql(infra.dsn, "DELETE FROM triage.roster WHERE station = 'KZ02' RETURNING *")
    try:
        receipt = submit(stack, "KZ02", "新村市场门口的路灯坏了一个星期了，晚上一片漆黑")
        settled(stack, receipt)
        d = decision(stack, receipt["tracking_no"], "KZ02-LD")
        assert d["assignment"]["assignee_id"] == "KZ02-LD" and d["assignment"]["flagged"]
        assert d["assignment"]["reason"].startswith("rule:no_one_on_duty;leader_queue")
        assert any(
            n["tracking_no"] == receipt["tracking_no"] for n in console_notifications(stack, "KZ02-LD", "unassigned")
        )
        deadline = time.monotonic() + 15
        while metric(stack, "triage", 'fengqiao_items_waiting_for_officer{station="KZ02"}') < 1:
            assert time.monotonic() < deadline, "the waiting gauge did not count the item"
            time.sleep(0.5)
    finally:
        for r in saved:
            sql(
                infra.dsn,
                "INSERT INTO triage.roster (station, day, staff_id, starts, ends) VALUES ($1, $2, $3, $4, $5) "
                "ON CONFLICT DO NOTHING",
                r["station"],
                r["day"],
                r["staff_id"],
                r["starts"],
                r["ends"],
            )


def test_a_station_rule_added_by_its_leader_applies_to_the_next_item(stack, infra):
    url = f"{stack['urls']['triage']}/api/v1/triage/rules"
    rule = {"field": "category", "value": "safety_hazard", "pattern": "尾矿库"}
    assert httpx.post(url, json=rule, headers=token(stack, "KZ01-P1")).status_code == 403
    assert httpx.post(url, json=rule | {"station": "KZ01"}, headers=token(stack, "KZ02-LD")).status_code == 403
    bad = httpx.post(url, json=rule | {"value": "volcano"}, headers=token(stack, "KZ01-LD"))
    assert bad.status_code == 422 and bad.json()["detail"]["field"] == "value"
    slow = httpx.post(url, json=rule | {"pattern": r"(尾矿)\1", "is_regex": True}, headers=token(stack, "KZ01-LD"))
    assert slow.status_code == 422 and slow.json()["detail"]["field"] == "pattern"  # RE2 cannot run it
    created = httpx.post(url, json=rule, headers=token(stack, "KZ01-LD"))
    assert created.status_code == 201 and created.json()["station"] == "KZ01"
    rule_id = created.json()["rule_id"]
    try:
        receipt = submit(stack, "KZ01", "矿区后山的尾矿库最近坝体有裂缝，下雨天很担心")
        settled(stack, receipt)
        d = decision(stack, receipt["tracking_no"], "KZ01-LD")
        assert d["category"] == "safety_hazard" and f"rule:category=safety_hazard:尾矿库(#{rule_id})" in d["reasons"]
        triaged = asyncio.run(_case_events(infra.bootstrap, receipt["tracking_no"], EventTypes.CASE_TRIAGED))
        assert f"rule:category=safety_hazard:#{rule_id}" in triaged["data"]["reasons"]  # the id, not the word
        assert "尾矿库" not in json.dumps(triaged["data"]["reasons"], ensure_ascii=False)
        listed = httpx.get(url, headers=token(stack, "KZ01-P1")).json()["rules"]
        assert rule_id in {r["rule_id"] for r in listed}
    finally:
        assert httpx.delete(f"{url}/{rule_id}", headers=token(stack, "KZ01-LD")).status_code == 204


async def _publish_correction(bootstrap: str, correction: TriageCorrected) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        event = new_event(
            EventTypes.TRIAGE_CORRECTED,
            correction,
            source="/fengqiao/mediation",
            subject=correction.tracking_no,
            stationid=correction.station,
        )
        await producer.send_and_wait(
            Topics.CORRECTIONS,
            event.model_dump_json(exclude_none=True).encode(),
            key=correction.tracking_no.encode(),
            headers=[("content-type", CONTENT_TYPE.encode())],
        )
    finally:
        await producer.stop()


def test_a_correction_becomes_a_labelled_example_and_retraining_reports_then_activates(stack, infra):
    receipt = submit(stack, "KZ02", "小区里有人遛狗不拴绳，狗把小孩吓哭了，主人还很凶，电话13911112222")
    settled(stack, receipt)
    asyncio.run(
        _publish_correction(
            infra.bootstrap,
            TriageCorrected(
                tracking_no=receipt["tracking_no"],
                station="KZ02",
                category="neighbor_dispute",
                corrected_by="KZ02-LD",
                reason="养犬纠纷属于邻里纠纷",
                corrected_at=datetime.now(UTC),
            ),
        )
    )
    deadline = time.monotonic() + 10
    while not (rows := sql(infra.dsn, "SELECT * FROM triage.examples WHERE tracking_no = $1", receipt["tracking_no"])):
        assert time.monotonic() < deadline, "the correction was not stored"
        time.sleep(0.1)
    assert rows[0]["category"] == "neighbor_dispute" and "13911112222" not in rows[0]["text"]

    env = {**os.environ, "DATABASE_URL": infra.dsn}
    cli = os.path.join(os.path.dirname(sys.executable), "fengqiao")
    out = subprocess.run(
        [cli, "triage", "train", "--activate", "--by", "KZ02-LD"], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    stored = sql(infra.dsn, "SELECT count(*) AS n FROM triage.examples")[0]["n"]  # other tests correct too
    assert f"corrections {stored}" in out.stdout and "category" in out.stdout and "activated" in out.stdout
    version = out.stdout.split("new version ", 1)[1].split()[0]
    listed = subprocess.run([cli, "triage", "models"], env=env, capture_output=True, text=True, timeout=60)
    assert f"* {version}" in listed.stdout

    deadline = time.monotonic() + 30  # every replica follows the activation within its refresh interval
    while True:
        later = submit(stack, "KZ02", f"请问居住证续签需要带什么材料？{uuid.uuid4().hex[:6]}")
        settled(stack, later)
        if decision(stack, later["tracking_no"], "KZ02-LD")["model_version"] == version:
            break
        assert time.monotonic() < deadline, "the new model was not picked up"
        time.sleep(2)

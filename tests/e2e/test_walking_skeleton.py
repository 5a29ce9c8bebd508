"""End to end: one feedback item flows through the four services, each in its own process,
over the real broker and database."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from fengqiao.events import CONTENT_TYPE, Topics
from tests.e2e.helpers import read_public_stream, staff_get, token, wait_for_status

pytestmark = pytest.mark.e2e


def received_count(intake: str, station: str, channel: str) -> float | None:
    series = f'fengqiao_feedback_received_total{{channel="{channel}",station="{station}"}} '
    for line in httpx.get(f"{intake}/metrics").text.splitlines():
        if line.startswith(series):
            return float(line[len(series) :])
    return None


def test_web_feedback_is_triaged_assigned_and_notified_within_10_seconds(stack, infra):
    intake = stack["urls"]["intake"]
    before = received_count(intake, "KZ02", "web")
    assert before is not None  # series exist from the start, at 0
    started = time.monotonic()
    r = httpx.post(
        f"{intake}/api/v1/feedback",
        json={
            "station": "KZ02",
            "content": "新华街有人在饭店门口打架，已经有人受伤了",
            "reporter": {"phone": "13800138000"},
        },
    )
    assert r.status_code == 202, r.text
    receipt = r.json()
    assert receipt["status"] == "received" and receipt["tracking_no"].startswith("FQ")

    url = f"{intake}/api/v1/feedback/{receipt['tracking_no']}"
    citizen = wait_for_status(url, {"X-Access-Code": receipt["access_code"]}, "assigned", timeout=10)
    assert time.monotonic() - started < 10
    assert [t["status"] for t in citizen["timeline"]] == ["received", "triaged", "assigned"]
    assert citizen["status_label"] == "已分派" and citizen["category"] == "public_order"
    assert citizen["urgency"] is None and citizen["assignee"] is None  # the citizen does not see these

    leader = httpx.get(url, headers=token(stack, "KZ02-LD")).json()
    assert leader["urgency"] == "urgent" and leader["assignee"] in {"吴磊", "郑浩", "冯雪", "何平"}

    # Wrong access code, or a token of another station: 404, not 403.
    assert httpx.get(url, headers={"X-Access-Code": "00000000"}).status_code == 404
    assert httpx.get(url, headers=token(stack, "KZ01-LD")).status_code == 404

    cases = httpx.get(
        f"{stack['urls']['mediation']}/api/v1/cases?sort=-submitted_at", headers=token(stack, "KZ02-LD")
    ).json()["cases"]
    case = next(c for c in cases if c["tracking_no"] == receipt["tracking_no"])
    assert case["status"] == "assigned" and case["assignee_id"].startswith("KZ02-P")
    other = httpx.get(
        f"{stack['urls']['mediation']}/api/v1/cases?sort=-submitted_at", headers=token(stack, "KZ01-LD")
    ).json()["cases"]
    assert receipt["tracking_no"] not in {c["tracking_no"] for c in other}

    # The officer's console inbox, and the citizen's acknowledgement.
    deadline = time.monotonic() + 10
    while True:
        inbox = httpx.get(f"{stack['urls']['notify']}/api/v1/inbox", headers=token(stack, case["assignee_id"]))
        items = [n for n in inbox.json()["notifications"] if n["tracking_no"] == receipt["tracking_no"]]
        if items or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(items) == 1 and "新村派出所" in items[0]["body"] and "紧急" in items[0]["body"]

    async def stored():
        conn = await asyncpg.connect(infra.dsn)
        try:
            deliveries = await conn.fetch(
                "SELECT * FROM notify.deliveries WHERE tracking_no = $1", receipt["tracking_no"]
            )
            submission = await conn.fetchrow(
                "SELECT * FROM intake.submissions WHERE tracking_no = $1", receipt["tracking_no"]
            )
            return deliveries, submission
        finally:
            await conn.close()

    rows, submission = asyncio.run(stored())
    # Personal data at rest in intake is encrypted: no plaintext column holds the phone.
    assert submission["reporter"] is None and submission["pii_kid"] == "test"
    assert b"13800138000" not in submission["reporter_enc"]
    assert "13800138000" not in json.dumps({k: str(v) for k, v in dict(submission).items() if k != "reporter_enc"})
    # The acknowledgement went through the SMS gateway once; notify keeps it sealed, not in the clear.
    (sms,) = stack["sms"].wait_for(1, where=lambda r: receipt["tracking_no"] in r.json()["text"])
    assert sms.json()["to"] == "+8613800138000" and receipt["access_code"] in sms.json()["text"]
    assert sms.headers["authorization"] == "Bearer e2e-gateway"
    assert len(rows) == 1 and rows[0]["channel"] == "sms" and rows[0]["recipient"] is None and rows[0]["body"] is None
    assert (
        b"13800138000" not in rows[0]["payload_enc"] and receipt["access_code"].encode() not in rows[0]["payload_enc"]
    )

    assert received_count(intake, "KZ02", "web") == before + 1
    for service in ("intake", "triage", "mediation", "notify"):
        text = httpx.get(f"{stack['urls'][service]}/metrics").text
        assert receipt["tracking_no"] not in text and "13800138000" not in text
        assert "fengqiao_events_consumed_total{" in text and "fengqiao_outbox_pending_events" in text


def test_bad_input_gets_a_clear_error_naming_the_field(stack):
    intake = stack["urls"]["intake"]
    r = httpx.post(f"{intake}/api/v1/feedback", json={"station": "KZ01", "content": ""})
    assert r.status_code == 422 and r.json()["detail"]["field"] == "content"
    r = httpx.post(f"{intake}/api/v1/feedback", json={"station": "NOPE", "content": "路灯坏了"})
    assert r.status_code == 422 and r.json()["detail"]["field"] == "station"
    r = httpx.post(
        f"{intake}/api/v1/feedback", json={"station": "KZ01", "content": "路灯坏了", "reporter": {"phone": "12345"}}
    )
    assert r.status_code == 422 and r.json()["detail"]["field"] == "reporter.phone"
    r = httpx.post(f"{intake}/api/v1/feedback", json={"station": "KZ01", "content": "路灯坏了", "channel": "hotline"})
    assert r.status_code == 401 and r.json()["detail"]["field"] == "channel"
    r = httpx.post(
        f"{intake}/api/v1/feedback",
        json={"station": "KZ01", "content": "路灯坏了", "channel": "hotline"},
        headers={"Authorization": "Bearer fq_forged"},
    )
    assert r.status_code == 401
    metrics = httpx.get(f"{intake}/metrics").text  # rejections are counted by route and reason
    for code in ("invalid_field", "unknown_station", "token_required", "invalid_token"):
        assert f'fengqiao_requests_rejected_total{{code="{code}",route="/api/v1/feedback"}}' in metrics


def test_deployment_wide_tokens_work_on_every_service(stack):
    """Bureau and integration accounts have no station: their directory events must still arrive."""
    intake = stack["urls"]["intake"]
    r = httpx.post(
        f"{intake}/api/v1/feedback",
        headers=token(stack, "integration"),
        json={"station": "KZ02", "content": "12345 转来：幸福小区门口路灯坏了", "channel": "transfer_12345"},
    )
    assert r.status_code == 202, r.text
    bureau = wait_for_status(
        f"{intake}/api/v1/feedback/{r.json()['tracking_no']}", token(stack, "BUREAU-01"), "assigned", timeout=10
    )
    assert bureau["station"] == "KZ02" and bureau["assignee"] is not None
    cases = httpx.get(
        f"{stack['urls']['mediation']}/api/v1/cases?sort=-submitted_at", headers=token(stack, "BUREAU-01")
    ).json()["cases"]
    # the bureau's list spans the stations (other tests add stations of their own to the shared stack)
    assert r.json()["tracking_no"] in {c["tracking_no"] for c in cases}


def test_the_station_can_be_found_from_the_address(stack):
    intake = stack["urls"]["intake"]
    r = httpx.post(
        f"{intake}/api/v1/feedback", json={"content": "路口积水很深", "location": {"address": "新华街 88 号"}}
    )
    assert r.status_code == 202, r.text
    leader = staff_get(f"{intake}/api/v1/feedback/{r.json()['tracking_no']}", headers=token(stack, "KZ02-LD"))
    assert leader.status_code == 200 and leader.json()["station"] == "KZ02"
    r = httpx.post(f"{intake}/api/v1/feedback", json={"content": "路口积水", "location": {"address": "月球背面"}})
    assert r.status_code == 422 and r.json()["detail"]["field"] == "station"


def test_idempotency_key_returns_the_same_tracking_number(stack):
    intake = stack["urls"]["intake"]
    body = {"station": "KZ01", "content": "矿山路路灯坏了一周了，晚上很黑"}
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = httpx.post(f"{intake}/api/v1/feedback", json=body, headers=key).json()
    second = httpx.post(f"{intake}/api/v1/feedback", json=body, headers=key).json()
    assert first == second
    changed = httpx.post(f"{intake}/api/v1/feedback", json=body | {"content": "别的"}, headers=key)
    assert changed.status_code == 422


async def _ingress_round_trip(bootstrap: str) -> tuple[dict, list]:
    event = {
        "specversion": "1.0",
        "id": f"110-{uuid.uuid4()}",
        "source": "/bureau/110-dispatch",
        "type": "fengqiao.feedback.submitted",
        "time": "2026-11-28T08:00:00+08:00",
        "datacontenttype": "application/json",
        "data": {
            "station": "KZ01",
            "channel": "transfer_110",
            "content": "矿工新村两户邻居因占道停车发生争吵",
            "external_ref": "110-CAD-778899",
            "reporter": {"name": "李四", "phone": "13900001111"},
        },
    }
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        raw = json.dumps(event, ensure_ascii=False).encode()
        for _ in range(2):  # the publisher retries: a duplicate (source, id)
            await producer.send_and_wait(
                Topics.SUBMISSIONS, raw, key=b"110-CAD-778899", headers=[("content-type", CONTENT_TYPE.encode())]
            )
    finally:
        await producer.stop()

    def ours(doc: dict, stream: list[dict]) -> bool:  # the case events of the item this ingress event became
        received = doc["type"] == "fengqiao.case.received" and doc["data"].get("ingress_id") == event["id"]
        return received or doc.get("subject") in {d["subject"] for d in stream}

    stream = await read_public_stream(
        bootstrap, ours, done=lambda found: any(d["type"] == "fengqiao.case.assigned" for d in found)
    )
    return event, stream


def test_ingress_event_from_another_bureau_system_flows_once_without_personal_data(stack, infra):
    event, stream = asyncio.run(_ingress_round_trip(infra.bootstrap))
    received = [d for d in stream if d["type"] == "fengqiao.case.received"]
    assert len(received) == 1  # the duplicate was ignored
    data = received[0]["data"]
    assert data["ingress_source"] == "/bureau/110-dispatch" and data["ingress_id"] == event["id"]
    assert data["external_ref"] == "110-CAD-778899" and data["channel"] == "transfer_110"
    assert received[0]["stationid"] == "KZ01" and received[0]["subject"] == data["tracking_no"]
    assert any(d["type"] == "fengqiao.case.assigned" for d in stream)
    public_text = json.dumps(stream, ensure_ascii=False)
    assert "13900001111" not in public_text and "李四" not in public_text and "占道" not in public_text


def _cli(infra, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DATABASE_URL": infra.dsn,
        "KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap,
        "FENGQIAO_HOME": str(infra.workdir / "home"),
    }
    return subprocess.run(
        [sys.executable, "-m", "fengqiao.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_token_create_prints_a_token_that_intake_accepts_within_seconds(stack, infra):
    result = _cli(infra, "token", "create", "--station", "KZ01", "--role", "officer")
    assert result.returncode == 0, result.stderr
    new_token = result.stdout.strip().splitlines()[-1]
    assert new_token.startswith("fq_") and " " not in new_token
    body = {"station": "KZ01", "content": "民警上门登记：矿区一户居民反映电线老化", "channel": "walk_in"}
    deadline = time.monotonic() + 10
    while True:
        r = httpx.post(
            f"{stack['urls']['intake']}/api/v1/feedback", json=body, headers={"Authorization": f"Bearer {new_token}"}
        )
        if r.status_code == 202 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.status_code == 202, r.text
    assert _cli(infra, "token", "create", "--station", "XX99", "--role", "officer").returncode != 0
    assert _cli(infra, "token", "create", "--role", "officer").returncode != 0  # station roles need one


def test_publish_sends_a_jsonl_file_of_events_and_reports_invalid_lines(stack, infra, tmp_path):
    ref = f"PUB-{uuid.uuid4().hex[:8]}"
    lines = []
    for i in range(3):
        lines.append(
            json.dumps(
                {
                    "specversion": "1.0",
                    "id": f"{ref}-{i}",
                    "source": "/bureau/petition",
                    "type": "fengqiao.feedback.submitted",
                    "time": "2026-11-28T09:00:00+08:00",
                    "datacontenttype": "application/json",
                    "data": {
                        "station": "KZ02",
                        "channel": "bureau",
                        "content": f"信访转办事项 {i}",
                        "external_ref": f"{ref}-{i}",
                    },
                },
                ensure_ascii=False,
            )
        )
    lines.insert(1, '{"specversion": "1.0", "id": "broken"}')
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = _cli(infra, "publish", str(path))
    assert result.returncode == 1  # one line was invalid
    assert "published 3 event(s); skipped 1 invalid line(s)" in result.stdout
    assert "line 2" in result.stderr

    async def arrived() -> int:
        conn = await asyncpg.connect(infra.dsn)
        try:
            return await conn.fetchval("SELECT count(*) FROM intake.submissions WHERE external_ref LIKE $1", f"{ref}-%")
        finally:
            await conn.close()

    deadline = time.monotonic() + 10
    while asyncio.run(arrived()) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert asyncio.run(arrived()) == 3

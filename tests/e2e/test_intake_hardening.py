"""Intake under the security review: who can read an item, try its access code, replay its
receipt, see another station's calls, or list it on Open311 (findings 4, 5, 6, 7 and the low ones)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.e2e.helpers import public_events, sql, staff_get, token, wait_for_status

pytestmark = pytest.mark.e2e


def submit(stack, body: dict, headers: dict | None = None, client: httpx.Client | None = None) -> dict:
    r = (client or httpx).post(f"{stack['urls']['intake']}/api/v1/feedback", json=body, headers=headers or {})
    assert r.status_code == 202, r.text
    return r.json()


def read(stack, tracking_no: str, headers: dict) -> httpx.Response:
    return httpx.get(f"{stack['urls']['intake']}/api/v1/feedback/{tracking_no}", headers=headers)


def test_wrong_access_codes_lock_the_item_whoever_asks_and_a_token_gives_no_free_guesses(stack, infra):
    mine = submit(stack, {"station": "KZ02", "content": "新华街路灯坏了一排，晚上很黑"})
    other = submit(stack, {"station": "KZ02", "content": "新华街井盖松动"})
    code = mine["access_code"]
    wrong = [f"{(int(code) + i) % 10**8:08d}" for i in range(1, 11)]
    # An officer of another station: the token does not make the item his, and does not lift the limits.
    for guess in wrong:
        assert read(stack, mine["tracking_no"], {"X-Access-Code": guess, **token(stack, "KZ01-P1")}).status_code == 404
    # Locked: now even the right code opens nothing, for anyone, for a while; the citizen is told so.
    locked = read(stack, mine["tracking_no"], {"X-Access-Code": code})
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    assert "锁定" in locked.json()["detail"]["message"]
    page = httpx.post(
        f"{stack['urls']['intake']}/track", data={"tracking_no": mine["tracking_no"], "access_code": code}
    )
    assert page.status_code == 429 and "锁定" in page.text
    # ...while other items, and the station's own staff, are not affected.
    assert read(stack, other["tracking_no"], {"X-Access-Code": other["access_code"]}).status_code == 200
    assert read(stack, mine["tracking_no"], token(stack, "KZ02-LD")).status_code == 200
    stored = sql(
        infra.dsn, "SELECT access_code_hash FROM intake.submissions WHERE tracking_no = $1", mine["tracking_no"]
    )[0]["access_code_hash"]
    assert stored.startswith("k1:")  # a keyed hash, not sha256 of 8 digits


def test_an_idempotent_replay_is_per_caller_and_the_stored_receipt_holds_no_access_code(stack, infra):
    key = f"k-{uuid.uuid4()}"
    body = {"station": "KZ01", "content": "矿区菜市场门口车辆乱停"}
    first = submit(stack, body, {"Idempotency-Key": key})
    again = submit(stack, body, {"Idempotency-Key": key})
    assert again == first  # the same caller gets the same receipt
    # Another caller (another address) with the same key and body gets an item of their own, not the
    # first caller's access code.
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2")) as elsewhere:
        stranger = submit(stack, body, {"Idempotency-Key": key}, client=elsewhere)
    assert stranger["tracking_no"] != first["tracking_no"] and stranger["access_code"] != first["access_code"]
    rows = sql(infra.dsn, "SELECT scope, response::text AS response FROM intake.idempotency_keys WHERE key = $1", key)
    assert len(rows) == 2 and all(r["scope"].startswith("public:") for r in rows)
    assert not any(first["access_code"] in r["response"] or stranger["access_code"] in r["response"] for r in rows)


def test_earlier_calls_of_a_number_are_those_of_the_callers_own_station(stack):
    number = f"139{uuid.uuid4().int % 10**8:08d}"
    call = {
        "call_id": f"CTI-{uuid.uuid4().hex[:10]}",
        "station": "KZ02",
        "caller_number": number,
        "started_at": "2026-11-28T21:05:00+08:00",
        "summary": "来电反映夜市摊贩占道",
    }
    hotline = f"{stack['urls']['intake']}/api/v1/hotline/calls"
    kz02 = httpx.post(hotline, json=call, headers=token(stack, "KZ02-P1"))
    assert kz02.status_code == 202, kz02.text
    # An officer of KZ01 records a call from the same number: KZ02's items are not his to learn.
    kz01 = httpx.post(
        hotline,
        json=call | {"call_id": f"CTI-{uuid.uuid4().hex[:10]}", "station": "KZ01"},
        headers=token(stack, "KZ01-P1"),
    )
    assert kz01.status_code == 202 and kz01.json()["earlier_calls"] == [] and "added_to" not in kz01.json()
    # Nor does KZ02's call id tell him which item it became.
    taken = httpx.post(hotline, json=call | {"station": "KZ01"}, headers=token(stack, "KZ01-P1"))
    assert taken.status_code == 409 and kz02.json()["tracking_no"] not in taken.text
    # An officer joins a call only to an item he may open: once triage has said whom it names.
    item = f"{stack['urls']['intake']}/api/v1/feedback/{kz02.json()['tracking_no']}"
    assert staff_get(item, token(stack, "KZ02-P2")).status_code == 200
    again = httpx.post(
        hotline, json=call | {"call_id": f"CTI-{uuid.uuid4().hex[:10]}"}, headers=token(stack, "KZ02-P2")
    )
    assert again.json()["added_to"] == kz02.json()["tracking_no"]  # KZ02's own open item: the call joins it


def test_open311_reads_without_a_key_do_not_list_confidential_tip_offs_or_complaints_about_officers(stack, infra):
    base = f"{stack['urls']['intake']}/open311/v2"
    plain = submit(stack, {"station": "KZ02", "content": "新村小区门口垃圾堆放很久没人清理"})
    secret = submit(
        stack,
        {
            "station": "KZ02",
            "content": "新村三号楼有人聚众赌博",
            "reporter": {"phone": "13800138111", "confidential": True},
        },
    )
    complaint = submit(stack, {"station": "KZ02", "content": "新村派出所民警办证时态度恶劣"})
    for receipt in (plain, secret, complaint):
        wait_for_status(
            f"{stack['urls']['intake']}/api/v1/feedback/{receipt['tracking_no']}",
            {"X-Access-Code": receipt["access_code"]},
            "assigned",
            timeout=15,
        )
    sql(
        infra.dsn,
        "UPDATE intake.submissions SET category = 'police_conduct' WHERE tracking_no = $1",
        complaint["tracking_no"],
    )  # whatever triage made of it, this is the category the rule is about
    listed = httpx.get(f"{base}/requests.json", params={"jurisdiction_id": "KZ02"}).json()
    ids = {r["service_request_id"] for r in listed}
    assert plain["tracking_no"] in ids
    assert secret["tracking_no"] not in ids and complaint["tracking_no"] not in ids
    one = httpx.get(f"{base}/requests/{secret['tracking_no']}.json", params={"jurisdiction_id": "KZ02"})
    assert one.status_code == 404
    # A bureau system with its key reads them (still without anything personal).
    key = stack["credentials"]["integration"]["token"]
    full = httpx.get(f"{base}/requests.json", params={"jurisdiction_id": "KZ02", "api_key": key}).json()
    assert {secret["tracking_no"], complaint["tracking_no"]} <= {r["service_request_id"] for r in full}
    assert "13800138111" not in str(full)
    assert (
        httpx.get(f"{base}/requests.json", params={"jurisdiction_id": "KZ02", "api_key": "fq_wrong"}).status_code == 403
    )


def test_the_public_stream_carries_no_device_id_of_an_open311_app(stack, infra):
    r = httpx.post(
        f"{stack['urls']['intake']}/open311/v2/requests.json",
        data={
            "api_key": stack["credentials"]["integration"]["token"],
            "jurisdiction_id": "KZ01",
            "service_code": "noise",
            "description": "矿工新村广场舞音响太吵",
            "device_id": "imei-861234567890123",
        },
    )
    assert r.status_code == 200, r.text
    no = r.json()[0]["service_request_id"]
    received = next(e for e in public_events(infra.bootstrap, no) if e["type"] == "fengqiao.case.received")
    assert "861234567890123" not in str(received) and received["data"].get("external_ref") is None


def test_a_survey_link_with_a_non_ascii_signature_is_refused_not_a_server_error(stack):
    r = httpx.get(f"{stack['urls']['intake']}/survey", params={"t": "FQ23456789.9999999999.签名"})
    assert r.status_code == 400 and "无效" in r.text
    r = httpx.post(f"{stack['urls']['intake']}/survey", data={"t": "FQ23456789.9999999999.签名", "result": "satisfied"})
    assert r.status_code == 400


def test_earlier_calls_do_not_reveal_a_confidential_tip_off_to_who_may_not_open_it(stack):
    number = f"137{uuid.uuid4().int % 10**8:08d}"
    hotline = f"{stack['urls']['intake']}/api/v1/hotline/calls"

    def call(who: str, **extra) -> dict:
        r = httpx.post(
            hotline,
            headers=token(stack, who),
            json={
                "call_id": f"CTI-{uuid.uuid4().hex[:10]}",
                "station": "KZ02",
                "caller_number": number,
                "started_at": "2026-11-28T21:05:00+08:00",
                "summary": "来电举报新村有人聚赌",
            }
            | extra,
        )
        assert r.status_code == 202, r.text
        return r.json()

    tip = call("KZ02-LD", confidential=True)
    item = f"{stack['urls']['intake']}/api/v1/feedback/{tip['tracking_no']}"
    assert staff_get(item, token(stack, "KZ02-IN")).status_code == 200  # settled: triage has said whom it names
    # The instructor may open the tip-off: a follow-up call from the number joins it (issue 13).
    assert call("KZ02-IN")["added_to"] == tip["tracking_no"]
    # An officer who is not an approved handler types the same number in: nothing tells him it reported.
    mine = call("KZ02-P2")
    assert mine["earlier_calls"] == [] and "added_to" not in mine and mine["tracking_no"] != tip["tracking_no"]


def test_an_open311_app_follows_its_own_request_before_triage_but_listings_wait_for_it(stack, infra):
    base = f"{stack['urls']['intake']}/open311/v2"
    r = httpx.post(
        f"{base}/requests.json",
        data={
            "api_key": stack["credentials"]["integration"]["token"],
            "jurisdiction_id": "KZ01",
            "service_code": "noise",
            "description": "矿工新村夜市烧烤摊油烟和噪音",
        },
    )
    no = r.json()[0]["service_request_id"]
    wait_for_status(f"{stack['urls']['intake']}/api/v1/feedback/{no}", token(stack, "KZ01-LD"), "assigned", 15)
    sql(infra.dsn, "UPDATE intake.submissions SET category = NULL WHERE tracking_no = $1", no)  # as before triage
    own = httpx.get(f"{base}/requests/{no}.json", params={"jurisdiction_id": "KZ01"})
    assert own.status_code == 200 and own.json()[0]["service_request_id"] == no
    listed = httpx.get(f"{base}/requests.json", params={"jurisdiction_id": "KZ01"}).json()
    assert no not in {x["service_request_id"] for x in listed}

"""Notify end to end: the four services as processes, a real SMS gateway, mail relay and bureau
webhook receiver (local servers), events through the real broker."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
from aiokafka import AIOKafkaProducer
from standardwebhooks import Webhook

from fengqiao.events import CitizenMessageRequested, EventTypes, Topics, new_event
from tests.e2e import helpers
from tests.e2e.helpers import console_notifications, token
from tests.servers import HttpRecorder


def submit(stack, station: str, content: str, **reporter) -> dict:
    return helpers.submit(stack, station, content, reporter=reporter)


def test_a_redelivered_message_request_sends_one_sms(stack, infra):
    no = "FQREDELIV1"
    event = new_event(
        EventTypes.CITIZEN_MESSAGE_REQUESTED,
        CitizenMessageRequested(
            tracking_no=no,
            station="KZ01",
            template="more_info",
            phone="+8613700137000",
            params={"text": "请补充门牌号"},
        ),
        source="/fengqiao/intake",
        subject=no,
        stationid="KZ01",
    )

    async def publish_three_times():
        producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap)
        await producer.start()
        try:
            for _ in range(3):
                await producer.send_and_wait(Topics.CITIZEN_MESSAGES, event.to_json(), key=no.encode())
        finally:
            await producer.stop()

    asyncio.run(publish_three_times())
    stack["sms"].wait_for(1, where=lambda r: no in r.json()["text"])
    time.sleep(2)  # time enough for any duplicate to arrive
    sent = [r for r in stack["sms"].received if no in r.json()["text"]]
    assert len(sent) == 1 and sent[0].json()["to"] == "+8613700137000" and "请补充门牌号" in sent[0].json()["text"]


def test_an_email_acknowledgement_is_readable_chinese_and_anonymous_reporters_without_contact_get_nothing(stack):
    receipt = submit(stack, "KZ01", "矿区三号楼楼道里堆满杂物，消防通道被堵", email="citizen@example.com", name="赵敏")
    ((rcpts, mail),) = stack["mail"].wait_for(1, where=lambda m: receipt["tracking_no"] in str(m[1]["subject"]))
    assert rcpts == ["citizen@example.com"]
    assert mail["subject"] == f"您的反映已受理（编号 {receipt['tracking_no']}）"
    text = mail.get_body(("plain",)).get_content()
    assert text.startswith("【矿区派出所】") and receipt["access_code"] in text
    assert f"/track?no={receipt['tracking_no']}" in text

    before = (len(stack["sms"].received), len(stack["mail"].messages))
    anonymous = submit(stack, "KZ01", "有人在矿区公园卖假药", anonymous=True)
    time.sleep(2)  # time enough for notify to have seen it
    assert (len(stack["sms"].received), len(stack["mail"].messages)) == before
    assert not [r for r in stack["sms"].received if anonymous["tracking_no"] in r.body.decode()]


def test_a_bureau_system_subscribes_and_receives_signed_public_events_of_its_station(stack):
    hooks = HttpRecorder()
    try:
        integration = token(stack, "integration")
        r = httpx.post(
            f"{stack['urls']['notify']}/api/v1/webhooks",
            headers=integration,
            json={
                "name": "分局研判平台",
                "url": hooks.url + "/fengqiao",
                "event_types": ["fengqiao.case.*"],
                "stations": ["KZ02"],
            },
        )
        assert r.status_code == 201, r.text
        sub = r.json()
        assert sub["secret"].startswith("whsec_")
        listed = httpx.get(f"{stack['urls']['notify']}/api/v1/webhooks", headers=integration).json()["subscriptions"]
        assert sub["id"] in {s["id"] for s in listed} and "secret" not in listed[0]
        bad = httpx.post(
            f"{stack['urls']['notify']}/api/v1/webhooks",
            headers=integration,
            json={"name": "x", "url": hooks.url, "event_types": ["fengqiao.case.*"], "stations": ["NOPE"]},
        )
        assert bad.status_code == 422 and bad.json()["detail"]["field"] == "stations"
        for internal in ("http://10.0.0.5:5432/", "http://169.254.169.254/latest/meta-data/", "http://[::1]:8083/"):
            refused = httpx.post(
                f"{stack['urls']['notify']}/api/v1/webhooks",
                headers=integration,
                json={"name": "x", "url": internal, "event_types": ["fengqiao.case.*"]},
            )
            assert refused.status_code == 422 and refused.json()["detail"]["field"] == "url", refused.text
        assert (
            httpx.post(
                f"{stack['urls']['notify']}/api/v1/webhooks",
                headers=token(stack, "KZ01-P1"),
                json={"name": "x", "url": hooks.url, "event_types": ["fengqiao.case.*"]},
            ).status_code
            == 403
        )

        kz02 = submit(stack, "KZ02", "新村小学门口早上车辆乱停，孩子过马路很危险", phone="13912340077", name="钱多多")
        kz01 = submit(stack, "KZ01", "矿区菜市场门口夜里有人烧烤，油烟很大", phone="13912340078")
        got = hooks.wait_for(3, where=lambda r: kz02["tracking_no"] in r.body.decode())
        types = [json.loads(r.body)["type"] for r in got]
        assert {"fengqiao.case.received", "fengqiao.case.triaged", "fengqiao.case.assigned"} <= set(types)
        for request in got:
            event = Webhook(sub["secret"]).verify(request.body, request.headers)
            assert event["stationid"] == "KZ02" and request.headers["webhook-id"] == event["id"]
        raw = b"".join(r.body for r in hooks.received).decode()
        assert kz01["tracking_no"] not in raw  # another station
        for secret in ("钱多多", "13912340077", "孩子过马路很危险"):  # nothing personal, no free text
            assert secret not in raw, [json.loads(r.body)["type"] for r in hooks.received if secret in r.body.decode()]

        assert (
            httpx.delete(f"{stack['urls']['notify']}/api/v1/webhooks/{sub['id']}", headers=integration).status_code
            == 204
        )
        assert (
            httpx.delete(f"{stack['urls']['notify']}/api/v1/webhooks/{sub['id']}", headers=integration).status_code
            == 404
        )
    finally:
        hooks.close()


def test_a_failed_delivery_is_shown_to_the_leader_who_resends_or_dismisses_it(stack):
    receipt = submit(stack, "KZ02", "新村二组路口的红绿灯不亮了", email="nosuchuser@example.com")
    told = console_notifications(stack, "KZ02-LD", "delivery_failed", receipt["tracking_no"])
    assert told and "电子邮件" in told[0]["body"] and "nosuchuser" not in told[0]["body"]
    leader = token(stack, "KZ02-LD")
    failed = httpx.get(f"{stack['urls']['notify']}/api/v1/deliveries", headers=leader).json()["deliveries"]
    mine = [d for d in failed if d["tracking_no"] == receipt["tracking_no"]]
    assert len(mine) == 1 and mine[0]["recipient"] == "n***@example.com" and "550" in mine[0]["last_error"]
    assert mine[0]["attempts"] == 1  # a refused mailbox is not retried
    delivery = mine[0]["id"]
    other = token(stack, "KZ01-LD")
    assert not [
        d
        for d in httpx.get(f"{stack['urls']['notify']}/api/v1/deliveries", headers=other).json()["deliveries"]
        if d["tracking_no"] == receipt["tracking_no"]
    ]
    assert (
        httpx.post(f"{stack['urls']['notify']}/api/v1/deliveries/{delivery}/resend", headers=other).status_code == 404
    )
    assert httpx.get(f"{stack['urls']['notify']}/api/v1/deliveries", headers=token(stack, "KZ02-P1")).status_code == 403

    r = httpx.post(f"{stack['urls']['notify']}/api/v1/deliveries/{delivery}/resend", headers=leader)
    assert r.status_code == 200 and r.json()["resends"] == 1
    deadline = time.monotonic() + 15
    while not any(
        d["id"] == delivery
        for d in httpx.get(f"{stack['urls']['notify']}/api/v1/deliveries", headers=leader).json()["deliveries"]
    ):
        assert time.monotonic() < deadline, "the resent message did not fail again"
        time.sleep(0.2)
    r = httpx.post(f"{stack['urls']['notify']}/api/v1/deliveries/{delivery}/dismiss", headers=leader)
    assert r.status_code == 200 and r.json()["status"] == "dismissed"
    assert (
        httpx.post(f"{stack['urls']['notify']}/api/v1/deliveries/{delivery}/dismiss", headers=leader).status_code == 409
    )

    inbox = httpx.get(f"{stack['urls']['notify']}/api/v1/inbox?unread=true", headers=leader).json()
    assert inbox["unread"] >= 1 and all(n["read_at"] is None for n in inbox["notifications"])
    r = httpx.post(f"{stack['urls']['notify']}/api/v1/inbox/read", headers=leader, json={"ids": [told[0]["id"]]})
    assert r.json()["marked"] == 1 and r.json()["unread"] == inbox["unread"] - 1
    assert httpx.post(f"{stack['urls']['notify']}/api/v1/inbox/read", headers=leader, json={}).json()["unread"] == 0

    text = httpx.get(f"{stack['urls']['notify']}/metrics").text
    assert 'fengqiao_notifications_total{channel="email",outcome="failed"}' in text
    assert 'fengqiao_notifications_total{channel="sms",outcome="sent"}' in text
    assert "fengqiao_notification_delivery_seconds_bucket" in text and "fengqiao_notification_queue{" in text
    assert "nosuchuser" not in text and receipt["tracking_no"] not in text


def test_templates_are_previewed_per_station(stack):
    leader = token(stack, "KZ02-LD")
    names = httpx.get(f"{stack['urls']['notify']}/api/v1/templates", headers=leader).json()["templates"]
    assert "citizen/acknowledgement.txt" in names and "console/assigned.body.txt" in names
    r = httpx.get(
        f"{stack['urls']['notify']}/api/v1/templates/preview", headers=leader, params={"name": "citizen/result.txt"}
    )
    assert r.status_code == 200 and r.json()["text"].startswith("【新村派出所】") and "/survey?t=" in r.json()["text"]
    assert (
        httpx.get(
            f"{stack['urls']['notify']}/api/v1/templates/preview", headers=leader, params={"name": "nope.txt"}
        ).status_code
        == 404
    )
    for params in (
        {"station": "/", "name": "etc/hostname"},
        {"station": "KZ01", "name": "citizen/result.txt"},
        {"station": "NOPE", "name": "citizen/result.txt"},
    ):
        assert (
            httpx.get(f"{stack['urls']['notify']}/api/v1/templates/preview", headers=leader, params=params).status_code
            == 404
        )


def test_staff_who_leave_a_phone_are_paged_for_urgent_items(stack):
    notify = stack["urls"]["notify"]
    r = httpx.put(
        f"{notify}/api/v1/staff/KZ01-IN/contact", headers=token(stack, "KZ01-IN"), json={"phone": "135 7777 8888"}
    )
    assert r.status_code == 200 and r.json()["phone"] == "+86135****8888"
    assert (
        httpx.put(
            f"{notify}/api/v1/staff/KZ01-IN/contact", headers=token(stack, "KZ02-LD"), json={"phone": "13577778888"}
        ).status_code
        == 404
    )  # another station's leader
    assert (
        httpx.put(
            f"{notify}/api/v1/staff/KZ01-IN/contact", headers=token(stack, "KZ01-P1"), json={"phone": "13577778888"}
        ).status_code
        == 404
    )  # a colleague
    bad = httpx.put(f"{notify}/api/v1/staff/KZ01-IN/contact", headers=token(stack, "KZ01-IN"), json={"phone": "123"})
    assert bad.status_code == 422 and bad.json()["detail"]["field"] == "phone"

    receipt = submit(stack, "KZ01", "矿区南门有人持刀打架，已经有人受伤了", phone="13912340099")
    (page,) = stack["sms"].wait_for(
        1, where=lambda r: r.json()["to"] == "+8613577778888" and receipt["tracking_no"] in r.json()["text"]
    )
    assert page.json()["text"].startswith("【矿区派出所】紧急警情") and "13912340099" not in page.json()["text"]

    assert httpx.delete(f"{notify}/api/v1/staff/KZ01-IN/contact", headers=token(stack, "KZ01-LD")).status_code == 204

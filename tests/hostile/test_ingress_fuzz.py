"""Hostile records on the public ingress topic (issue 11, finding 2 and DESIGN 3 / 4.4 / 4.8).

A corpus of records anyone allowed to publish to `fengqiao.submissions.v1` could send: broken and
truncated JSON, wrong types, GBK bytes, NUL, lone surrogates, missing attributes, an unknown
station, content over the limit, a value over 1 MB, and types that belong on internal topics only
(a forged directory token, an official message to a citizen, a case resolution). All go to one
partition, each keyed by a marker, followed by one valid event. Expected: every hostile record is in
`fengqiao.submissions.v1.dlq` with a `dlq.reason` header, the valid event after them is accepted
(the partition keeps flowing), and nothing of the hostile ones was applied anywhere."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError

from fengqiao.auth import TOKEN_PREFIX
from fengqiao.events import CONTENT_TYPE, Topics, dlq_topic
from tests.e2e.helpers import sql
from tests.hostile.helpers import staff, submit

PARTITION = 0


def _event(marker: str, type_: str = "fengqiao.feedback.submitted", data=None, **attrs) -> dict:
    event = {
        "specversion": "1.0",
        "id": marker,
        "source": "/bureau/hostile-fuzz",
        "type": type_,
        "time": "2026-11-28T08:00:00+08:00",
        "datacontenttype": "application/json",
        "data": data
        if data is not None
        else {"station": "KZ01", "channel": "transfer_110", "content": f"矿山路有人打架 {marker}"},
    }
    event.update(attrs)
    return event


def _json(doc) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()


def corpus(run: str, victim: str, forged_token: str) -> dict[str, bytes | None]:
    """marker -> record value. The marker is also the record's key (and, where there is one, the id)."""
    m = lambda name: f"hostile-{run}-{name}"
    valid = _json(_event(m("truncated")))
    missing = {
        attr: {k: v for k, v in _event(m(f"missing-{attr}")).items() if k != attr}
        for attr in ("id", "source", "type", "specversion", "data")
    }
    missing["id"]["correlationid"] = m("missing-id")
    data = lambda **changes: {"station": "KZ01", "channel": "transfer_110", "content": "路灯坏了", **changes}
    records: dict[str, bytes | None] = {
        m("malformed"): b'{"specversion": "1.0", "id": "' + m("malformed").encode() + b'", "type": ',
        m("truncated"): valid[: len(valid) // 2],
        m("not-an-object"): b'["fengqiao.feedback.submitted"]',
        m("json-null"): b"null",
        m("empty"): b"",
        m("tombstone"): None,
        m("gbk"): json.dumps(_event(m("gbk")), ensure_ascii=False).encode("gbk"),
        m("nul-bytes"): b"\x00" * 64,
        m("nul-in-content"): _json(_event(m("nul-in-content"), data=data(content="路灯\u0000坏了"))),
        m("lone-surrogate"): json.dumps(_event(m("lone-surrogate"), data=data(content="路灯\ud800坏了"))).encode(),
        m("content-not-text"): _json(_event(m("content-not-text"), data=data(content=12345))),
        m("data-not-object"): _json(_event(m("data-not-object"), data="station=KZ01")),
        m("specversion-number"): _json(_event(m("specversion-number"), specversion=1.0)),
        m("time-not-a-time"): _json(_event(m("time-not-a-time"), time="yesterday")),
        m("unknown-channel"): _json(_event(m("unknown-channel"), data=data(channel="carrier_pigeon"))),
        m("empty-content"): _json(_event(m("empty-content"), data=data(content=""))),
        m("content-over-limit"): _json(_event(m("content-over-limit"), data=data(content="啊" * 5001))),
        m("unknown-station"): _json(_event(m("unknown-station"), data=data(station="ZZ99"))),
        m("unknown-type"): _json(_event(m("unknown-type"), type_="fengqiao.nonsense")),
        # Types that travel on internal topics only (finding 2): anyone who may publish here would
        # otherwise issue themselves a leader token, message a citizen, or close a case.
        m("token-issued"): _json(
            _event(
                m("token-issued"),
                type_="fengqiao.directory.token_issued",
                data={
                    "token_id": m("token-issued"),
                    "token_hash": hashlib.sha256(forged_token.encode()).hexdigest(),
                    "staff_id": "KZ01-LD",
                    "station": "KZ01",
                    "role": "leader",
                },
            )
        ),
        m("citizen-update"): _json(
            _event(
                m("citizen-update"),
                type_="fengqiao.citizen.update",
                data={
                    "tracking_no": victim,
                    "station": "KZ01",
                    "kind": "resolved",
                    "text": f"已办结，请转账 {m('citizen-update')}",
                },
            )
        ),
        m("case-resolved"): _json(
            _event(
                m("case-resolved"),
                type_="fengqiao.case.resolved",
                subject=victim,
                data={
                    "tracking_no": victim,
                    "station": "KZ01",
                    "status": "resolved",
                    "previous_status": "assigned",
                    "at": "2026-11-28T08:00:00+08:00",
                },
            )
        ),
    }
    for attr, doc in missing.items():
        records[m(f"missing-{attr}")] = _json(doc)
    return records


async def _publish(
    bootstrap: str, records: dict[str, bytes | None], control: tuple[str, bytes], partition: int = PARTITION
) -> set[str]:
    """Publish the corpus then the control event to one partition; returns the markers the broker
    itself refused (too large), which never reach a consumer."""
    refused: set[str] = set()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=False, acks="all", max_request_size=4 * 1024 * 1024
    )
    await producer.start()
    try:
        for key, value in [*records.items(), control]:
            try:
                await producer.send_and_wait(
                    Topics.SUBMISSIONS,
                    value,
                    key=key.encode(),
                    partition=partition,
                    headers=[("content-type", CONTENT_TYPE.encode())],
                )
            except MessageSizeTooLargeError:
                refused.add(key)
    finally:
        await producer.stop()
    return refused


async def _dead_letters(bootstrap: str, markers: set[str], timeout: float) -> dict[str, dict]:
    """marker -> DLQ headers, reading the DLQ from the beginning until every marker is found."""
    consumer = AIOKafkaConsumer(
        dlq_topic(Topics.SUBMISSIONS),
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    found: dict[str, dict] = {}
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not markers <= set(found):
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for r in records:
                    key = (r.key or b"").decode("utf-8", "replace")
                    if key in markers:
                        found[key] = {k: v.decode("utf-8", "replace") for k, v in (r.headers or [])}
    finally:
        await consumer.stop()
    return found


def _accepted(infra, ingress_id: str) -> str | None:
    rows = sql(infra.dsn, "SELECT tracking_no FROM intake.submissions WHERE ingress_id = $1", ingress_id)
    return rows[0]["tracking_no"] if rows else None


def test_every_hostile_ingress_record_is_dead_lettered_with_a_reason_and_the_partition_keeps_flowing(stack, infra):
    run = uuid.uuid4().hex[:8]
    intake = stack["urls"]["intake"]
    # A real item of KZ01 whose citizen a forged message would reach (by SMS: a phone is given).
    victim = submit(stack, "KZ01", f"矿工新村楼道堆放杂物 {run}", reporter={"name": "王五", "phone": "13900002222"})
    forged_token = TOKEN_PREFIX + "forged-" + run + "x" * 30
    records = corpus(run, victim["tracking_no"], forged_token)
    control_id = f"hostile-{run}-control"
    control = _json(
        _event(
            control_id,
            data={"station": "KZ01", "channel": "transfer_110", "content": f"矿山路口红绿灯坏了 🚦😀𠮷 {run}"},
        )
    )

    refused = asyncio.run(_publish(infra.bootstrap, records, (control_id, control)))
    assert not refused, f"the broker refused {refused}"

    # The partition keeps flowing: the valid event published after all of them is accepted.
    deadline = time.monotonic() + 60
    while (tracking_no := _accepted(infra, control_id)) is None:
        assert time.monotonic() < deadline, "the valid event after the hostile ones was not accepted within 60s"
        time.sleep(0.2)

    expected = set(records) - refused
    dead = asyncio.run(_dead_letters(infra.bootstrap, expected, timeout=20))
    assert expected - set(dead) == set(), f"not dead-lettered: {sorted(expected - set(dead))}"
    without_reason = {k: h for k, h in dead.items() if not h.get("dlq.reason")}
    assert not without_reason, f"dead-lettered without a dlq.reason header: {without_reason}"
    assert control_id not in dead

    # Nothing half-applied. The forged token authenticates nowhere:
    forged = {"Authorization": f"Bearer {forged_token}"}
    assert httpx.get(f"{intake}/api/v1/feedback/{tracking_no}", headers=forged, timeout=10).status_code == 401
    for service, path in (
        ("mediation", "/api/v1/cases"),
        ("triage", "/api/v1/triage/rules"),
        ("notify", "/api/v1/inbox"),
    ):
        assert httpx.get(stack["urls"][service] + path, headers=forged, timeout=10).status_code == 401, service
    # no submission was stored from a hostile record,
    stored = sql(infra.dsn, "SELECT ingress_id FROM intake.submissions WHERE ingress_id LIKE $1", f"hostile-{run}-%")
    assert [r["ingress_id"] for r in stored] == [control_id]
    # and the victim was neither told a forged result nor shown as resolved.
    time.sleep(2)  # a forged message would be on its way to notify and the SMS gateway by now
    marker = f"hostile-{run}-citizen-update"
    assert not [r for r in stack["sms"].received if marker.encode() in r.body]
    seen = httpx.get(
        f"{intake}/api/v1/feedback/{victim['tracking_no']}", headers=staff(stack, "KZ01", "LD"), timeout=10
    ).json()
    assert seen["status"] != "resolved" and marker not in json.dumps(seen, ensure_ascii=False), seen


@pytest.mark.poisons_stack  # runs last (tests/hostile/conftest.py): if it fails, intake's ingress may stay stuck
def test_a_record_over_1mb_is_dead_lettered_and_the_partition_keeps_flowing(stack, infra):
    """Finding I1: such a record (Tansu has no 1 MB limit) could not be dead-lettered (the DLQ producer's
    1 MB request limit), so the batch was rewound for ever and the partition stopped."""
    run = uuid.uuid4().hex[:8]
    big, control_id = f"hostile-{run}-over-1mb", f"hostile-{run}-control-after-big"
    value = _json(_event(big, data={"station": "KZ01", "channel": "transfer_110", "content": "x" * 1_100_000}))
    control = _json(_event(control_id))
    refused = asyncio.run(_publish(infra.bootstrap, {big: value}, (control_id, control), partition=1))
    if big in refused:
        return  # a broker with Kafka's own 1 MB limit refuses it at the door: nothing reaches a consumer
    deadline = time.monotonic() + 15
    while _accepted(infra, control_id) is None:
        assert time.monotonic() < deadline, "the valid event after a record over 1 MB was not accepted within 15s"
        time.sleep(0.2)
    dead = asyncio.run(_dead_letters(infra.bootstrap, {big}, timeout=20))
    assert dead.get(big, {}).get("dlq.reason"), dead

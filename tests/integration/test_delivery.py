"""Delivery semantics against the real broker and database: duplicates applied once, poison
messages dead-lettered while the partition keeps flowing, a crash between the database commit
and the offset commit, and an outbox that waits out a broker outage."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from fengqiao.db import create_pool, ensure_database, migrate
from fengqiao.devstack import EmbeddedBroker, EmbeddedPostgres, free_port
from fengqiao.events import CONTENT_TYPE, EventTypes, StationUpserted, Topics, bind_handlers, dlq_topic, new_event
from fengqiao.kafka import ConsumerRunner, ProducerHandle, RunnerConfig, SimulatedCrash, create_topics
from fengqiao.metrics import Metrics
from fengqiao.outbox import OutboxRelay, unit_of_work


@pytest.fixture
async def schema(infra):
    name = f"t_{secrets.token_hex(4)}"
    await migrate(infra.dsn, name, None)
    pool = await create_pool(infra.dsn, name)
    await pool.execute("CREATE TABLE applied (event_id text NOT NULL, code text NOT NULL)")
    yield name, pool
    await pool.close()


@pytest.fixture
async def topic(infra):
    name = f"it.{secrets.token_hex(4)}"
    await create_topics(infra.bootstrap, [name, dlq_topic(name)], partitions=1, replication=1)
    return name


def station_event(code: str, *, id: str | None = None) -> bytes:
    return new_event(
        EventTypes.STATION_UPSERTED, StationUpserted(code=code, name=f"{code}所"), source="/test", id=id
    ).to_json()


async def record_station(event, conn, outbox) -> None:
    data = event.payload(StationUpserted)
    if data.code == "EXPLODE":
        raise PoisonStation()
    await conn.execute("INSERT INTO applied (event_id, code) VALUES ($1, $2)", event.id, data.code)


class PoisonStation(ValueError):
    """An unexplained handler error: retried a few times, then dead-lettered."""


async def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, headers=[("content-type", CONTENT_TYPE.encode())])
    finally:
        await producer.stop()


def make_runner(infra, pool, topic, group, metrics, **overrides) -> ConsumerRunner:
    options = dict(fetch_max_wait_ms=20, retry_attempts=3, dead_letter_after=2) | overrides
    config = RunnerConfig(
        group_id=group, topics=[topic], handlers={topic: {EventTypes.STATION_UPSERTED: record_station}}, **options
    )
    return ConsumerRunner(
        pool=pool,
        bootstrap=infra.bootstrap,
        config=config,
        producer=ProducerHandle(infra.bootstrap, "t"),
        metrics=metrics,
        client_id="test",
    )


async def run_until(runner: ConsumerRunner, condition, timeout: float = 20.0) -> None:
    task = asyncio.create_task(runner.run())
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while not await condition():
            if task.done():
                task.result()
            assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
            await asyncio.sleep(0.05)
    finally:
        runner.stop()
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 15)
        await runner.producer.stop()


def consumed(metrics: Metrics, topic: str, outcome: str) -> float:
    return metrics.events_consumed.labels(topic=topic, outcome=outcome)._value.get()


async def dead_letters(bootstrap: str, topic: str, enough, keep=lambda record: True) -> list:
    """Records of `topic`'s DLQ that `keep` accepts, read from the beginning until `enough(records)`."""
    dlq = AIOKafkaConsumer(
        dlq_topic(topic),
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=20,
    )
    await dlq.start()
    records: list = []
    try:
        for _ in range(100):
            for batch in (await dlq.getmany(timeout_ms=200)).values():
                records += [r for r in batch if keep(r)]
            if enough(records):
                break
    finally:
        await dlq.stop()
    return records


async def test_duplicate_delivery_is_applied_once(infra, schema, topic):
    _, pool = schema
    same = station_event("KZ01", id="evt-1")
    await produce(infra.bootstrap, topic, [same, station_event("KZ02", id="evt-2"), same, same])
    metrics = Metrics("test")
    runner = make_runner(infra, pool, topic, f"g-{topic}", metrics)

    async def all_seen() -> bool:
        return consumed(metrics, topic, "ok") + consumed(metrics, topic, "duplicate") >= 4

    await run_until(runner, all_seen)
    rows = await pool.fetch("SELECT event_id, code FROM applied ORDER BY event_id")
    assert [(r["event_id"], r["code"]) for r in rows] == [("evt-1", "KZ01"), ("evt-2", "KZ02")]
    assert consumed(metrics, topic, "duplicate") == 2


async def test_poison_goes_to_dlq_and_the_next_message_is_processed(infra, schema, topic):
    _, pool = schema
    bad_json = b"{not json"
    bad_schema = new_event(EventTypes.STATION_UPSERTED, {"code": "KZ09"}, source="/test").to_json()  # no name
    await produce(
        infra.bootstrap,
        topic,
        [station_event("KZ01"), bad_json, bad_schema, station_event("EXPLODE"), station_event("KZ02")],
    )
    metrics = Metrics("test")
    runner = make_runner(infra, pool, topic, f"g-{topic}", metrics)

    async def done() -> bool:
        return (
            await pool.fetchval("SELECT count(*) FROM applied") == 2 and consumed(metrics, topic, "dead_lettered") == 3
        )

    await run_until(runner, done)
    assert [r["code"] for r in await pool.fetch("SELECT code FROM applied ORDER BY code")] == ["KZ01", "KZ02"]

    records = await dead_letters(infra.bootstrap, topic, lambda found: len(found) >= 3)
    assert [r.value for r in records][:2] == [bad_json, bad_schema]  # original bytes
    reasons = [dict(r.headers)["dlq.reason"].decode() for r in records]
    assert reasons == ["bad_json", "schema_violation", "handler_error:PoisonStation"]
    assert "name" in dict(records[1].headers)["dlq.error"].decode()  # says which field
    assert dict(records[0].headers)["dlq.original.topic"].decode() == topic


async def test_crash_between_db_commit_and_offset_commit_is_redelivered_and_skipped(infra, schema, topic):
    _, pool = schema
    await produce(infra.bootstrap, topic, [station_event("KZ01", id="crash-1")])
    group = f"g-{topic}"

    def crash() -> None:
        raise SimulatedCrash()

    first = make_runner(infra, pool, topic, group, Metrics("test"), after_db_commit=crash)
    with pytest.raises(SimulatedCrash):
        await asyncio.wait_for(first.run(), 20)
    await first.producer.stop()
    assert await pool.fetchval("SELECT count(*) FROM applied") == 1  # the database work committed

    metrics = Metrics("test")
    second = make_runner(infra, pool, topic, group, metrics)

    async def redelivered() -> bool:
        return consumed(metrics, topic, "duplicate") == 1

    await run_until(second, redelivered)
    assert await pool.fetchval("SELECT count(*) FROM applied") == 1  # ...and is not applied twice
    assert consumed(metrics, topic, "ok") == 0


async def test_batch_with_one_failure_falls_back_to_one_by_one(infra, schema, topic):
    _, pool = schema
    values = [station_event(f"S{i:02d}") for i in range(30)]
    values.insert(15, station_event("EXPLODE"))
    await produce(infra.bootstrap, topic, values)
    metrics = Metrics("test")
    runner = make_runner(infra, pool, topic, f"g-{topic}", metrics)

    async def done() -> bool:
        return await pool.fetchval("SELECT count(*) FROM applied") == 30

    await run_until(runner, done)
    assert consumed(metrics, topic, "dead_lettered") == 1
    assert await pool.fetchval("SELECT count(DISTINCT code) FROM applied") == 30


async def test_database_outage_is_retried_in_place_not_dead_lettered(infra, topic, tmp_path):
    """A PostgreSQL of its own, stopped while messages arrive and started again."""
    pg = EmbeddedPostgres(tmp_path / "pg", free_port(), tmp_path / "pg.log")
    await asyncio.to_thread(pg.start)
    try:
        await ensure_database(pg.dsn)
        await migrate(pg.dsn, "outage", None)
        pool = await create_pool(pg.dsn, "outage")
        await pool.execute("CREATE TABLE applied (event_id text NOT NULL, code text NOT NULL)")
        metrics = Metrics("test")
        runner = make_runner(infra, pool, topic, f"g-{topic}", metrics)
        task = asyncio.create_task(runner.run())
        try:
            await produce(infra.bootstrap, topic, [station_event("KZ01")])
            for _ in range(200):
                if consumed(metrics, topic, "ok") == 1:
                    break
                await asyncio.sleep(0.05)
            assert consumed(metrics, topic, "ok") == 1

            await asyncio.to_thread(pg.stop)  # the database goes away...
            await produce(infra.bootstrap, topic, [station_event("KZ02"), station_event("KZ03")])
            for _ in range(300):
                if consumed(metrics, topic, "retried") >= 3:
                    break
                await asyncio.sleep(0.05)
            assert consumed(metrics, topic, "retried") >= 3
            assert consumed(metrics, topic, "dead_lettered") == 0

            await asyncio.to_thread(pg.start)  # ...and comes back
            for _ in range(400):
                if consumed(metrics, topic, "ok") == 3:
                    break
                await asyncio.sleep(0.05)
            assert sorted(r["code"] for r in await pool.fetch("SELECT code FROM applied")) == ["KZ01", "KZ02", "KZ03"]
            assert consumed(metrics, topic, "dead_lettered") == 0
        finally:
            runner.stop()
            await asyncio.gather(task, return_exceptions=True)
            await runner.producer.stop()
            await pool.close()
    finally:
        await asyncio.to_thread(pg.stop)


async def test_outbox_rows_written_while_the_broker_is_down_are_published_when_it_returns(infra, schema, tmp_path):
    name, pool = schema
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"  # nothing listens here yet
    topic = f"outbox.{secrets.token_hex(4)}"
    metrics = Metrics("test")
    relay = OutboxRelay(
        pool=pool,
        dsn=infra.dsn,
        schema=name,
        producer=ProducerHandle(bootstrap, "relay"),
        metrics=metrics,
        poll_interval_s=0.2,
    )
    relay_task = asyncio.create_task(relay.run())
    broker = None
    try:
        for i in range(5):
            async with unit_of_work(pool) as (_conn, outbox):
                outbox.add(
                    topic,
                    new_event(
                        EventTypes.STATION_UPSERTED,
                        StationUpserted(code=f"K{i}", name="x"),
                        source="/test",
                        subject=f"K{i}",
                    ),
                )
        await asyncio.sleep(2.0)
        assert await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 5
        assert relay.last_error is not None and relay_task.done() is False

        broker = EmbeddedBroker(port, tmp_path / "broker.log")
        await asyncio.to_thread(broker.start)
        await create_topics(bootstrap, [topic], partitions=1, replication=1)
        for _ in range(300):
            if await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0:
                break
            await asyncio.sleep(0.1)
        assert await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0

        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=20,
        )
        await consumer.start()
        try:
            records = []
            for _ in range(100):
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    records.extend(batch)
                if len(records) >= 5:
                    break
        finally:
            await consumer.stop()
        assert sorted(r.key for r in records) == [f"K{i}".encode() for i in range(5)]
        assert all(dict(r.headers)["content-type"] == CONTENT_TYPE.encode() for r in records)
    finally:
        relay.stop()
        await asyncio.gather(relay_task, return_exceptions=True)
        await relay.producer.stop()
        if broker is not None:
            broker.stop()


async def test_graceful_stop_commits_what_it_applied_so_a_successor_redoes_nothing(infra, schema, topic):
    _, pool = schema
    await produce(infra.bootstrap, topic, [station_event(f"G{i:03d}") for i in range(300)])
    group = f"g-{topic}"
    first_metrics = Metrics("test")
    first = make_runner(infra, pool, topic, group, first_metrics, max_poll_records=50)

    async def some_applied() -> bool:
        return await pool.fetchval("SELECT count(*) FROM applied") >= 50

    await run_until(first, some_applied)  # stop() mid-stream: the batch in hand is finished and committed
    applied_by_first = await pool.fetchval("SELECT count(*) FROM applied")

    second_metrics = Metrics("test")
    second = make_runner(infra, pool, topic, group, second_metrics)

    async def all_applied() -> bool:
        return await pool.fetchval("SELECT count(*) FROM applied") == 300

    # The successor's join may wait for the group's rebalance (a session timeout) on a loaded machine.
    await run_until(second, all_applied, timeout=60)
    assert consumed(second_metrics, topic, "duplicate") == 0  # nothing the first applied came back
    assert consumed(second_metrics, topic, "ok") == 300 - applied_by_first
    assert await pool.fetchval("SELECT count(DISTINCT code) FROM applied") == 300


async def test_a_directory_event_published_on_the_ingress_topic_is_dead_lettered_not_applied(infra, schema):
    """Finding 2 of the security review: anyone allowed to publish to the public ingress topic sent a
    `token_issued` of their choosing and the forged token worked. A handler is bound to the topic its
    type travels on; on the ingress topic anything but submitted feedback is dead-lettered."""
    _, pool = schema
    marker = secrets.token_hex(4)
    forged = new_event(
        EventTypes.TOKEN_ISSUED,
        {"token_id": f"forged-{marker}", "token_hash": "0" * 64, "station": "KZ01", "role": "leader"},
        source="/attacker",
    ).to_json()
    genuine = new_event(
        EventTypes.TOKEN_ISSUED,
        {"token_id": f"real-{marker}", "token_hash": "1" * 64, "station": "KZ01", "role": "officer"},
        source="/fengqiao/mediation",
    ).to_json()
    citizen_update = new_event(
        EventTypes.CITIZEN_UPDATE,
        {"tracking_no": "FQ1", "station": "KZ01", "kind": "resolved", "text": "您的事项已办结"},
        source="/attacker",
    ).to_json()

    async def record_token(event, conn, outbox) -> None:
        await conn.execute("INSERT INTO applied (event_id, code) VALUES ($1, $2)", event.id, event.data["token_id"])

    metrics = Metrics("test")
    topics = [Topics.SUBMISSIONS, Topics.DIRECTORY]
    config = RunnerConfig(
        group_id=f"g-ingress-{marker}",
        topics=topics,
        fetch_max_wait_ms=20,
        handlers=bind_handlers(topics, {EventTypes.TOKEN_ISSUED: record_token}),
    )
    runner = ConsumerRunner(
        pool=pool,
        bootstrap=infra.bootstrap,
        config=config,
        metrics=metrics,
        client_id="test",
        producer=ProducerHandle(infra.bootstrap, "t"),
    )
    await produce(infra.bootstrap, Topics.SUBMISSIONS, [forged, citizen_update])
    await produce(infra.bootstrap, Topics.DIRECTORY, [genuine])

    # The session's topics hold other tests' records too (the demo directory, the ingress fuzz): count ours.
    async def mine_applied() -> list[str]:
        return [r["code"] for r in await pool.fetch("SELECT code FROM applied WHERE code LIKE $1", f"%-{marker}")]

    async def done() -> bool:
        return consumed(metrics, Topics.SUBMISSIONS, "dead_lettered") >= 2 and await mine_applied() != []

    await run_until(runner, done, timeout=60)
    assert await mine_applied() == [f"real-{marker}"]

    mine = await dead_letters(
        infra.bootstrap,
        Topics.SUBMISSIONS,
        lambda found: {forged, citizen_update} <= {r.value for r in found},
        keep=lambda r: dict(r.headers).get("dlq.consumer.group") == config.group_id.encode(),
    )
    ours = [r for r in mine if r.value in (forged, citizen_update)]
    assert sorted(r.value for r in ours) == sorted([forged, citizen_update])
    assert {dict(r.headers)["dlq.reason"] for r in ours} == {b"type_not_allowed_on_topic"}


async def test_a_record_too_large_to_handle_is_dead_lettered_cut_short_and_the_partition_flows_on(infra, schema, topic):
    """A broker may accept a record over 1 MB (Tansu has no limit); the DLQ producer would refuse to
    write it whole, the batch would be rewound for ever and the partition would stop."""
    _, pool = schema
    huge = new_event(EventTypes.STATION_UPSERTED, {"code": "KZ09", "name": "所" * 600_000}, source="/test").to_json()
    assert len(huge) > 1_000_000
    producer = AIOKafkaProducer(
        bootstrap_servers=infra.bootstrap, enable_idempotence=False, max_request_size=4 * 1024 * 1024
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, huge)
        await producer.send_and_wait(topic, station_event("KZ02"))
    finally:
        await producer.stop()
    metrics = Metrics("test")
    runner = make_runner(infra, pool, topic, f"g-{topic}", metrics)

    async def done() -> bool:
        return (
            await pool.fetchval("SELECT count(*) FROM applied") == 1 and consumed(metrics, topic, "dead_lettered") == 1
        )

    await run_until(runner, done)
    records = await dead_letters(infra.bootstrap, topic, bool)
    headers = dict(records[0].headers)
    assert headers["dlq.reason"] == b"too_large"
    assert headers["dlq.original.size"] == str(len(huge)).encode()
    assert records[0].value == huge[: len(records[0].value)] and len(records[0].value) < 100_000

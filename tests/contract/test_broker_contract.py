"""The Kafka broker contract the platform relies on. Runs first: when one of these fails, the
broker (Tansu in development, Apache Kafka in production) is at fault, not Fengqiao."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from fengqiao.kafka import create_topics

pytestmark = pytest.mark.broker_contract

BROKER = "BROKER CONTRACT FAILED (the Kafka broker, not Fengqiao, misbehaves)"


def _name(prefix: str) -> str:
    return f"contract.{prefix}.{secrets.token_hex(4)}"


async def _produce(bootstrap: str, topic: str, values: list[bytes], partition: int | None = None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        futures = [await producer.send(topic, v, partition=partition) for v in values]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _drain(consumer: AIOKafkaConsumer, want: int, timeout: float = 15.0) -> list:
    got = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(got) < want and asyncio.get_running_loop().time() < deadline:
        batch = await consumer.getmany(timeout_ms=200)
        for records in batch.values():
            got.extend(records)
    return got


async def test_create_topic_produce_consume_commit(infra):
    topic = _name("basic")
    created = await create_topics(infra.bootstrap, [topic], partitions=2, replication=1)
    assert created == [topic], f"{BROKER}: topic {topic} was not created"
    await _produce(infra.bootstrap, topic, [f"m{i}".encode() for i in range(10)])

    group = _name("group")
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=infra.bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    try:
        records = await _drain(consumer, 10)
        assert sorted(r.value for r in records) == sorted(f"m{i}".encode() for i in range(10)), (
            f"{BROKER}: a group consumer did not receive the 10 produced messages"
        )
        offsets = {}
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            offsets[tp] = max(offsets.get(tp, 0), r.offset + 1)
        await consumer.commit(offsets)
        for tp, offset in offsets.items():
            assert await consumer.committed(tp) == offset, f"{BROKER}: committed offset not read back for {tp}"
        # Lag is computed as highwater - position inside the consumer (DESIGN section 3). Not
        # end_offsets(): Tansu answers ListOffsets with the last batch's base offset + 1.
        lag = sum([consumer.highwater(tp) - await consumer.position(tp) for tp in offsets])
        assert sum(consumer.highwater(tp) for tp in offsets) == 10 and lag == 0, (
            f"{BROKER}: highwater/position do not account for the 10 messages"
        )
    finally:
        await consumer.stop()


async def test_rebalance_between_two_members(infra):
    topic = _name("rebalance")
    await create_topics(infra.bootstrap, [topic], partitions=2, replication=1)
    group = _name("group")
    kwargs = dict(
        bootstrap_servers=infra.bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=500,
    )
    first = AIOKafkaConsumer(topic, **kwargs)
    await first.start()
    second = None
    try:
        await _drain(first, 1, timeout=3)  # join the group
        assert len(first.assignment()) == 2, f"{BROKER}: a lone member did not get both partitions"
        second = AIOKafkaConsumer(topic, **kwargs)
        await second.start()
        deadline = asyncio.get_running_loop().time() + 30
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.gather(first.getmany(timeout_ms=200), second.getmany(timeout_ms=200))
            if len(first.assignment()) == 1 and len(second.assignment()) == 1:
                break
        assert len(first.assignment()) == 1 and len(second.assignment()) == 1, (
            f"{BROKER}: two members of one group did not split two partitions "
            f"({first.assignment()} / {second.assignment()})"
        )
        assert first.assignment() != second.assignment(), f"{BROKER}: both members got the same partition"
    finally:
        if second is not None:
            await second.stop()
        await first.stop()


async def test_read_from_the_middle_of_a_batch(infra):
    topic = _name("seek")
    await create_topics(infra.bootstrap, [topic], partitions=1, replication=1)
    await _produce(infra.bootstrap, topic, [f"v{i}".encode() for i in range(20)], partition=0)
    tp = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=infra.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20)
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, 7)
        records = await _drain(consumer, 13)
        assert [r.offset for r in records] == list(range(7, 20)), (
            f"{BROKER}: reading from offset 7 of a 20-message batch returned offsets {[r.offset for r in records]}"
        )
        assert records[0].value == b"v7", f"{BROKER}: offset 7 does not hold the 8th message"
        assert consumer.highwater(tp) == 20 and await consumer.position(tp) == 20, (
            f"{BROKER}: highwater/position wrong after reading to the end"
        )
    finally:
        await consumer.stop()

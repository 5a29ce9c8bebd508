"""Kafka plumbing: producer handle, explicit topic creation, and the consumer runner.

The runner implements DESIGN section 3's delivery semantics: for each polled batch, one
PostgreSQL transaction inserts one inbox row per message (a conflict = duplicate, skipped), runs
the handlers and writes their outgoing events to the outbox; then the Kafka offsets are
committed. A batch that fails is replayed one message at a time, so one poison message is
dead-lettered alone and the rest of the partition keeps flowing. Infrastructure failures are
retried in place with backoff and never reach the DLQ.

Over 400 lines on purpose: decode, batch transaction, one-by-one fallback, dead-lettering and
seek-back are one mechanism, read together.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from fengqiao.events import CloudEvent, PoisonMessage, check_topic, dlq_topic, parse_event
from fengqiao.metrics import Metrics
from fengqiao.outbox import Handler, Outbox
from fengqiao.producer import ProducerHandle

__all__ = [
    "ConsumerRunner",
    "Decision",
    "ProducerHandle",
    "RunnerConfig",
    "SimulatedCrash",
    "backoff_delay",
    "create_topics",
    "decide",
]

log = structlog.get_logger(__name__)

# No Fengqiao event comes near this (content is at most 5,000 characters); a larger record is refused
# before it is parsed. A broker may still accept it (Tansu has no 1 MB limit, a Kafka topic may allow more).
MAX_EVENT_BYTES = 256 * 1024
# What of a refused record the DLQ keeps: enough to see what it was, well under a producer request's
# 1 MB, so a record that was too large to handle is never too large to dead-letter (a DLQ write that
# fails rewinds the batch, and the partition would stop for good).
DLQ_VALUE_BYTES = 64 * 1024
DLQ_HEADER_BYTES = 16 * 1024


# ---------------------------------------------------------------------------------------------
# Topics (the producer is `fengqiao.producer.ProducerHandle`, re-exported here)
# ---------------------------------------------------------------------------------------------


async def create_topics(
    bootstrap: str, topics: list[str], *, partitions: int, replication: int, compacted: frozenset[str] = frozenset()
) -> list[str]:
    """Create topics explicitly (Tansu does not auto-create). Returns the ones created now."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="fengqiao-admin")
    await admin.start()
    created: list[str] = []
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        for name in missing:
            configs = {"cleanup.policy": "compact"} if name in compacted else {}
            try:
                await admin.create_topics([NewTopic(name, partitions, replication, topic_configs=configs)])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()
    return created


# ---------------------------------------------------------------------------------------------
# Decision logic (pure, unit-tested)
# ---------------------------------------------------------------------------------------------

_TRANSIENT = (
    OSError,
    asyncio.TimeoutError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.QueryCanceledError,
    asyncpg.AdminShutdownError,
    KafkaError,
)


@dataclass(frozen=True)
class Decision:
    action: Literal["retry", "dead_letter", "seek_back"]
    delay_s: float = 0.0
    reason: str = ""


def backoff_delay(attempt: int, *, base: float = 0.2, cap: float = 5.0, jitter: float = 0.1) -> float:
    """Exponential backoff with a cap and a little jitter; attempt counts from 1."""
    delay: float = min(cap, base * (2 ** (attempt - 1)))  # int ** int is typed Any (a negative power is a float)
    return delay * (1 + random.uniform(-jitter, jitter))


def decide(exc: BaseException, *, attempt: int, max_attempts: int, dead_letter_after: int) -> Decision:
    """What to do with a message whose processing raised `exc` on its `attempt`-th try.

    - PoisonMessage, or data PostgreSQL refuses (asyncpg.DataError): it can never succeed: dead-letter now.
    - Infrastructure (database, network, broker, timeouts): retry in place with backoff; when
      the in-place attempts run out, seek back so the message is fetched again on a later poll
      (the consumer keeps polling, so it is not thrown out of its group). Never dead-lettered.
    - Anything else is unexplained (a bug, a constraint violation): retry a few times in case it
      is transient, then dead-letter with the error so the partition keeps flowing.
    """
    if isinstance(exc, PoisonMessage):
        return Decision("dead_letter", reason=exc.reason)
    if isinstance(exc, asyncpg.DataError):  # the data itself (a value PostgreSQL refuses): never succeeds
        return Decision("dead_letter", reason=f"invalid_data:{type(exc).__name__}")
    if isinstance(exc, _TRANSIENT):
        if attempt >= max_attempts:
            return Decision("seek_back", delay_s=backoff_delay(attempt), reason=type(exc).__name__)
        return Decision("retry", delay_s=backoff_delay(attempt), reason=type(exc).__name__)
    if attempt >= dead_letter_after:
        return Decision("dead_letter", reason=f"handler_error:{type(exc).__name__}")
    return Decision("retry", delay_s=backoff_delay(attempt), reason=type(exc).__name__)


# ---------------------------------------------------------------------------------------------
# Consumer runner
# ---------------------------------------------------------------------------------------------


class SimulatedCrash(BaseException):
    """Raised by fault-injection hooks in tests to stop a runner abruptly."""


@dataclass
class _Item:
    record: ConsumerRecord
    event: CloudEvent | None = None
    poison: PoisonMessage | None = None
    handler: Handler | None = None

    def work(self) -> _Work | None:
        """The item as work for its handler, or None if it is poison or has no handler."""
        if self.poison is None and self.event is not None and self.handler is not None:
            return _Work(self, self.event, self.handler)
        return None


@dataclass
class _Work:
    """An item its handler is to handle: decoded, not poison, a handler bound to its type."""

    item: _Item
    event: CloudEvent
    handler: Handler

    @property
    def record(self) -> ConsumerRecord:
        return self.item.record


@dataclass
class RunnerConfig:
    group_id: str
    topics: list[str]
    # topic -> event type -> handler (`fengqiao.events.bind_handlers`): an event is handled only on
    # the topic its type is bound to; a type the topic may not carry is dead-lettered.
    handlers: dict[str, dict[str, Handler]]
    fetch_max_wait_ms: int = 20
    max_poll_records: int = 500
    max_poll_interval_ms: int = 300_000
    handler_timeout_s: float = 30.0
    retry_attempts: int = 5
    dead_letter_after: int = 3
    batch_transactions: bool = True
    # Test-only fault injection: called after the database commit, before the offset commit.
    after_db_commit: Callable[[], None] | None = field(default=None, repr=False)


class ConsumerRunner:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        bootstrap: str,
        config: RunnerConfig,
        producer: ProducerHandle,
        metrics: Metrics,
        client_id: str,
    ) -> None:
        self.pool = pool
        self.bootstrap = bootstrap
        self.config = config
        self.producer = producer
        self.metrics = metrics
        self.client_id = client_id
        self._consumer: AIOKafkaConsumer | None = None
        self._stopping = asyncio.Event()
        self.started = False
        self.last_error: str | None = None
        self._failing_since: float | None = None
        self._last_lag_at = 0.0
        metrics.init_consumer_series(config.topics)

    # -- lifecycle ------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop fetching; the batch in hand is finished and committed first."""
        self._stopping.set()

    @property
    def healthy(self) -> bool:
        stuck = self._failing_since is not None and time.monotonic() - self._failing_since > 30
        return self.started and not self._stopping.is_set() and not stuck

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            *self.config.topics,
            bootstrap_servers=self.bootstrap,
            group_id=self.config.group_id,
            client_id=self.client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.config.fetch_max_wait_ms,
            max_poll_records=self.config.max_poll_records,
            max_poll_interval_ms=self.config.max_poll_interval_ms,
            isolation_level="read_uncommitted",
        )
        self._consumer = consumer
        try:
            await self._start_with_retry(consumer)
            self.started = not self._stopping.is_set()
            log.info("consumer_started", group=self.config.group_id, topics=self.config.topics)
            while not self._stopping.is_set():
                batch = await consumer.getmany(timeout_ms=200)
                if batch:
                    try:
                        await self._process(consumer, batch)
                    except (SimulatedCrash, asyncio.CancelledError):
                        raise
                    except Exception as exc:
                        # E.g. the DLQ could not be written because the broker is down: rewind
                        # the whole batch; what was already applied is skipped by the inbox.
                        self.last_error = type(exc).__name__
                        if self._failing_since is None:
                            self._failing_since = time.monotonic()
                        log.warning("batch_rewound", error=type(exc).__name__, detail=str(exc)[:200])
                        for tp, records in batch.items():
                            consumer.seek(tp, records[0].offset)
                        await self._sleep(backoff_delay(3))
                await self._update_lag()
        finally:
            self.started = False
            try:
                await consumer.stop()
            except Exception:  # the broker may be gone; nothing left to commit
                pass
            log.info("consumer_stopped", group=self.config.group_id)

    async def _start_with_retry(self, consumer: AIOKafkaConsumer) -> None:
        """Start (join the group), retrying broker errors; give up at once when asked to stop, even
        while the group coordinator keeps the join waiting for a rebalance."""
        attempt = 0
        while True:
            try:
                starting = asyncio.ensure_future(consumer.start())
                stopping = asyncio.ensure_future(self._stopping.wait())
                try:
                    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    stopping.cancel()
                if not starting.done():
                    starting.cancel()
                    await asyncio.gather(starting, return_exceptions=True)
                    return
                starting.result()
                return
            except KafkaError as exc:
                attempt += 1
                self.last_error = type(exc).__name__
                delay = backoff_delay(attempt)
                log.warning("consumer_start_failed", error=type(exc).__name__, retry_in_s=round(delay, 2))
                if self._stopping.is_set():
                    raise
                await asyncio.sleep(delay)

    # -- processing -----------------------------------------------------------------------------

    def _decode(self, record: ConsumerRecord) -> _Item:
        item = _Item(record)
        try:
            if record.value is not None and len(record.value) > MAX_EVENT_BYTES:
                raise PoisonMessage("too_large", f"{len(record.value)} bytes; the limit is {MAX_EVENT_BYTES}")
            item.event = parse_event(record.value)
            check_topic(record.topic, item.event.type)
            item.handler = self.config.handlers.get(record.topic, {}).get(item.event.type)
            if item.handler is not None:
                # Its data against its contract now, before any transaction: a schema violation is
                # dead-lettered alone instead of sending the whole batch to one-by-one processing.
                item.event.validated_data()
        except PoisonMessage as exc:
            item.poison = exc
        return item

    async def _process(self, consumer: AIOKafkaConsumer, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        items_by_tp = {tp: [self._decode(r) for r in records] for tp, records in batch.items()}
        all_items = [i for items in items_by_tp.values() for i in items]
        started = time.perf_counter()

        # Poison at the envelope level is known before any transaction: dead-letter it first.
        for item in all_items:
            if item.poison is not None:
                await self._dead_letter(item, item.poison.reason, str(item.poison))

        work = [w for i in all_items if (w := i.work()) is not None]
        for item in all_items:
            if item.poison is None and item.handler is None:
                self.metrics.events_consumed.labels(topic=item.record.topic, outcome="ignored").inc()

        commit_to: dict[TopicPartition, int] = {tp: items[-1].record.offset + 1 for tp, items in items_by_tp.items()}
        done = False
        if work and self.config.batch_transactions and len(work) > 1:
            try:
                outcomes = await asyncio.wait_for(self._apply(work), self.config.handler_timeout_s)
                done = True
                self._count(work, outcomes)
            except Exception as exc:
                log.info("batch_fallback", size=len(work), error=type(exc).__name__)
        if work and not done:
            for tp, items in items_by_tp.items():
                resume = await self._process_one_by_one([w for w in work if w.item in items])
                if resume is not None:  # infrastructure still failing: seek back, retry later
                    consumer.seek(tp, resume)
                    if resume == items[0].record.offset:
                        commit_to.pop(tp)
                    else:
                        commit_to[tp] = resume
        if done:
            self._failing_since = None

        elapsed = time.perf_counter() - started
        for w in work:
            self.metrics.event_handle_seconds.labels(topic=w.record.topic).observe(elapsed / max(1, len(work)))

        if self.config.after_db_commit is not None:
            self.config.after_db_commit()
        if commit_to:
            try:
                await consumer.commit(commit_to)
            except KafkaError as exc:  # e.g. a rebalance took the partition: the inbox dedupes
                log.warning("offset_commit_failed", error=type(exc).__name__)

    async def _apply(self, items: list[_Work]) -> list[str]:
        """One transaction: inbox rows, handlers, outbox. Returns 'ok' / 'duplicate' per item."""
        outcomes: list[str] = []
        async with self.pool.acquire() as conn, conn.transaction():
            # One round trip for the whole batch's inbox rows; a row not returned is a duplicate.
            fresh_rows = await conn.fetch(
                "INSERT INTO inbox (source, event_id, topic, event_type) "
                "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) "
                "ON CONFLICT DO NOTHING RETURNING source, event_id",
                [i.event.source for i in items],
                [i.event.id for i in items],
                [i.record.topic for i in items],
                [i.event.type for i in items],
            )
            fresh = {(r["source"], r["event_id"]) for r in fresh_rows}
            outbox = Outbox(conn)
            for item in items:
                identity = (item.event.source, item.event.id)
                if identity not in fresh:  # seen before, or earlier in this very batch
                    outcomes.append("duplicate")
                    continue
                fresh.discard(identity)
                await item.handler(item.event, conn, outbox)
                outcomes.append("ok")
            await outbox.flush()
        outbox.run_after_commit()
        return outcomes

    async def _process_one_by_one(self, items: list[_Work]) -> int | None:
        """Returns the offset to seek back to if infrastructure keeps failing, else None."""
        for item in items:
            offset: int = item.record.offset  # where to seek back to (aiokafka's records are untyped)
            attempt = 0
            while True:
                attempt += 1
                try:
                    outcomes = await asyncio.wait_for(self._apply([item]), self.config.handler_timeout_s)
                    self._count([item], outcomes)
                    self._failing_since = None
                    self.last_error = None
                    break
                except Exception as exc:
                    decision = decide(
                        exc,
                        attempt=attempt,
                        max_attempts=self.config.retry_attempts,
                        dead_letter_after=self.config.dead_letter_after,
                    )
                    self.last_error = type(exc).__name__
                    log.warning(
                        "event_failed",
                        topic=item.record.topic,
                        partition=item.record.partition,
                        offset=item.record.offset,
                        event_type=item.event.type,
                        error=type(exc).__name__,
                        action=decision.action,
                        attempt=attempt,
                    )
                    if decision.action == "dead_letter":
                        await self._dead_letter(item.item, decision.reason, str(exc))
                        break
                    self.metrics.events_consumed.labels(topic=item.record.topic, outcome="retried").inc()
                    if decision.action == "seek_back":
                        if self._failing_since is None:
                            self._failing_since = time.monotonic()
                        await self._sleep(decision.delay_s)
                        return offset
                    await self._sleep(decision.delay_s)
                    if self._stopping.is_set():
                        return offset
        return None

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except TimeoutError:
            pass

    def _count(self, items: list[_Work], outcomes: list[str]) -> None:
        for item, outcome in zip(items, outcomes, strict=False):
            self.metrics.events_consumed.labels(topic=item.record.topic, outcome=outcome).inc()

    async def _dead_letter(self, item: _Item, reason: str, detail: str) -> None:
        """Publish the original bytes with error headers (a value over DLQ_VALUE_BYTES cut to that, with
        its size in a header); wait for the ack before moving on.
        If the broker is down this raises and the batch is retried (nothing is lost)."""
        record = item.record
        value, key, original_headers = record.value, record.key, list(record.headers or [])
        cut: list[tuple[str, bytes]] = []
        if value is not None and len(value) > DLQ_VALUE_BYTES:
            cut += [("dlq.truncated", b"value"), ("dlq.original.size", str(len(value)).encode())]
            value = value[:DLQ_VALUE_BYTES]
        if key is not None and len(key) > 1024:
            cut.append(("dlq.truncated.key", str(len(key)).encode()))
            key = key[:1024]
        if sum(len(k) + len(v or b"") for k, v in original_headers) > DLQ_HEADER_BYTES:
            cut.append(("dlq.truncated.headers", str(len(original_headers)).encode()))
            original_headers = []
        headers = (
            original_headers
            + cut
            + [
                ("dlq.reason", reason.encode()),
                ("dlq.error", detail[:1000].encode("utf-8", "replace")),
                ("dlq.original.topic", record.topic.encode()),
                ("dlq.original.partition", str(record.partition).encode()),
                ("dlq.original.offset", str(record.offset).encode()),
                ("dlq.consumer.group", self.config.group_id.encode()),
            ]
        )
        producer = await self.producer.get()
        await producer.send_and_wait(dlq_topic(record.topic), value=value, key=key, headers=headers)
        self.metrics.events_consumed.labels(topic=record.topic, outcome="dead_lettered").inc()
        log.warning(
            "event_dead_lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=reason,
            detail=detail[:300],
        )

    async def _update_lag(self) -> None:
        now = time.monotonic()
        if now - self._last_lag_at < 2.0 or self._consumer is None:
            return
        self._last_lag_at = now
        lag: dict[str, int] = defaultdict(int)
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            if highwater is None:
                continue
            try:
                position = await self._consumer.position(tp)
            except Exception:
                continue
            lag[tp.topic] += max(0, highwater - position)
        for topic in self.config.topics:
            self.metrics.consumer_lag.labels(topic=topic).set(lag.get(topic, 0))

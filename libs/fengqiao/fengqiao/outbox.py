"""Transactional outbox: events are written in the same transaction as the business rows, and a
relay publishes them afterwards (claimed with FOR UPDATE SKIP LOCKED, marked published).

While the broker is down rows simply wait; the relay drains them when it returns."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from types import TracebackType

import asyncpg
import structlog

from fengqiao.events import CONTENT_TYPE, TOPIC_TYPES, CloudEvent
from fengqiao.metrics import Metrics
from fengqiao.producer import ProducerHandle

log = structlog.get_logger(__name__)


class Outbox:
    """Collects outgoing events of one transaction; `flush` writes them on that connection."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self._rows: list[tuple[str, str | None, bytes, str]] = []
        self._after_commit: list[Callable[[], None]] = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the transaction has committed (metrics of committed work)."""
        self._after_commit.append(callback)

    def run_after_commit(self) -> None:
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    def add(self, topic: str, event: CloudEvent, *, key: str | None = None) -> None:
        allowed = TOPIC_TYPES.get(topic)
        if allowed is not None and event.type not in allowed:  # its consumers would dead-letter it
            raise ValueError(f"{event.type} does not travel on {topic}")
        headers = {"content-type": CONTENT_TYPE, "ce_type": event.type}
        self._rows.append((topic, key if key is not None else event.subject, event.to_json(), json.dumps(headers)))

    @property
    def events(self) -> list[tuple[str, str | None, bytes, str]]:
        return list(self._rows)

    async def flush(self) -> int:
        if not self._rows:
            return 0
        await self.conn.executemany(
            "INSERT INTO outbox (topic, key, value, headers) VALUES ($1, $2, $3, $4::jsonb)", self._rows
        )
        count = len(self._rows)
        self._rows.clear()
        return count


# What a consumer calls per event: the business writes on `conn`, outgoing events into the outbox,
# all in the runner's transaction.
Handler = Callable[[CloudEvent, asyncpg.Connection, Outbox], Awaitable[None]]


class unit_of_work:
    """`async with unit_of_work(pool) as (conn, outbox):` one transaction, outbox flushed before
    commit. For request handlers that change state and emit events."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def __aenter__(self) -> tuple[asyncpg.Connection, Outbox]:
        self._conn_cm = self.pool.acquire()
        conn = await self._conn_cm.__aenter__()
        self._tx = conn.transaction()
        await self._tx.start()
        self._outbox = Outbox(conn)
        return conn, self._outbox

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc_type is None:
                await self._outbox.flush()
                await self._tx.commit()
                self._outbox.run_after_commit()
            else:
                await self._tx.rollback()
        except BaseException:
            if not self._tx.is_completed():
                await self._tx.rollback()
            raise
        finally:
            await self._conn_cm.__aexit__(exc_type, exc, tb)


class OutboxRelay:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        dsn: str,
        schema: str,
        producer: ProducerHandle,
        metrics: Metrics,
        batch_size: int = 500,
        poll_interval_s: float = 1.0,
        retention_hours: float = 72.0,
        inbox_retention_days: float = 30.0,
        linger_s: float = 0.005,
    ) -> None:
        self.pool = pool
        self.dsn = dsn
        self.schema = schema
        self.producer = producer
        self.metrics = metrics
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.retention_hours = retention_hours
        self.linger_s = linger_s
        self.inbox_retention_days = inbox_retention_days
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.last_error: str | None = None
        self.running = False

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        self.running = True
        listener = asyncio.create_task(self._listen(), name="outbox-listener")
        backoff = 0.1
        last_housekeeping = 0.0
        try:
            while not self._stopping.is_set():
                try:
                    published = await self.publish_batch()
                    backoff = 0.1
                    self.last_error = None
                    now = time.monotonic()
                    if now - last_housekeeping > 5:
                        await self._housekeeping(delete=now - last_housekeeping > 60 or last_housekeeping == 0)
                        last_housekeeping = now
                    if published >= self.batch_size:
                        continue  # more waiting: do not sleep
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval_s)
                        # Let concurrent commits land so one round publishes them together.
                        await asyncio.sleep(self.linger_s)
                    except TimeoutError:
                        pass
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # broker or database unavailable: keep rows, back off
                    self.last_error = type(exc).__name__
                    log.warning(
                        "outbox_relay_failed",
                        error=type(exc).__name__,
                        detail=str(exc)[:200],
                        retry_in_s=round(backoff, 2),
                    )
                    try:
                        await asyncio.wait_for(self._stopping.wait(), timeout=backoff)
                    except TimeoutError:
                        pass
                    backoff = min(backoff * 2, 5.0)
        finally:
            self.running = False
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)

    async def publish_batch(self) -> int:
        """Claim up to batch_size pending rows, publish them, mark them published. Returns count."""
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT id, topic, key, value, headers FROM outbox WHERE published_at IS NULL "
                "ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                self.batch_size,
            )
            if not rows:
                return 0
            producer = await self.producer.get()
            futures = []
            for row in rows:
                headers = [(k, str(v).encode()) for k, v in json.loads(row["headers"]).items()]
                key = row["key"].encode() if row["key"] is not None else None
                futures.append(await producer.send(row["topic"], value=row["value"], key=key, headers=headers))
            await asyncio.gather(*futures)
            await conn.execute(
                "UPDATE outbox SET published_at = now() WHERE id = any($1::bigint[])", [r["id"] for r in rows]
            )
        self.metrics.outbox_published.inc(len(rows))
        return len(rows)

    async def _housekeeping(self, *, delete: bool) -> None:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT count(*) AS pending, extract(epoch FROM now() - min(created_at)) AS oldest "
                "FROM outbox WHERE published_at IS NULL"
            )
            self.metrics.outbox_pending.set(row["pending"])
            self.metrics.outbox_oldest_age.set(float(row["oldest"] or 0.0))
            if delete:
                await conn.execute(
                    "DELETE FROM outbox WHERE published_at < now() - make_interval(secs => $1)",
                    self.retention_hours * 3600,
                )
                await conn.execute(
                    "DELETE FROM inbox WHERE received_at < now() - make_interval(days => $1::int)",
                    int(self.inbox_retention_days),
                )

    async def _listen(self) -> None:
        """LISTEN on the schema's outbox channel so the relay wakes as soon as a row commits."""
        channel = f"{self.schema}_outbox"
        while not self._stopping.is_set():
            conn = None
            try:
                conn = await asyncpg.connect(self.dsn)
                await conn.add_listener(channel, lambda *_: self._wake.set())
                # Two conditions, and a closed connection sets no event: poll them once a second.
                while not self._stopping.is_set() and not conn.is_closed():  # noqa: ASYNC110
                    await asyncio.sleep(1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(1.0)
            finally:
                if conn is not None:
                    await conn.close(timeout=2)

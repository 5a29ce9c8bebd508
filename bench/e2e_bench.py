"""End-to-end benchmark on the embedded stack (`make bench`). Not part of the test suite.

Measures, in one run on this machine:
  1. the bare 4-hop chain (consume -> one transaction per polled batch -> produce, no
     application logic, each hop its own process): the ceiling the platform can reach here;
  2. the real pipeline, items submitted through the ingress topic and through
     POST /api/v1/feedback, at a steady 50 items/s and flat out: throughput and p50/p95/p99 of
     submission -> triaged / assigned / notified (officer's console notification);
  3. each service's peak resident memory.
Latencies are from the client's send time (carried in `occurred_at`) to the database commit
timestamps of each stage. Figures are printed and written to bench-results/.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from fengqiao.admin import migrate_all, seed_demo
from fengqiao.devstack import (
    SERVICES,
    EmbeddedBroker,
    EmbeddedPostgres,
    free_port,
    start_service,
    stop_process,
    wait_ready,
)
from fengqiao.events import CONTENT_TYPE, Topics
from fengqiao.kafka import create_topics
from fengqiao.pii import new_index_key_setting, new_key_setting

SYNTHETIC_TEXTS = [
    "矿山路口晚上路灯不亮，行人很不安全，希望尽快修好",
    "楼上邻居每天深夜装修噪音扰民，多次协商无果",
    "接到冒充客服的电话，被骗转账五千元，请帮忙处理",
    "老板拖欠我们十几个工人三个月工资，一直不给",
    "请问办理居住证需要带什么材料，多久能办好",
    "小区门口经常有人乱停车堵住消防通道",
    "感谢新村派出所民警帮我找回走失的老人",
    "我的电动车昨晚在楼下被偷了",
]


def load_texts() -> list[str]:
    """Real citizens' messages (the public benchmark data, read in place) as load: triage merges
    near-duplicates, so a load of one text repeated would measure merging, not the pipeline."""
    data = Path(os.environ.get("FENGQIAO_BENCH_DATA", "../shared/data"))
    texts: dict[str, None] = {}  # ordered, without exact repeats
    for name in (
        "msgabench/messages_train.tsv",
        "msgabench/messages_test.tsv",
        "teddycup2020/details_train.tsv",
        "teddycup2020/details_test.tsv",
        "teddycup2020/titles_train.tsv",
        "teddycup2020/titles_dev.tsv",
        "teddycup2020/titles_test.tsv",
    ):
        path = data / name
        if path.exists():
            with path.open(encoding="utf-8") as f:
                next(f)
                texts.update((line.split("\t", 1)[0][:2000], None) for line in f if line.strip())
    if texts:
        return list(texts)
    print(f"[bench] {data} not found: synthetic texts (many will be merged as duplicates)", flush=True)
    return SYNTHETIC_TEXTS


TEXTS = load_texts()
_NEXT_TEXT = itertools.count()  # every item of every run gets its own message while they last


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def summary_ms(values: list[float]) -> dict:
    return {
        k: (round(v * 1000, 1) if v is not None else None)
        for k, v in {"p50": pct(values, 0.5), "p95": pct(values, 0.95), "p99": pct(values, 0.99)}.items()
    }


# --------------------------------------------------------------------------------------------
# 1. the bare chain
# --------------------------------------------------------------------------------------------

HOPS = 4


def _hop_process(index: int, bootstrap: str, dsn: str, ready: mp.Event) -> None:
    async def run() -> None:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2, server_settings={"search_path": "bench_chain"})
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=2)
        consumer = AIOKafkaConsumer(
            f"bench.chain.{index}",
            bootstrap_servers=bootstrap,
            group_id=f"bench-hop-{index}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=20,
            max_poll_records=500,
        )
        await producer.start()
        await consumer.start()
        ready.set()
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=200)
                if not batch:
                    continue
                records = [r for rs in batch.values() for r in rs]
                async with pool.acquire() as conn, conn.transaction():
                    await conn.executemany(
                        "INSERT INTO inbox (id) VALUES ($1) ON CONFLICT DO NOTHING",
                        [(f"{index}:{r.partition}:{r.offset}",) for r in records],
                    )
                    futures = [await producer.send(f"bench.chain.{index + 1}", r.value, key=r.key) for r in records]
                    await asyncio.gather(*futures)
                await consumer.commit({tp: rs[-1].offset + 1 for tp, rs in batch.items()})
        finally:
            await consumer.stop()
            await producer.stop()

    asyncio.run(run())


async def bare_chain(bootstrap: str, dsn: str, flat_n: int, steady_rate: int, steady_s: int) -> dict:
    conn = await asyncpg.connect(dsn)
    await conn.execute(
        "DROP SCHEMA IF EXISTS bench_chain CASCADE; CREATE SCHEMA bench_chain; "
        "CREATE TABLE bench_chain.inbox (id text PRIMARY KEY)"
    )
    await conn.close()
    await create_topics(bootstrap, [f"bench.chain.{i}" for i in range(HOPS + 1)], partitions=4, replication=1)
    ctx = mp.get_context("spawn")
    events = [ctx.Event() for _ in range(HOPS)]
    procs = [ctx.Process(target=_hop_process, args=(i, bootstrap, dsn, events[i]), daemon=True) for i in range(HOPS)]
    for p in procs:
        p.start()
    for e in events:
        e.wait(60)
    sink = AIOKafkaConsumer(
        f"bench.chain.{HOPS}",
        bootstrap_servers=bootstrap,
        group_id="bench-sink",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=2)
    await sink.start()
    await producer.start()
    result: dict = {}
    try:
        for label, n, rate in (("steady", steady_rate * steady_s, steady_rate), ("flat_out", flat_n, None)):
            sent_at: dict[bytes, float] = {}
            latencies: list[float] = []
            run = uuid.uuid4().hex[:6].encode()
            started = time.perf_counter()

            async def drain(until: int, latencies: list[float] = latencies, sent_at: dict = sent_at) -> None:
                while len(latencies) < until:
                    for rs in (await sink.getmany(timeout_ms=100)).values():
                        now = time.perf_counter()
                        for r in rs:
                            if r.key in sent_at:
                                latencies.append(now - sent_at.pop(r.key))

            drainer = asyncio.create_task(drain(n))
            futures = []
            for i in range(n):
                key = run + b":" + str(i).encode()
                if rate:
                    await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
                sent_at[key] = time.perf_counter()
                futures.append(await producer.send("bench.chain.0", b"x" * 200, key=key))
            await asyncio.gather(*futures)
            await asyncio.wait_for(drainer, 300)
            elapsed = time.perf_counter() - started
            result[label] = {"items": n, "events_per_s": round(n / elapsed, 1), **summary_ms(latencies)}
    finally:
        await producer.stop()
        await sink.stop()
        for p in procs:
            p.terminate()
    return result


# --------------------------------------------------------------------------------------------
# 2. the pipeline
# --------------------------------------------------------------------------------------------


def item(i: int, run: str, channel: str) -> dict:
    text = TEXTS[next(_NEXT_TEXT) % len(TEXTS)]
    return {
        "station": "KZ01" if i % 2 else "KZ02",
        "channel": channel,
        "content": f"{text}（{i}）",
        "external_ref": f"bench-{run}-{i}",
        "occurred_at": datetime.now(UTC).isoformat(),
    }


async def submit_ingress(bootstrap: str, run: str, n: int, rate: int | None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=2)
    await producer.start()
    try:
        started = time.perf_counter()
        futures = []
        for i in range(n):
            if rate:
                await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
            data = item(i, run, "transfer_12345")
            event = {
                "specversion": "1.0",
                "id": f"{run}-{i}",
                "source": "/bureau/12345-hotline",
                "type": "fengqiao.feedback.submitted",
                "time": data["occurred_at"],
                "datacontenttype": "application/json",
                "data": data,
            }
            futures.append(
                await producer.send(
                    Topics.SUBMISSIONS,
                    json.dumps(event, ensure_ascii=False).encode(),
                    key=data["external_ref"].encode(),
                    headers=[("content-type", CONTENT_TYPE.encode())],
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def submit_http(intake: str, token: str, run: str, n: int, rate: int | None, concurrency: int = 32) -> int:
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    started = time.perf_counter()

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while True:
            i = await queue.get()
            try:
                r = await client.post(
                    f"{intake}/api/v1/feedback",
                    json=item(i, run, "hotline"),
                    headers={"Authorization": f"Bearer {token}"},
                )
                if r.status_code != 202:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            finally:
                queue.task_done()

    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as client:
        workers = [asyncio.create_task(worker(client)) for _ in range(concurrency)]
        for i in range(n):
            if rate:
                await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
            queue.put_nowait(i)
        await queue.join()
        for w in workers:
            w.cancel()
    return errors


async def collect(dsn: str, run: str, n: int, timeout: float) -> list[asyncpg.Record]:
    """Wait until every item of the run reached its officer's console, then read stage times."""
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        last_done, last_progress = -1, time.monotonic()
        while time.monotonic() < deadline:
            done = await conn.fetchval(  # notified, or merged into an earlier item as a repeat
                "SELECT count(*) FROM intake.submissions s WHERE s.external_ref LIKE $1 AND ("
                "EXISTS (SELECT 1 FROM notify.console_notifications c WHERE c.tracking_no = s.tracking_no) OR "
                "EXISTS (SELECT 1 FROM triage.decisions d WHERE d.tracking_no = s.tracking_no "
                "AND d.merged_into IS NOT NULL))",
                f"bench-{run}-%",
            )
            if done >= n:
                break
            if done != last_done:
                last_done, last_progress = done, time.monotonic()
            elif time.monotonic() - last_progress > 60:
                print(f"[bench] no progress for 60 s at {done}/{n} items; giving up on this run", flush=True)
                break
            await asyncio.sleep(0.25)
        return await conn.fetch(
            """
            SELECT extract(epoch FROM s.occurred_at)::float8 AS sent,
                   extract(epoch FROM d.decided_at)::float8 AS triaged,
                   extract(epoch FROM a.assigned_at)::float8 AS assigned,
                   extract(epoch FROM (  -- the assignee's own notice (urgent items also tell the leader)
                       SELECT min(c.created_at) FROM notify.console_notifications c
                       WHERE c.tracking_no = s.tracking_no AND c.recipient_id = a.assignee_id
                         AND c.kind <> 'alert'))::float8 AS notified
            FROM intake.submissions s
            JOIN triage.decisions d USING (tracking_no)
            JOIN triage.assignments a USING (tracking_no)
            WHERE s.external_ref LIKE $1
            """,
            f"bench-{run}-%",
        )
    finally:
        await conn.close()


async def pipeline_run(submit, dsn: str, n: int, pids: dict[str, int]) -> dict:
    run = uuid.uuid4().hex[:8]
    cpu_before = cpu_seconds(pids)
    started = time.time()
    errors = await submit(run)
    submit_s = time.time() - started
    rows = await collect(dsn, run, n, timeout=900)
    result = {"items": n, "completed": len(rows), "errors": errors or 0, "submit_phase_s": round(submit_s, 2)}
    cpu_after = cpu_seconds(pids)
    result["cpu_ms_per_item"] = {
        name: round((cpu_after[name] - cpu_before[name]) * 1000 / max(1, len(rows)), 2) for name in pids
    }
    if rows:
        last = max(r["notified"] or r["assigned"] for r in rows)
        result["throughput_items_per_s"] = round(len(rows) / (last - started), 1)
        for stage in ("triaged", "assigned", "notified"):
            result[stage] = summary_ms([r[stage] - r["sent"] for r in rows if r[stage] is not None])
    return result


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """User + system CPU time of each process and its children (PostgreSQL backends); the
    benchmark's own process (the load generator) without its children."""
    out = {}
    for name, pid in pids.items():
        try:
            proc = psutil.Process(pid)
            total = sum(proc.cpu_times()[:2])
            for child in [] if pid == os.getpid() else proc.children(recursive=True):
                try:
                    total += sum(child.cpu_times()[:2])
                except psutil.Error:
                    pass
            out[name] = total
        except psutil.Error:
            out[name] = 0.0
    return out


class MemoryWatch:
    """Samples each service's resident memory twice a second."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.peak_mb: dict[str, float] = dict.fromkeys(pids, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, proc in self.procs.items():
                try:
                    self.peak_mb[name] = max(self.peak_mb[name], proc.memory_info().rss / 2**20)
                except psutil.Error:
                    pass
            time.sleep(0.5)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


async def print_top_statements(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        rows = await conn.fetch(
            "SELECT calls, round(total_exec_time::numeric, 1) AS ms, round(mean_exec_time::numeric, 3) AS mean_ms, "
            "left(regexp_replace(query, '\\s+', ' ', 'g'), 110) AS q FROM pg_stat_statements "
            "ORDER BY total_exec_time DESC LIMIT 25"
        )
        print("[bench] PostgreSQL statements by total execution time")
        for r in rows:
            print(f"{r['ms']:>10} ms {r['calls']:>8} calls {r['mean_ms']:>8} ms/call  {r['q']}")
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flat-ingress", type=int, default=10_000)
    parser.add_argument("--flat-http", type=int, default=3_000)
    parser.add_argument("--steady-rate", type=int, default=50)
    parser.add_argument("--steady-seconds", type=int, default=20)
    parser.add_argument("--chain-flat", type=int, default=10_000)
    parser.add_argument(
        "--pg-statements",
        action="store_true",
        help="load pg_stat_statements and print the statements that cost PostgreSQL most",
    )
    parser.add_argument(
        "--only",
        help="comma-separated runs to do (bare_chain, ingress_steady, http_steady, ingress_flat_out, http_flat_out)",
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="fengqiao-bench-"))
    pg = EmbeddedPostgres(
        workdir / "pg",
        free_port(),
        workdir / "postgres.log",
        settings={"shared_preload_libraries": "pg_stat_statements"} if args.pg_statements else None,
    )
    broker = EmbeddedBroker(free_port(), workdir / "broker.log")
    procs: dict = {}
    try:
        dsn = pg.start()
        bootstrap = broker.start()
        asyncio.run(
            create_topics(bootstrap, Topics.all(), partitions=4, replication=1, compacted=frozenset({Topics.DIRECTORY}))
        )
        asyncio.run(migrate_all(dsn, SERVICES))
        credentials = asyncio.run(seed_demo(dsn))
        integration = next(c["token"] for c in credentials if c["role"] == "integration")

        wanted = set(args.only.split(",")) if args.only else None
        chain = {"steady": {"p99": None}, "flat_out": {"events_per_s": None}}
        if wanted is None or "bare_chain" in wanted:
            print(f"[bench] bare {HOPS}-hop chain ...", flush=True)
            chain = asyncio.run(bare_chain(bootstrap, dsn, args.chain_flat, args.steady_rate, args.steady_seconds))
            print(json.dumps(chain, indent=2), flush=True)

        ports = {name: free_port() for name in SERVICES}
        env = {
            **os.environ,
            "DATABASE_URL": dsn,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "LOG_LEVEL": "WARNING",
            "SMTP_PORT": str(free_port()),
            "FENGQIAO_PII_KEYS": os.environ.get("FENGQIAO_PII_KEYS") or new_key_setting("bench"),
            "FENGQIAO_PII_INDEX_KEY": os.environ.get("FENGQIAO_PII_INDEX_KEY") or new_index_key_setting(),
            "FENGQIAO_LINK_KEY": os.environ.get("FENGQIAO_LINK_KEY") or new_index_key_setting(),
            **{f"{name.upper()}_PORT": str(port) for name, port in ports.items()},
        }
        procs = {name: start_service(name, env, workdir / f"{name}.log") for name in SERVICES}
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        not_ready = wait_ready(urls, 90)
        if not_ready:
            raise SystemExit(f"services not ready: {not_ready} (logs in {workdir})")
        time.sleep(2)  # let the directory events reach every service

        steady_n = args.steady_rate * args.steady_seconds
        runs = {
            "ingress_steady": (lambda run: submit_ingress(bootstrap, run, steady_n, args.steady_rate), steady_n),
            "http_steady": (
                lambda run: submit_http(urls["intake"], integration, run, steady_n, args.steady_rate),
                steady_n,
            ),
            "ingress_flat_out": (
                lambda run: submit_ingress(bootstrap, run, args.flat_ingress, None),
                args.flat_ingress,
            ),
            "http_flat_out": (
                lambda run: submit_http(urls["intake"], integration, run, args.flat_http, None),
                args.flat_http,
            ),
        }
        pipeline = {}
        cpu_pids = {
            **{name: p.pid for name, p in procs.items()},
            "postgres": pg.proc.pid,
            "broker": broker.proc.pid,
            "load_generator": os.getpid(),
        }
        with MemoryWatch({name: p.pid for name, p in procs.items()}) as memory:
            for label, (submit, n) in runs.items():
                if wanted is not None and label not in wanted:
                    continue
                print(f"[bench] pipeline {label} ({n} items) ...", flush=True)
                pipeline[label] = asyncio.run(pipeline_run(submit, dsn, n, cpu_pids))
                print(json.dumps(pipeline[label], indent=2), flush=True)
        ratios = {}
        if chain["flat_out"]["events_per_s"] and "ingress_flat_out" in pipeline:
            ratios["ingress_flat_out_vs_chain_flat_out"] = round(
                pipeline["ingress_flat_out"].get("throughput_items_per_s", 0) / chain["flat_out"]["events_per_s"], 3
            )
        if chain["steady"]["p99"] and "ingress_steady" in pipeline:
            ratios["steady_p99_assigned_vs_chain_p99"] = round(
                (pipeline["ingress_steady"].get("assigned", {}).get("p99") or 0) / chain["steady"]["p99"], 2
            )
        report = {
            "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
            "when": datetime.now(UTC).isoformat(),
            "bare_chain": chain,
            "pipeline": pipeline,
            "peak_rss_mb": {k: round(v, 1) for k, v in memory.peak_mb.items()},
            "ratios": ratios,
        }
        if args.pg_statements:
            asyncio.run(print_top_statements(dsn))
        out = Path("bench-results")
        out.mkdir(exist_ok=True)
        path = out / f"e2e-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
        path.write_text(json.dumps(report, indent=2))
        print("\n[bench] summary")
        print(json.dumps({"peak_rss_mb": report["peak_rss_mb"], "ratios": ratios}, indent=2))
        print(f"[bench] written to {path}")
    finally:
        for p in procs.values():
            stop_process(p)
        broker.stop()
        pg.stop()


if __name__ == "__main__":
    main()

"""Notify's delivery queue benchmark (`make bench-notify`). Not part of the test suite.

Embedded PostgreSQL, a real HTTP SMS gateway and a real SMTP relay in another process (so they do
not share this process's GIL), notify's handlers and channel workers as the app wires them.

  1. drain: N citizen SMS requests handled (consumer path: one transaction per 100 events), then
     the SMS worker drains them flat out -> messages/s through the gateway;
  2. steady: 20 SMS/s for 30 s with the worker loop running -> request handled -> accepted by the
     gateway p50/p95/p99;
  3. isolation: the SMS gateway stops answering; 10 e-mails/s for 20 s -> e-mail p50/p99 while SMS
     requests hang.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import tempfile
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

from fengqiao.db import create_pool, ensure_database, migrate
from fengqiao.devstack import EmbeddedPostgres, free_port
from fengqiao.events import CitizenMessageRequested, EventTypes, new_event
from fengqiao.metrics import Metrics
from fengqiao.outbox import unit_of_work
from fengqiao.pii import BlindIndex, PiiCipher, new_index_key_setting, new_key_setting
from notify.app import MIGRATIONS, channel_worker, rules_from, senders_from
from notify.config import NotifySettings
from notify.deliveries import DeliveryQueue
from notify.handlers import Deps, make_handlers
from notify.templates import Templates


def _gateway(port: int, received, hang) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # one reply, no 40 ms wait for a delayed ACK

        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            if hang.is_set():
                time.sleep(3600)
            received.put((json.loads(body)["ref"], time.time()))
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", "12")
            self.end_headers()
            self.wfile.write(b'{"code":"0"}')

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def _relay(port: int, received) -> None:
    from aiosmtpd.controller import Controller

    class Relay:
        async def handle_DATA(self, server, session, envelope):
            received.put((envelope.rcpt_tos[0], time.time()))
            return "250 OK"

    Controller(Relay(), hostname="127.0.0.1", port=port).start()
    while True:
        time.sleep(3600)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))] if values else float("nan")


class Bench:
    def __init__(self, pool, gateway_port: int, smtp_port: int, args) -> None:
        ns = NotifySettings(
            SMS_GATEWAY_URL=f"http://127.0.0.1:{gateway_port}/send",
            QUIET_HOURS="off",
            RECIPIENT_RATE_LIMIT="",
            NOTIFY_SMTP_HOST="127.0.0.1",
            NOTIFY_SMTP_PORT=str(smtp_port),
            NOTIFY_SMTP_SECURITY="none",
            SMS_GATEWAY_TIMEOUT_S="5",
            DELIVERY_BATCH=str(args.batch),
            DELIVERY_CONCURRENCY=str(args.concurrency),
        )
        self.pool = pool
        self.queue = DeliveryQueue(
            cipher=PiiCipher.from_setting(new_key_setting("b")),
            index=BlindIndex.from_setting(new_index_key_setting()),
            rules=rules_from(ns),
            templates=Templates(),
            senders=senders_from(ns),
        )
        self.handlers = make_handlers(
            Deps(
                templates=Templates(),
                queue=self.queue,
                link_key=b"k" * 32,
                public_base_url="https://fq.example",
                survey_link_valid_s=86400,
            )
        )(Metrics("notify"))

    async def request(self, events) -> float:
        async with unit_of_work(self.pool) as (conn, outbox):
            for e in events:
                await self.handlers[e.type](e, conn, outbox)
        return time.time()


def sms_event(i: int, email: bool = False):
    no = f"FQB{i:07d}"
    return new_event(
        EventTypes.CITIZEN_MESSAGE_REQUESTED,
        CitizenMessageRequested(
            tracking_no=no,
            station="KZ01",
            template="acknowledgement",
            phone=None if email else f"+86138{i:08d}",
            email=f"c{i}@example.com" if email else None,
            params={"access_code": "123456"},
        ),
        source="/bench",
        subject=no,
        stationid="KZ01",
    )


def drain_queue(q) -> list:
    out = []
    while not q.empty():
        out.append(q.get())
    return out


async def run(args, pg: EmbeddedPostgres, dsn: str) -> dict:
    ctx = mp.get_context("spawn")
    sms_q, mail_q, hang = ctx.Queue(), ctx.Queue(), ctx.Event()
    gw_port, smtp_port = free_port(), free_port()
    procs = [
        ctx.Process(target=_gateway, args=(gw_port, sms_q, hang), daemon=True),
        ctx.Process(target=_relay, args=(smtp_port, mail_q), daemon=True),
    ]
    for p in procs:
        p.start()
    results: dict = {}
    try:
        await ensure_database(dsn)
        schema = "notify"
        await migrate(dsn, schema, MIGRATIONS)
        pool = await create_pool(dsn, schema)
        await pool.execute("INSERT INTO stations (code, name) VALUES ('KZ01', '矿区派出所')")
        b = Bench(pool, gw_port, smtp_port, args)
        await asyncio.sleep(1.0)

        # 1. drain
        n = args.messages
        t0 = time.perf_counter()
        for start in range(0, n, 100):
            await b.request([sms_event(i) for i in range(start, min(n, start + 100))])
        enqueue_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        while await b.queue.process_due(pool, "sms", datetime.now().astimezone()):
            pass
        drain_s = time.perf_counter() - t0
        got = len(drain_queue(sms_q))
        results["drain"] = {
            "messages": n,
            "received_by_gateway": got,
            "handled_per_s": round(n / enqueue_s),
            "sent_per_s": round(n / drain_s),
        }
        print(
            f"drain: {n} SMS handled at {n / enqueue_s:.0f}/s, sent at {n / drain_s:.0f}/s (gateway received {got})",
            flush=True,
        )

        # 2. steady load with the worker loop
        rt = SimpleNamespace(pool=pool)
        workers = [asyncio.create_task(channel_worker(b.queue, c)(rt)) for c in ("sms", "email")]
        sent_at: dict[str, float] = {}
        rate, seconds = 20, args.seconds
        base = 1_000_000
        t_start = time.time()
        for k in range(rate * seconds):
            target = t_start + k / rate
            await asyncio.sleep(max(0.0, target - time.time()))
            e = sms_event(base + k)
            sent_at[e.data["phone"]] = await b.request([e])
        await asyncio.sleep(3)
        ids = {r["id"]: r["recipient_key"] for r in await pool.fetch("SELECT id, recipient_key FROM deliveries")}
        by_key = {b.queue.recipient_key("sms", phone): t for phone, t in sent_at.items()}
        lat = [
            (ts - by_key[ids[int(ref[3:])]]) * 1000
            for ref, ts in drain_queue(sms_q)
            if int(ref[3:]) in ids and ids[int(ref[3:])] in by_key
        ]
        results["steady_sms_ms"] = {
            "n": len(lat),
            "p50": round(pct(lat, 50), 1),
            "p95": round(pct(lat, 95), 1),
            "p99": round(pct(lat, 99), 1),
        }
        print(
            f"steady 20 SMS/s for {seconds}s: {len(lat)} delivered, handled -> gateway p50 {pct(lat, 50):.1f} ms, "
            f"p95 {pct(lat, 95):.1f} ms, p99 {pct(lat, 99):.1f} ms",
            flush=True,
        )

        # 3. a dead SMS gateway, e-mail keeps flowing
        hang.set()
        mail_sent: dict[str, float] = {}
        t_start = time.time()
        for k in range(10 * args.isolation_seconds):
            target = t_start + k / 10
            await asyncio.sleep(max(0.0, target - time.time()))
            await b.request([sms_event(2_000_000 + k)])  # these hang at the gateway
            e = sms_event(3_000_000 + k, email=True)
            mail_sent[e.data["email"]] = await b.request([e])
        await asyncio.sleep(3)
        mlat = [(ts - mail_sent[rcpt]) * 1000 for rcpt, ts in drain_queue(mail_q) if rcpt in mail_sent]
        stuck = await pool.fetchval("SELECT count(*) FROM deliveries WHERE channel = 'sms' AND status <> 'sent'")
        results["isolation_email_ms"] = {
            "n": len(mlat),
            "p50": round(pct(mlat, 50), 1),
            "p99": round(pct(mlat, 99), 1),
            "sms_not_sent": stuck,
        }
        print(
            f"dead SMS gateway, 10 e-mails/s for {args.isolation_seconds}s: {len(mlat)} e-mails delivered, "
            f"p50 {pct(mlat, 50):.1f} ms, p99 {pct(mlat, 99):.1f} ms; {stuck} SMS waiting",
            flush=True,
        )
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        await pool.close()
    finally:
        for p in procs:
            p.kill()
    out = Path("bench-results")
    out.mkdir(exist_ok=True)  # noqa: ASYNC240 - once, after the measurements
    (out / f"notify-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(json.dumps(results, indent=2))
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--isolation-seconds", type=int, default=20)
    ap.add_argument("--batch", type=int, default=50, help="DELIVERY_BATCH")
    ap.add_argument("--concurrency", type=int, default=8, help="DELIVERY_CONCURRENCY")
    work = Path(tempfile.mkdtemp(prefix="fengqiao-notify-bench-"))
    pg = EmbeddedPostgres(work / "pg", free_port(), work / "postgres.log")
    dsn = pg.start()
    try:
        asyncio.run(run(ap.parse_args(), pg, dsn))
    finally:
        pg.stop()


if __name__ == "__main__":
    main()

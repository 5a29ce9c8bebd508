"""Intake keeps accepting submissions while the broker is down, says it is not ready, and
publishes everything once the broker is back."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from fengqiao.db import ensure_database
from fengqiao.devstack import EmbeddedBroker, free_port, start_service, stop_process
from fengqiao.events import Topics
from fengqiao.kafka import create_topics
from tests.e2e.helpers import sql, wait_alive

pytestmark = pytest.mark.e2e


def test_intake_accepts_while_the_broker_is_down_and_catches_up_when_it_returns(infra, tmp_path):
    dsn = urlunsplit(urlsplit(infra.dsn)._replace(path=f"/outage_{secrets.token_hex(4)}"))
    asyncio.run(ensure_database(dsn))
    broker_port, http_port = free_port(), free_port()
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{broker_port}",
        "INTAKE_PORT": str(http_port),
        "SMTP_PORT": str(free_port()),
        "OUTBOX_POLL_INTERVAL_S": "0.2",
    }
    proc = start_service("intake", env, tmp_path / "intake.log")
    url = f"http://127.0.0.1:{http_port}"
    broker = None
    try:
        wait_alive(url, tmp_path / "intake.log")

        ready = httpx.get(f"{url}/readyz", timeout=5)
        assert ready.status_code == 503
        checks = ready.json()["checks"]
        assert checks["database"] == "ok" and checks["broker"] == "unreachable"
        assert checks["consumer"].startswith("not running")

        # The directory cannot arrive without a broker: give intake its station directly.
        sql(dsn, "INSERT INTO intake.stations (code, name) VALUES ('KZ01', '矿区派出所')")
        receipts = [
            httpx.post(f"{url}/api/v1/feedback", json={"station": "KZ01", "content": f"路灯坏了 {i}"}, timeout=10)
            for i in range(3)
        ]
        assert [r.status_code for r in receipts] == [202, 202, 202]

        def pending() -> int:
            return sql(dsn, "SELECT count(*) AS n FROM intake.outbox WHERE published_at IS NULL")[0]["n"]

        assert pending() >= 6  # received + triage request for each, waiting

        broker = EmbeddedBroker(broker_port, tmp_path / "broker.log")
        broker.start()
        asyncio.run(create_topics(broker.bootstrap, Topics.all(), partitions=1, replication=1))
        deadline = time.monotonic() + 30
        while pending() > 0:
            assert time.monotonic() < deadline, "the outbox did not drain after the broker came back"
            time.sleep(0.2)
        deadline = time.monotonic() + 30
        while httpx.get(f"{url}/readyz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, httpx.get(f"{url}/readyz", timeout=5).text
            time.sleep(0.3)
    finally:
        stop_process(proc)
        if broker is not None:
            broker.stop()

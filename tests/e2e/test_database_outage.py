"""While PostgreSQL is down, intake answers 503 quickly and stores nothing; when it returns,
intake accepts again without a restart."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import psutil
import pytest

from fengqiao.devstack import EmbeddedPostgres, free_port, start_service, stop_process
from tests.e2e.helpers import sql, wait_alive

pytestmark = pytest.mark.e2e


BODY = {"station": "KZ01", "content": "矿山路井盖丢失"}


@contextmanager
def intake_on_its_own_database(infra, tmp_path, **settings: str) -> Iterator[tuple[EmbeddedPostgres, str]]:
    """Intake as a process on a PostgreSQL of its own (the test stops or freezes it), with station
    KZ01 and one submission accepted; yields the database and intake's URL."""
    pg = EmbeddedPostgres(tmp_path / "pg", free_port(), tmp_path / "pg.log")
    pg.start()
    http_port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": pg.dsn,
        "KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap,
        "INTAKE_PORT": str(http_port),
        "SMTP_PORT": str(free_port()),
        **settings,
    }
    url = f"http://127.0.0.1:{http_port}"
    proc = None
    try:
        from fengqiao.db import ensure_database

        asyncio.run(ensure_database(pg.dsn))
        proc = start_service("intake", env, tmp_path / "intake.log")
        wait_alive(url, tmp_path / "intake.log")
        sql(pg.dsn, "INSERT INTO intake.stations (code, name) VALUES ('KZ01', '矿区派出所') ON CONFLICT DO NOTHING")
        assert httpx.post(f"{url}/api/v1/feedback", json=BODY, timeout=10).status_code == 202
        yield pg, url
    finally:
        if proc is not None:
            stop_process(proc)
        pg.stop()


def submitted_again_within(url: str, seconds: float, client_timeout: float) -> None:
    """Intake accepts a submission again, without a restart, within `seconds`."""
    deadline = time.monotonic() + seconds
    while (r := httpx.post(f"{url}/api/v1/feedback", json=BODY, timeout=client_timeout)).status_code != 202:
        assert time.monotonic() < deadline, r.text
        time.sleep(0.5)


def test_intake_answers_503_quickly_while_the_database_is_down(infra, tmp_path):
    with intake_on_its_own_database(infra, tmp_path) as (pg, url):
        pg.stop()
        for _ in range(3):  # an answer, not a hang (the client gives up after 15 s)
            r = httpx.post(f"{url}/api/v1/feedback", json=BODY, timeout=15)
            assert r.status_code == 503, r.text
            assert r.json()["detail"]["error"] == "unavailable" and r.headers["retry-after"] == "5"
        assert httpx.get(f"{url}/healthz").status_code == 200
        assert httpx.get(f"{url}/readyz", timeout=10).json()["checks"]["database"].startswith("unreachable")

        pg.start()
        submitted_again_within(url, 30, client_timeout=15)
        # the one before and the one after; nothing half-stored
        assert sql(pg.dsn, "SELECT count(*) AS n FROM intake.submissions")[0]["n"] == 2


def _freeze(pg: EmbeddedPostgres, sig: int) -> None:
    """SIGSTOP / SIGCONT the server and every backend: the host stops answering, connections stay open."""
    server = psutil.Process(pg.proc.pid)
    for proc in [server, *server.children(recursive=True)]:
        proc.send_signal(sig)


def test_intake_answers_503_within_its_deadline_while_the_database_is_frozen_and_recovers(infra, tmp_path):
    """Security review finding 13: with PostgreSQL stopped by SIGSTOP (connections open, nothing
    answers) a submission hung until the client gave up; it must get 503 with Retry-After within
    the request deadline, store nothing, and intake must recover by itself when the host answers."""
    with intake_on_its_own_database(infra, tmp_path, REQUEST_TIMEOUT_S="3") as (pg, url):
        _freeze(pg, signal.SIGSTOP)
        try:
            for _ in range(3):  # each answered (the deadline is 3 s here; the client would wait 20 s)
                r = httpx.post(f"{url}/api/v1/feedback", json=BODY, timeout=20)
                assert r.status_code == 503, r.text
                assert r.json()["detail"]["error"] == "unavailable" and r.headers["retry-after"] == "5"
            assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200  # the process itself is fine
        finally:
            _freeze(pg, signal.SIGCONT)
        submitted_again_within(url, 30, client_timeout=20)
        # The one before and the one after; the three refused while frozen left nothing behind.
        assert sql(pg.dsn, "SELECT count(*) AS n FROM intake.submissions")[0]["n"] == 2

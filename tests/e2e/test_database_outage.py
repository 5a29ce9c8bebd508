"""While PostgreSQL is down, intake answers 503 quickly and stores nothing; when it returns,
intake accepts again without a restart."""

from __future__ import annotations

import asyncio
import os
import time

import httpx
import pytest

from fengqiao.devstack import EmbeddedPostgres, free_port, start_service, stop_process

from tests.e2e.helpers import sql, wait_alive

pytestmark = pytest.mark.e2e


def test_intake_answers_503_quickly_while_the_database_is_down(infra, tmp_path):
    pg = EmbeddedPostgres(tmp_path / "pg", free_port(), tmp_path / "pg.log")
    pg.start()
    http_port = free_port()
    env = {**os.environ, "DATABASE_URL": pg.dsn, "KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap,
           "INTAKE_PORT": str(http_port), "SMTP_PORT": str(free_port())}
    url = f"http://127.0.0.1:{http_port}"
    proc = None
    try:
        from fengqiao.db import ensure_database

        asyncio.run(ensure_database(pg.dsn))
        proc = start_service("intake", env, tmp_path / "intake.log")
        wait_alive(url, tmp_path / "intake.log")

        sql(pg.dsn, "INSERT INTO intake.stations (code, name) VALUES ('KZ01', '矿区派出所') ON CONFLICT DO NOTHING")
        body = {"station": "KZ01", "content": "矿山路井盖丢失"}
        assert httpx.post(f"{url}/api/v1/feedback", json=body, timeout=10).status_code == 202

        pg.stop()
        for _ in range(3):  # an answer, not a hang (the client gives up after 15 s)
            r = httpx.post(f"{url}/api/v1/feedback", json=body, timeout=15)
            assert r.status_code == 503, r.text
            assert r.json()["detail"]["error"] == "unavailable" and r.headers["retry-after"] == "5"
        assert httpx.get(f"{url}/healthz").status_code == 200
        assert httpx.get(f"{url}/readyz", timeout=10).json()["checks"]["database"].startswith("unreachable")

        pg.start()
        deadline = time.monotonic() + 30
        while (r := httpx.post(f"{url}/api/v1/feedback", json=body, timeout=15)).status_code != 202:
            assert time.monotonic() < deadline, r.text
            time.sleep(0.5)

        assert sql(pg.dsn, "SELECT count(*) AS n FROM intake.submissions")[0]["n"] == 2  # the one before and the one after; nothing half-stored
    finally:
        if proc is not None:
            stop_process(proc)
        pg.stop()

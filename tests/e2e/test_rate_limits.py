"""Public endpoints are rate limited per client address; staff and systems are not."""

from __future__ import annotations

import asyncio
import os
import secrets
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from fengqiao.db import ensure_database
from fengqiao.devstack import free_port, start_service, stop_process
from tests.e2e.helpers import sql, wait_alive

pytestmark = pytest.mark.e2e


def test_limits_per_client_address(infra, tmp_path):
    dsn = urlunsplit(urlsplit(infra.dsn)._replace(path=f"/limits_{secrets.token_hex(4)}"))
    asyncio.run(ensure_database(dsn))
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap,
        "INTAKE_PORT": str(port),
        "SMTP_PORT": str(free_port()),
        "RATE_LIMIT_SUBMIT": "3/minute",
        "RATE_LIMIT_TRACK": "5/minute",
        "TRUSTED_PROXIES": "127.0.0.1",
    }
    proc = start_service("intake", env, tmp_path / "intake.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_alive(url, tmp_path / "intake.log")

        sql(dsn, "INSERT INTO intake.stations (code, name) VALUES ('KZ01', '矿区派出所')")
        sql(
            dsn,
            "INSERT INTO intake.api_tokens (token_id, token_hash, role) VALUES "
            "('t', encode(sha256('fq_limits-test-token'::bytea), 'hex'), 'integration')",
        )
        body = {"station": "KZ01", "content": "路灯坏了"}
        citizen = {"X-Forwarded-For": "203.0.113.7"}
        answers = [httpx.post(f"{url}/api/v1/feedback", json=body, headers=citizen).status_code for _ in range(4)]
        assert answers == [202, 202, 202, 429]
        limited = httpx.post(f"{url}/api/v1/feedback", json=body, headers=citizen)
        assert limited.json()["detail"]["error"] == "rate_limited" and int(limited.headers["retry-after"]) > 0

        # Another address is not affected; a system with a token is not limited at all.
        assert (
            httpx.post(f"{url}/api/v1/feedback", json=body, headers={"X-Forwarded-For": "198.51.100.9"}).status_code
            == 202
        )
        system = {"Authorization": "Bearer fq_limits-test-token", "X-Forwarded-For": "203.0.113.7"}
        assert all(
            httpx.post(f"{url}/api/v1/feedback", json=body | {"channel": "transfer_12345"}, headers=system).status_code
            == 202
            for _ in range(5)
        )

        # Guessing access codes on the tracking page runs into the limit too.
        guesses = [
            httpx.post(
                f"{url}/track",
                data={"tracking_no": "FQ22222222", "access_code": f"{i:08d}"},
                headers={"X-Forwarded-For": "192.0.2.1"},
            ).status_code
            for i in range(6)
        ]
        assert guesses == [404] * 5 + [429]
        # An address that is not a trusted proxy cannot choose its own X-Forwarded-For: covered by
        # unit tests of RateLimits.client_address.
    finally:
        stop_process(proc)

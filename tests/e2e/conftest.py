"""The four services as separate processes against the session's database and broker, shared by
the end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import shutil

import pytest

from fengqiao.cli import _migrate_all, _seed
from fengqiao.devstack import SERVICES, free_port, start_service, stop_process, wait_ready
from tests.servers import HttpRecorder, SmtpRecorder


@pytest.fixture(scope="session")
def stack(infra):
    asyncio.run(_migrate_all(infra.dsn, SERVICES))
    credentials = asyncio.run(_seed(infra.dsn))
    ports = {name: free_port() for name in SERVICES}
    smtp_port = free_port()
    # The outside world notify talks to: an SMS gateway and a mail relay, real local servers.
    sms, mail = HttpRecorder(), SmtpRecorder()
    env = {**os.environ, "DATABASE_URL": infra.dsn, "KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap,
           "SMTP_PORT": str(smtp_port), "RATE_LIMIT_SUBMIT": "100000/minute",
           "RATE_LIMIT_TRACK": "100000/minute", **{f"{name.upper()}_PORT": str(port) for name, port in ports.items()},
           "SMS_GATEWAY_URL": f"{sms.url}/sms/send", "SMS_GATEWAY_AUTH": "Bearer e2e-gateway",
           "NOTIFY_SMTP_HOST": "127.0.0.1", "NOTIFY_SMTP_PORT": str(mail.port), "NOTIFY_SMTP_SECURITY": "none",
           "NOTIFY_MAIL_FROM": "noreply@fengqiao.test",
           # the suite runs at any hour and sends many messages to the same test numbers
           "QUIET_HOURS": "off", "RECIPIENT_RATE_LIMIT": "", "DELIVERY_RETRY_BASE_S": "1"}
    procs = {name: start_service(name, env, infra.workdir / f"{name}.log") for name in SERVICES}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    try:
        not_ready = wait_ready(urls, timeout=60)
        assert not not_ready, f"services not ready: {not_ready}; logs: " + "; ".join(
            (infra.workdir / f"{n}.log").read_text()[-2000:] for n in not_ready)
        yield {"urls": urls, "smtp_port": smtp_port, "credentials": {c["staff_id"] or c["role"]: c for c in credentials},
               "procs": procs, "sms": sms, "mail": mail}
    finally:
        for proc in procs.values():
            stop_process(proc)
        sms.close()
        mail.close()


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, driven by Playwright; a missing browser fails under CI=true. Module-scoped:
    Playwright's sync API holds an event loop on this thread until it is closed, which would break
    the asyncio-based tests that follow."""
    executable = shutil.which("chromium")
    if executable is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (make test installs it as root: scripts/system-deps.sh)")
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844})  # a phone
    page = context.new_page()
    yield page
    context.close()

"""`fengqiao dev` (what `make run` runs): starts everything, seeds the demo, restarts a service
that dies and says so, and leaves no process behind on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from fengqiao.devstack import free_port, wait_ready

pytestmark = pytest.mark.e2e


def test_dev_stack_runs_restarts_a_dead_service_and_stops_cleanly(tmp_path):
    ports = {
        "INTAKE_PORT": free_port(),
        "MEDIATION_PORT": free_port(),
        "TRIAGE_PORT": free_port(),
        "NOTIFY_PORT": free_port(),
        "BROKER_PORT": free_port(),
        "FENGQIAO_PG_PORT": free_port(),
        "SMTP_PORT": free_port(),
    }
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")}
    env.update({k: str(v) for k, v in ports.items()}, FENGQIAO_HOME=str(tmp_path / "home"), QUIET_HOURS="off")
    output = tmp_path / "dev.out"
    dev = subprocess.Popen(
        [sys.executable, "-m", "fengqiao.cli", "dev"],
        env=env,
        stdout=open(output, "wb"),  # noqa: SIM115 - the process writes to it until it is stopped
        stderr=subprocess.STDOUT,
    )
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 120
        while "Press Ctrl-C" not in output.read_text():
            assert dev.poll() is None and time.monotonic() < deadline, output.read_text()[-3000:]
            time.sleep(0.5)
        text = output.read_text()
        assert "Demo accounts" in text and "http://127.0.0.1:" in text
        creds = json.loads((tmp_path / "home" / "dev-credentials.json").read_text())
        roles = {(a["station"], a["role"]) for a in creds["accounts"]}
        assert {("KZ01", "leader"), ("KZ02", "instructor"), ("KZ02", "mediator"), (None, "bureau")} <= roles
        assert sum(1 for a in creds["accounts"] if a["station"] == "KZ01" and a["role"] == "officer") >= 4
        assert (tmp_path / "home" / "pg" / "PG_VERSION").exists()  # data persists in the visible folder

        children = psutil.Process(dev.pid).children(recursive=True)
        triage = next(p for p in children if "serve" in p.cmdline() and "triage" in p.cmdline())
        triage.kill()
        deadline = time.monotonic() + 30
        while "triage restarted" not in output.read_text():
            assert time.monotonic() < deadline, output.read_text()[-2000:]
            time.sleep(0.3)
        assert "triage exited with code" in output.read_text()
        urls = {"triage": f"http://127.0.0.1:{ports['TRIAGE_PORT']}"}
        assert wait_ready(urls, 60) == {}

        r = httpx.post(
            f"http://127.0.0.1:{ports['INTAKE_PORT']}/api/v1/feedback",
            json={"station": "KZ01", "content": "矿山路有人打架", "reporter": {"phone": "13800138111"}},
        )
        assert r.status_code == 202
        # Without a real gateway the citizen's SMS lands in the dev outbox folder.
        sms = tmp_path / "home" / "outbox" / "sms.jsonl"
        deadline = time.monotonic() + 30
        while not (sms.exists() and r.json()["tracking_no"] in sms.read_text()):
            assert time.monotonic() < deadline, output.read_text()[-2000:]
            time.sleep(0.3)
        assert json.loads(sms.read_text().splitlines()[-1])["to"] == "+8613800138111"
        children = psutil.Process(dev.pid).children(recursive=True)
    finally:
        dev.send_signal(signal.SIGINT)
        try:
            dev.wait(60)
        except subprocess.TimeoutExpired:
            dev.kill()
    assert dev.returncode == 0, output.read_text()[-2000:]
    assert "[dev] stopped" in output.read_text()
    time.sleep(1)
    left = [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert left == [], [p.cmdline() for p in left]

"""The first run of a real deployment (issue 15; docs/operations.md, "First run of a real
deployment"): on a fresh database and a fresh broker, exactly the documented commands, step for
step, as subprocesses; then the four services start with no demo data, a citizen files an item,
the station's weekly roster gives it to the officer on duty, and that officer signs in with the
one-time password of the import and must change it before seeing the item in their queue."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from openpyxl import Workbook

from fengqiao.db import ensure_database
from fengqiao.devstack import EmbeddedBroker, free_port, start_service, stop_process, wait_ready
from tests.e2e.helpers import sql
from tests.e2e.test_sign_in import choose_password, sign_in

pytestmark = pytest.mark.e2e
FENGQIAO = str(Path(sys.executable).parent / "fengqiao")
SERVICES = ("intake", "triage", "mediation", "notify")


def until(check, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.2)


@pytest.fixture
def deployment(infra, tmp_path):
    """What `docker compose up` gives before anyone runs a command: an empty database of its own
    (on the tests' PostgreSQL server) and a broker with no topics."""
    parts = urlsplit(infra.dsn)
    dsn = urlunsplit(parts._replace(path=f"/fengqiao_firstrun_{secrets.token_hex(4)}"))
    asyncio.run(ensure_database(dsn))
    broker = EmbeddedBroker(free_port(), tmp_path / "broker.log")
    bootstrap = broker.start()
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "FENGQIAO_HOME": str(tmp_path / "home"),  # no dev stack state to fall back on
    }
    procs: list[subprocess.Popen[bytes]] = []
    try:
        yield {"dsn": dsn, "env": env, "dir": tmp_path, "procs": procs}
    finally:
        for proc in procs:
            stop_process(proc)
        broker.stop()


def fengqiao(deployment, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [FENGQIAO, *args], env=deployment["env"], cwd=deployment["dir"], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, f"fengqiao {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done


def staff_xlsx(path: Path) -> Path:
    book = Workbook()
    sheet = book.active
    sheet.append(["派出所", "姓名", "角色", "队组", "警号", "电话"])
    for row in (
        ["KZ03", "孙海", "民警", "community", "030101", "13900030101"],
        ["KZ03", "吴八", "民警", "community", "030102", None],
        ["KZ03", "郑九", "民警", "patrol", "030103", None],
        ["KZ03", "冯十", "民警", "patrol", "030104", None],
        ["KZ03", "周七", "调解员", "mediation", "030105", None],
        ["KZ03", "陈一", "指导员", None, "030002", None],
    ):
        sheet.append(row)
    for cell in sheet["E"]:
        cell.number_format = "@"  # badge numbers as text: leading zeros stay
    book.save(path)
    return path


def roster_csv(path: Path) -> Path:
    """Community officer 030102 and patrol officer 030104 around the clock every day (030101 and
    030103 are never on duty, so the roster, not the order of ids, picks the officer)."""
    lines = ["team,weekday,staff,start,end"]
    for day in ("周一", "周二", "周三", "周四", "周五", "周六", "周日"):
        for team, badge in (("community", "030102"), ("patrol", "030104")):
            lines += [f"{team},{day},{badge},00:00,12:00", f"{team},{day},{badge},12:00,00:00"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def holidays_csv(path: Path) -> Path:
    """The year's statutory holidays and adjusted working days, as the State Council publishes them."""
    path.write_text(
        "2027-01-01,holiday,元旦\n2027-02-06,holiday,春节\n2027-02-07,holiday,春节\n2027-02-08,holiday,春节\n"
        "2027-02-20,workday,春节调休\n2027-10-01,holiday,国庆节\n2027-10-09,workday,国庆节调休\n",
        encoding="utf-8",
    )
    return path


def one_time_password(report: str, staff_id: str) -> tuple[str, str]:
    line = next(x for x in report.splitlines() if f"created {staff_id}" in x)
    username = line.split(" user name ", 1)[1].split()[0]
    return username, line.rsplit("one-time password ", 1)[1].strip()


def test_a_new_station_goes_live_by_the_documented_commands_alone(deployment):
    d, dsn = deployment, deployment["dsn"]
    # 0. Topics and schema (in docker compose, the `init` job has run these; running them again is harmless).
    fengqiao(d, "migrate")
    assert "topic(s) created" in fengqiao(d, "topics", "create").stdout
    # 1. The first bureau administrator.
    admin = fengqiao(d, "admin", "add", "--name", "张三", "--username", "zhangsan", "--badge", "A0001")
    assert "BUREAU-A0001" in admin.stderr and len(admin.stdout.strip().splitlines()[-1]) >= 12
    # 2. A station.
    fengqiao(
        d, "station", "add", "KZ03", "--name", "河畔派出所", "--jurisdiction", "河畔路", "--jurisdiction", "河畔新村",
        "--phone", "0516-87670110", "--mailbox", "kz03@police.example.cn", "--duty-hours", "08:30-17:30",
    )  # fmt: skip
    # 3. Its leader.
    leader = fengqiao(d, "staff", "add", "--station", "KZ03", "--name", "钱进", "--role", "leader", "--badge", "030001")
    assert "KZ03-030001" in leader.stderr
    # 4. Its staff from a spreadsheet.
    imported = fengqiao(d, "staff", "import", str(staff_xlsx(d["dir"] / "staff.xlsx")))
    assert "6 created, 0 changed, 0 unchanged, 0 refused" in imported.stdout, imported.stdout
    # 5. Its weekly duty roster.
    rostered = fengqiao(d, "roster", "set", "KZ03", str(roster_csv(d["dir"] / "roster.csv")))
    assert "28 weekly and 0 holiday shifts set" in rostered.stdout, rostered.stdout
    # 6. The year's holidays.
    loaded = fengqiao(d, "calendar", "load", str(holidays_csv(d["dir"] / "holidays-2027.csv")))
    assert "loaded 7 days for 2027" in loaded.stdout

    # No demo data: only what the commands made.
    assert [r["code"] for r in sql(dsn, "SELECT code FROM mediation.stations")] == ["KZ03"]
    assert not sql(dsn, "SELECT 1 FROM mediation.api_tokens")

    urls = start_services(d)
    intake = urls["intake"]

    def filed() -> dict | None:
        r = httpx.post(
            f"{intake}/api/v1/feedback",
            json={
                "content": "河畔新村3栋楼下的烧烤店每天半夜噪音扰民，吵得孩子睡不着",
                "location": {"address": "河畔新村3栋"},
            },
            timeout=10,
        )  # routed to KZ03 by its jurisdiction keyword, once intake has learnt the station
        return r.json() if r.status_code == 202 else None

    receipt = until(filed, "intake taking an item for KZ03")
    no = receipt["tracking_no"]

    def assigned() -> dict | None:
        r = httpx.get(f"{intake}/api/v1/feedback/{no}", headers={"X-Access-Code": receipt["access_code"]}, timeout=5)
        return r.json() if r.status_code == 200 and r.json()["status"] == "assigned" else None

    assert until(assigned, "the item assigned")["station"] == "KZ03"
    row = sql(dsn, "SELECT assignee_id, reason, flagged FROM triage.assignments WHERE tracking_no = $1", no)[0]
    assert row["assignee_id"] == "KZ03-030102" and "roster:on_duty" in row["reason"] and not row["flagged"], row

    # The officer on duty signs in with the one-time password of the import and must change it.
    username, password = one_time_password(imported.stdout, "KZ03-030102")
    assert username == "030102"
    with httpx.Client(base_url=urls["mediation"], timeout=10) as console:
        r = sign_in(console, username, password)
        assert r.status_code == 303 and r.headers["location"] == "/console/password"
        assert console.get("/console/").headers.get("location") == "/console/password"  # nothing before the change
        new = "河畔新村值班民警-2027"
        r = choose_password(console, password, new)
        assert r.status_code == 303
        queue = console.get("/console/")
        assert queue.status_code == 200 and no in queue.text


def start_services(d: dict) -> dict[str, str]:
    """The four services on the deployment's database and broker (what the containers run)."""
    ports = {name: free_port() for name in SERVICES}
    env = {**d["env"], **{f"{n.upper()}_PORT": str(p) for n, p in ports.items()}, "SMTP_PORT": str(free_port())}
    for name in SERVICES:
        d["procs"].append(start_service(name, env, d["dir"] / f"{name}.log"))
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    not_ready = wait_ready(urls, timeout=90)
    assert not not_ready, f"not ready: {not_ready}; " + "; ".join(
        (d["dir"] / f"{n}.log").read_text()[-1500:] for n in not_ready
    )
    return urls

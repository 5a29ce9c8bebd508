"""Directory administration (issue 15): a bureau administrator made by the command line creates a
station, its leader and, from a CSV and an XLSX file, its staff; a new officer signs in with the
one-time password and must change it; deactivating him stops his token and session everywhere and
flags his open cases; leaders stay within their station. Real services, real commands."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from openpyxl import Workbook

from tests.e2e.helpers import sql, token
from tests.e2e.test_first_run import one_time_password
from tests.e2e.test_sign_in import _accepted_everywhere, _refused_everywhere, choose_password, sign_in
from tests.hostile.helpers import wait_for_case

FENGQIAO = str(Path(sys.executable).parent / "fengqiao")
STATION = "KZ03"


def fengqiao(infra, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": infra.dsn}
    return subprocess.run([FENGQIAO, *args], env=env, capture_output=True, text=True, timeout=120)


def bearer(infra, staff_id: str) -> dict:
    made = fengqiao(infra, "token", "create", "--staff-id", staff_id)
    assert made.returncode == 0, made.stderr
    return {"Authorization": f"Bearer {made.stdout.strip().splitlines()[-1]}"}


def wait_until(check, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout}s"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def kz03(stack, infra) -> dict:
    """A fresh deployment's first steps: the bureau admin, station KZ03 and its leader, by command."""
    made = fengqiao(infra, "admin", "add", "--name", "分局管理员", "--username", "bureau-admin", "--badge", "A0001")
    assert made.returncode == 0, made.stderr
    assert "BUREAU-A0001" in made.stderr and len(made.stdout.strip().splitlines()[-1]) >= 12
    added = fengqiao(
        infra, "station", "add", STATION, "--name", "河畔派出所", "--jurisdiction", "河畔路", "--phone", "0516-87670110"
    )
    assert added.returncode == 0, added.stderr
    leader = fengqiao(
        infra, "staff", "add", "--station", STATION, "--name", "钱进", "--role", "leader", "--badge", "030001"
    )
    assert leader.returncode == 0, leader.stderr
    admin, boss = bearer(infra, "BUREAU-A0001"), bearer(infra, "KZ03-030001")
    _accepted_everywhere(stack, boss)
    return {"admin": admin, "leader": boss, "url": stack["urls"]["mediation"]}


def test_a_station_code_already_used_is_refused_naming_the_field(stack, infra, kz03):
    again = fengqiao(infra, "station", "add", STATION, "--name", "重复")
    assert again.returncode != 0 and "code" in again.stderr and "已被使用" in again.stderr
    r = httpx.post(f"{kz03['url']}/api/v1/stations", json={"code": "KZ01", "name": "重复"}, headers=kz03["admin"])
    assert r.status_code == 422 and r.json()["detail"]["field"] == "code", r.text
    assert sql(infra.dsn, "SELECT name FROM mediation.stations WHERE code = 'KZ01'")[0]["name"] == "矿区派出所"


def test_the_station_settings_are_stored_and_reach_every_service(stack, infra, kz03):
    settings = {
        "mailbox": "kz03@police.example.cn",
        "duty_hours": {"starts": "08:30", "ends": "17:30"},
        "teams": ["patrol", "community"],
        "category_teams": {"noise": "community", "theft": "patrol"},
        "alert_thresholds": [
            {"kind": "cluster", "category": "noise", "window_hours": 24, "yellow": 2, "orange": 3, "red": 5}
        ],
    }
    r = httpx.patch(f"{kz03['url']}/api/v1/stations/{STATION}", json=settings, headers=kz03["leader"])
    assert r.status_code == 200, r.text
    assert r.json()["category_teams"] == settings["category_teams"] and r.json()["duty_starts"] == "08:30"
    rows = sql(infra.dsn, "SELECT starts::text FROM mediation.station_duty_hours WHERE station = $1", STATION)
    assert rows and rows[0]["starts"] == "08:30:00"  # the acceptance clock uses it
    wait_until(
        lambda: (
            sql(infra.dsn, "SELECT mailbox FROM triage.stations WHERE code = $1", STATION)[0]["mailbox"]
            == "kz03@police.example.cn"
        ),
        "triage's copy",
    )
    bad = httpx.patch(
        f"{kz03['url']}/api/v1/stations/{STATION}", json={"category_teams": {"noise": "swat"}}, headers=kz03["leader"]
    )
    assert bad.status_code == 422 and bad.json()["detail"]["field"] == "category_teams", bad.text
    code = httpx.patch(f"{kz03['url']}/api/v1/stations/{STATION}", json={"code": "KZ09"}, headers=kz03["leader"])
    assert code.status_code == 422 and code.json()["detail"]["field"] == "code"  # the code is fixed


CSV_ROWS = [
    "station,name,role,team,badge_no,phone,email,confidential_handler",
    f"{STATION},孙海,officer,patrol,030101,13900030101,sunhai@police.example.cn,否",
    f"{STATION},李四,chief,patrol,030102,,,",  # unknown role
    f"{STATION},王五,officer,swat,030103,,,",  # unknown team
    f"{STATION},赵六,officer,patrol,010001,,,",  # a KZ01 officer's badge number
    f"{STATION},,officer,patrol,030104,,,",  # no name
    f"{STATION},周七,mediator,community,030105,,,是",
]


def test_staff_are_imported_from_csv_and_xlsx_with_a_report_of_refused_rows(stack, infra, kz03, tmp_path):
    csv_file = tmp_path / "staff.csv"
    csv_file.write_text("\n".join(CSV_ROWS) + "\n", encoding="utf-8")
    first = fengqiao(infra, "staff", "import", str(csv_file))
    assert first.returncode == 1, first.stderr
    report = first.stdout
    assert "row 2: created KZ03-030101" in report and "row 7: created KZ03-030105" in report
    assert "row 3: refused: role:" in report and "row 4: refused: team:" in report
    assert "row 5: refused: station:" in report and "row 6: refused: name:" in report
    assert "2 created, 0 changed, 0 unchanged, 4 refused" in report
    assert "importing" in first.stderr  # the progress bar
    names = {r["name"] for r in sql(infra.dsn, "SELECT name FROM mediation.staff WHERE station = $1", STATION)}
    assert {"孙海", "周七"} <= names and not {"李四", "王五", "赵六"} & names  # refused rows left nothing
    assert sql(infra.dsn, "SELECT station FROM mediation.staff WHERE badge_no = '010001'")[0]["station"] == "KZ01"

    again = fengqiao(infra, "staff", "import", str(csv_file))
    assert "0 created, 0 changed, 2 unchanged, 4 refused" in again.stdout, again.stdout  # idempotent

    book = Workbook()
    sheet = book.active
    sheet.append(["派出所", "姓名", "角色", "队组", "警号", "电话"])
    sheet.append([STATION, "吴八", "民警", "community", "030201", "13900030201"])
    sheet.append([STATION, "郑九", "民警", "community", "030202", "12345"])  # not a phone number
    sheet.append([STATION, "孙海", "民警", "community", "030101", None])  # moves to another team
    xlsx = tmp_path / "staff.xlsx"
    book.save(xlsx)
    imported = fengqiao(infra, "staff", "import", str(xlsx))
    assert "row 2: created KZ03-030201" in imported.stdout and "row 3: refused: phone:" in imported.stdout
    assert "row 4: changed KZ03-030101" in imported.stdout, imported.stdout
    staff = httpx.get(f"{kz03['url']}/api/v1/staff/KZ03-030101", headers=kz03["leader"]).json()
    assert staff["team"] == "community" and staff["phone"] == "139****0101"  # sealed, shown masked
    sealed = sql(infra.dsn, "SELECT contact_enc FROM mediation.staff_contacts WHERE staff_id = 'KZ03-030101'")
    assert b"13900030101" not in bytes(sealed[0]["contact_enc"])


def test_a_new_officer_signs_in_then_is_deactivated_and_stopped_everywhere(stack, infra, kz03, tmp_path):
    csv_file = tmp_path / "one.csv"
    csv_file.write_text(f"station,name,role,team,badge_no\n{STATION},冯十,officer,patrol,030301\n", encoding="utf-8")
    made = fengqiao(infra, "staff", "import", str(csv_file))
    assert made.returncode == 0, made.stdout + made.stderr
    _, password = one_time_password(made.stdout, "KZ03-030301")
    url = kz03["url"]
    with httpx.Client(base_url=url, timeout=10) as console:
        r = sign_in(console, "030301", password)
        assert r.status_code == 303 and r.headers["location"] == "/console/password"  # must change it first
        new = "河畔路的新密码-2026"
        r = choose_password(console, password, new)
        assert r.status_code == 303 and console.get("/console/").status_code == 200

        # an open case of his: filed for KZ03, given to him by his leader
        intake = stack["urls"]["intake"]
        wait_until(lambda: sql(infra.dsn, "SELECT 1 FROM intake.stations WHERE code = $1", STATION), "intake's copy")
        receipt = httpx.post(
            f"{intake}/api/v1/feedback", json={"station": STATION, "content": "河畔路夜里有人偷电动车电瓶"}
        ).json()
        no = receipt["tracking_no"]
        wait_for_case(stack, no, kz03["leader"])
        r = httpx.post(f"{url}/api/v1/cases/{no}/reassign", json={"assignee_id": "KZ03-030301"}, headers=kz03["leader"])
        assert r.status_code == 200, r.text
        assert not httpx.get(f"{url}/api/v1/cases/{no}", headers=kz03["leader"]).json()["flagged"]

        his_token = bearer(infra, "KZ03-030301")
        _accepted_everywhere(stack, his_token)
        r = httpx.post(f"{url}/api/v1/staff/KZ03-030301/deactivate", headers=kz03["leader"])
        assert r.status_code == 200, r.text
        revoked = r.json()["revoked_tokens"]
        assert r.json()["flagged_cases"] == [no]
        # his API token, and the session-bound token of his console session (issue 16)
        assert len(revoked) == 2 and sum(t.startswith("session:") for t in revoked) == 1, revoked
        print(f"deactivation reached all four services in {_refused_everywhere(stack, his_token, timeout=1):.2f} s")
        assert console.get("/console/").status_code == 303  # his session ended
        assert sign_in(console, "030301", new).status_code == 401

    flagged = httpx.get(f"{url}/api/v1/cases", params={"flagged": "true"}, headers=kz03["leader"]).json()
    assert no in [c["tracking_no"] for c in flagged["cases"]] and all(c["flagged"] for c in flagged["cases"])
    audit = httpx.get(f"{url}/api/v1/directory/audit", headers=kz03["leader"]).json()["entries"]
    deactivated = next(e for e in audit if e["action"] == "staff_deactivated")
    assert deactivated["target"] == "KZ03-030301" and deactivated["actor"] == "KZ03-030001"
    assert deactivated["detail"]["flagged_cases"] == [no]
    assert any(e["action"] == "staff_created" and e["actor"].startswith("cli:") for e in audit)


def test_a_leader_stays_within_his_station_and_an_officer_changes_nothing(stack, infra, kz03):
    url, kz02 = kz03["url"], token(stack, "KZ02-LD")
    assert httpx.patch(f"{url}/api/v1/stations/{STATION}", json={"name": "越权"}, headers=kz02).status_code == 404
    # malformed body too: the station is answered first
    assert httpx.patch(f"{url}/api/v1/stations/{STATION}", json={"name": ""}, headers=kz02).status_code == 404
    assert httpx.patch(f"{url}/api/v1/staff/KZ03-030101", json={"name": "越权"}, headers=kz02).status_code == 404
    assert httpx.post(f"{url}/api/v1/staff/KZ03-030101/deactivate", headers=kz02).status_code == 404
    assert httpx.get(f"{url}/api/v1/directory/audit", params={"station": STATION}, headers=kz02).status_code == 404
    officer = token(stack, "KZ01-P1")
    r = httpx.patch(f"{url}/api/v1/stations/KZ01", json={"name": "越权"}, headers=officer)
    assert r.status_code == 403 and r.json()["detail"]["message"]
    r = httpx.post(f"{url}/api/v1/stations", json={"code": "KZ09", "name": "越权"}, headers=token(stack, "KZ01-LD"))
    assert r.status_code == 403
    # a leader cannot make a leader, nor transfer people
    r = httpx.post(
        f"{url}/api/v1/stations/{STATION}/staff", json={"name": "越权", "role": "leader"}, headers=kz03["leader"]
    )
    assert r.status_code == 403
    r = httpx.post(f"{url}/api/v1/staff/KZ03-030101/transfer", json={"to_station": "KZ01"}, headers=kz03["leader"])
    assert r.status_code == 403
    assert sql(infra.dsn, "SELECT name FROM mediation.stations WHERE code = $1", STATION)[0]["name"] == "河畔派出所"


def test_a_duplicate_badge_number_is_refused_naming_badge_no(stack, infra, kz03):
    body = {"name": "重号", "role": "officer", "team": "patrol", "badge_no": "030001"}
    r = httpx.post(f"{kz03['url']}/api/v1/stations/{STATION}/staff", json=body, headers=kz03["leader"])
    assert r.status_code == 422, r.text
    assert r.json()["detail"]["field"] == "badge_no" and "警号" in r.json()["detail"]["message"]
    unknown = httpx.post(
        f"{kz03['url']}/api/v1/stations/{STATION}/staff", json=body | {"role": "chief"}, headers=kz03["leader"]
    )
    assert unknown.status_code == 422 and unknown.json()["detail"]["field"] == "role"
    assert not sql(infra.dsn, "SELECT 1 FROM mediation.staff WHERE name = '重号'")  # nothing half-applied


def test_a_reset_password_is_shown_once_and_must_be_changed(stack, infra, kz03):
    r = httpx.post(f"{kz03['url']}/api/v1/staff/KZ03-030105/password", headers=kz03["leader"])
    assert r.status_code == 200, r.text
    password = r.json()["one_time_password"]
    with httpx.Client(base_url=kz03["url"], timeout=10) as console:
        assert sign_in(console, "030105", password).headers["location"] == "/console/password"


def test_a_transferred_officer_leaves_his_cases_behind(stack, infra, kz03):
    headers = bearer(infra, "KZ03-030201")
    _accepted_everywhere(stack, headers)
    r = httpx.post(
        f"{kz03['url']}/api/v1/staff/KZ03-030201/transfer",
        json={"to_station": "KZ01", "team": "patrol"},
        headers=kz03["admin"],
    )
    assert r.status_code == 200, r.text
    assert r.json()["staff"]["station"] == "KZ01" and r.json()["staff"]["active"]
    _refused_everywhere(stack, headers, timeout=2)  # his KZ03 token is revoked


def test_a_deactivated_station_takes_nothing_new(stack, infra, kz03):
    r = httpx.post(f"{kz03['url']}/api/v1/stations/{STATION}/deactivate", headers=kz03["leader"])
    assert r.status_code == 403  # the administrator's
    r = httpx.post(f"{kz03['url']}/api/v1/stations/{STATION}/deactivate", headers=kz03["admin"])
    assert r.status_code == 200 and r.json()["active"] is False
    intake = stack["urls"]["intake"]

    def refused() -> bool:
        r = httpx.post(f"{intake}/api/v1/feedback", json={"station": STATION, "content": "河畔路路灯坏了"})
        return r.status_code == 422

    wait_until(refused, "intake refusing KZ03")
    r = httpx.post(f"{intake}/api/v1/feedback", json={"station": STATION, "content": "河畔路路灯坏了"})
    assert r.json()["detail"]["field"] == "station" and "已停用" in r.json()["detail"]["message"]
    r = httpx.post(
        f"{intake}/api/v1/feedback", json={"content": "河畔路路灯坏了", "location": {"address": "河畔路3号"}}
    )
    assert r.status_code == 422 and r.json()["detail"]["field"] == "station"  # not routed there by address
    cases = httpx.get(f"{kz03['url']}/api/v1/cases", headers=kz03["leader"]).json()
    assert cases["total"] >= 1  # its items stay readable


def test_address_keywords_are_the_administrators_and_never_shared(stack, infra, kz03):
    """A leader widening his own jurisdiction would take in another station's citizens' items."""
    url = f"{kz03['url']}/api/v1/stations/{STATION}"
    r = httpx.patch(url, json={"jurisdiction": ["河畔路", "新华街"]}, headers=kz03["leader"])
    assert r.status_code == 403 and "辖区关键词" in r.json()["detail"]["message"]
    taken = httpx.patch(url, json={"jurisdiction": ["河畔路", "新华街"]}, headers=kz03["admin"])
    assert taken.status_code == 422, taken.text
    assert taken.json()["detail"]["field"] == "jurisdiction" and "新华街（KZ02）" in taken.json()["detail"]["message"]
    short = httpx.patch(url, json={"jurisdiction": ["路"]}, headers=kz03["admin"])
    assert short.status_code == 422 and "至少 2 个字" in short.json()["detail"]["message"]
    ok = httpx.patch(url, json={"jurisdiction": ["河畔路", "河畔新村"]}, headers=kz03["admin"])
    assert ok.status_code == 200 and ok.json()["jurisdiction"] == ["河畔路", "河畔新村"]


def test_a_hostile_spreadsheet_is_refused_before_it_is_read(infra, kz03, tmp_path):
    """A few kilobytes declaring 300,000 rows, and a zip bomb: refused quickly, nothing imported."""
    sparse = Workbook()
    sparse.active.append(["name", "role", "badge_no"])
    sparse.active.cell(row=300_000, column=1, value="钱多")
    huge = tmp_path / "sparse.xlsx"
    sparse.save(huge)
    assert huge.stat().st_size < 20_000
    r = fengqiao(infra, "staff", "import", str(huge))
    assert r.returncode != 0 and "more than 20001 rows" in r.stderr, r.stderr

    import zipfile

    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/sharedStrings.xml", "<sst>" + " " * 60_000_000 + "</sst>")
    assert bomb.stat().st_size < 200_000
    r = fengqiao(infra, "staff", "import", str(bomb))
    assert r.returncode != 0 and "unpacks to" in r.stderr, r.stderr


def test_the_demo_is_seeded_through_the_directory_functions(stack, infra):
    """`fengqiao dev` (and the test stack) seed KZ01, KZ02 and their people through the functions
    of the API: the same checks and the same audit, as the editor `seed`."""
    rows = sql(infra.dsn, "SELECT action, target, station FROM mediation.directory_audit WHERE actor = 'seed'")
    done = {(r["action"], r["target"]) for r in rows}
    assert {("station_created", "KZ01"), ("station_created", "KZ02")} <= done, done
    assert {("staff_created", "KZ01-P1"), ("staff_created", "KZ02-MD"), ("staff_created", "BUREAU-01")} <= done
    people = sql(infra.dsn, "SELECT staff_id, username FROM mediation.accounts WHERE staff_id LIKE 'KZ01-%'")
    assert {p["staff_id"]: p["username"] for p in people}["KZ01-P1"] == "kz01-p1"
    assert stack["credentials"]["KZ01-P1"]["username"] == "kz01-p1"

"""Duty rosters from a weekly pattern, with the real stack (issue 15): the station's leader sets a
pattern, the next 14 days reach triage's roster table, items go to the officer on duty by it,
leave takes an officer off at once, rest days follow the holiday pattern, and a pattern with a gap
is refused naming the weekday and the hours. A station of its own, so the demo stations' rosters
(which other tests rely on) stay as seeded."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import chinese_calendar
import httpx
import pytest

from fengqiao.admin import directory_writer
from fengqiao.constants import STATION_TZ
from fengqiao.events import StaffUpserted, StationUpserted
from tests.e2e.helpers import sql, submit, token

pytestmark = pytest.mark.e2e
STATION = "RS15"
OFFICERS = {"A1": "community", "C1": "community", "C2": "community", "N1": "patrol"}
ROUND_THE_CLOCK = [("00:00", "12:00"), ("12:00", "00:00")]


def today() -> date:
    return datetime.now(STATION_TZ).date()


@pytest.fixture(scope="module")
def rs15(stack, infra) -> dict:
    """Station RS15 (leader, four officers) created through the directory writer, as the seed does;
    its leader's and an officer's token."""

    async def create() -> dict:
        async with directory_writer(infra.dsn) as w:
            await w.station(StationUpserted(code=STATION, name="排班测试派出所", jurisdiction=["排班路"]))
            await w.staff(StaffUpserted(staff_id=f"{STATION}-LD", station=STATION, name="排班所长", role="leader"))
            for n, (suffix, team) in enumerate(OFFICERS.items()):
                await w.staff(
                    StaffUpserted(
                        staff_id=f"{STATION}-{suffix}",
                        station=STATION,
                        name=f"排班民警{suffix}",
                        role="officer",
                        team=team,
                        badge_no=f"15{n:04d}",
                    )
                )
            return {
                who: {
                    "Authorization": "Bearer "
                    + await w.issue_token(
                        token_id=f"test:{STATION}-{who}", role=role, station=STATION, staff_id=f"{STATION}-{who}"
                    )
                }
                for who, role in (("LD", "leader"), ("C1", "officer"))
            }

    headers = asyncio.run(create())
    wait_until(lambda: sql(infra.dsn, "SELECT 1 FROM triage.staff WHERE staff_id = 'RS15-N1'"), "RS15 in triage")
    wait_until(lambda: sql(infra.dsn, "SELECT 1 FROM intake.stations WHERE code = 'RS15'"), "RS15 in intake")
    return {"url": f"{stack['urls']['mediation']}/api/v1/stations/{STATION}/roster", **headers}


def wait_until(check, what: str, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout}s")


def weekly(extra: list[dict] | None = None) -> list[dict]:
    """C1, C2 and N1 around the clock every day; A1 (community) only tomorrow's weekday morning."""
    shifts = [
        {"weekday": d, "staff": f"{STATION}-{who}", "start": start, "end": end}
        for d in range(1, 8)
        for who in ("C1", "C2", "N1")
        for start, end in ROUND_THE_CLOCK
    ]
    tomorrow = (today() + timedelta(days=1)).isoweekday()
    return [*shifts, {"weekday": tomorrow, "staff": "150000", "start": "08:00", "end": "12:00", "team": "community"}]


def triage_roster(infra, day: date) -> list[tuple[str, str, str]]:
    rows = sql(
        infra.dsn,
        "SELECT staff_id, starts, ends FROM triage.roster WHERE station = $1 AND day = $2 ORDER BY starts, staff_id",
        STATION,
        day,
    )
    return [(r["staff_id"].split("-")[1], f"{r['starts']:%H:%M}", f"{r['ends']:%H:%M}") for r in rows]


def assignee(stack, infra, content: str) -> str:
    no = submit(stack, STATION, content)["tracking_no"]
    rows = wait_until(
        lambda: sql(infra.dsn, "SELECT assignee_id, reason FROM triage.assignments WHERE tracking_no = $1", no),
        f"assignment of {no}",
        timeout=30,
    )
    assert "roster:on_duty" in rows[0]["reason"], rows[0]["reason"]
    return rows[0]["assignee_id"]


def test_a_weekly_pattern_is_published_two_weeks_ahead_and_items_go_to_the_officer_on_duty(stack, infra, rs15):
    r = httpx.put(f"{rs15['url']}/weekly", json={"shifts": weekly()}, headers=rs15["LD"], timeout=20)
    assert r.status_code == 200, r.text
    assert r.json()["published"][0] == (today() - timedelta(days=1)).isoformat()
    assert len(r.json()["published"]) == 16 and r.json()["warnings"] == []
    last = today() + timedelta(days=14)
    wait_until(lambda: triage_roster(infra, last), "day +14 in triage's roster")
    days = sql(
        infra.dsn,
        "SELECT count(DISTINCT day) AS n FROM triage.roster WHERE station = $1 AND day >= $2",
        STATION,
        today(),
    )
    assert days[0]["n"] == 15  # today .. today + 14
    assert ("A1", "08:00", "12:00") in triage_roster(infra, today() + timedelta(days=1))
    assert "A1" not in [who for who, _, _ in triage_roster(infra, today())]

    # A1 sorts first and has no work, but is off duty today: the community officers on duty get the items
    first = assignee(stack, infra, "排班路3号楼上每天晚上用电钻装修，噪音很大，孩子睡不着")
    second = assignee(stack, infra, "排班路菜市场门口广场舞音响太吵，附近老人受不了")
    assert {first, second} == {f"{STATION}-C1", f"{STATION}-C2"}  # one each: equal load now

    # C1 goes on leave today: the day is published again at once and the next item goes to C2
    # (with equal loads C1 would have had it, the lower id)
    r = httpx.post(
        f"{rs15['url']}/exceptions",
        json={"kind": "leave", "staff": f"{STATION}-C1", "from": today().isoformat(), "to": today().isoformat()},
        headers=rs15["LD"],
        timeout=20,
    )
    assert r.status_code == 201, r.text
    assert today().isoformat() in r.json()["published"]
    wait_until(lambda: "C1" not in [w for w, _, _ in triage_roster(infra, today())], "C1 off today's roster")
    assert assignee(stack, infra, "排班路小区KTV深夜噪声扰民，关上窗户也能听到唱歌声") == f"{STATION}-C2"

    listed = httpx.get(f"{rs15['url']}/exceptions", headers=rs15["LD"], timeout=10).json()["exceptions"]
    assert [(e["kind"], e["staff_id"]) for e in listed] == [("leave", f"{STATION}-C1")]


def _next_rest_day() -> date:
    for n in range(1, 15):
        day = today() + timedelta(days=n)
        try:
            if not chinese_calendar.is_workday(day):
                return day
        except NotImplementedError:
            if day.weekday() >= 5:
                return day
    raise AssertionError("no rest day within two weeks")


def test_rest_days_and_holidays_follow_the_holiday_pattern(infra, rs15):
    holiday = [{"staff": f"{STATION}-N1", "start": s, "end": e} for s, e in ROUND_THE_CLOCK]
    r = httpx.put(f"{rs15['url']}/holiday", json={"shifts": holiday}, headers=rs15["LD"], timeout=20)
    assert r.status_code == 200, r.text
    rest = _next_rest_day()
    assert rest.isoformat() in r.json()["published"]
    wait_until(lambda: triage_roster(infra, rest) == [("N1", "00:00", "12:00"), ("N1", "12:00", "00:00")], "rest day")
    days = httpx.get(f"{rs15['url']}/days", params={"days": 15}, headers=rs15["LD"], timeout=10).json()["days"]
    by_day = {d["day"]: d for d in days}
    assert by_day[rest.isoformat()]["pattern"] == "holiday" and by_day[rest.isoformat()]["published"]
    assert [s["staff_id"] for s in by_day[rest.isoformat()]["shifts"]] == [f"{STATION}-N1"] * 2
    pattern = httpx.get(rs15["url"], headers=rs15["LD"], timeout=10).json()
    assert len(pattern["holiday"]) == 2 and len(pattern["weekly"]) == len(weekly())


def test_a_gap_is_refused_naming_the_weekday_and_hours_and_nothing_changes(infra, rs15):
    before = httpx.get(rs15["url"], headers=rs15["LD"], timeout=10).json()
    day_only = [{"weekday": d, "staff": f"{STATION}-C2", "start": "08:00", "end": "20:00"} for d in range(1, 8)]
    r = httpx.put(f"{rs15['url']}/weekly", json={"shifts": day_only}, headers=rs15["LD"], timeout=10)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert (detail["error"], detail["field"]) == ("roster_gap", "shifts")
    assert "周一 00:00–08:00、20:00–24:00" in detail["message"] and "allow_gaps" in detail["message"]
    for body, field, words in (
        (
            {"weekday": 1, "staff": "KZ02-P1", "start": "08:00", "end": "20:00"},
            "shifts[0].staff",
            "本所（RS15）没有工作人员",
        ),
        (
            {"weekday": 1, "staff": "RS15-ZZ", "start": "08:00", "end": "20:00"},
            "shifts[0].staff",
            "本所（RS15）没有工作人员",
        ),
        ({"weekday": 1, "staff": "RS15-C2", "start": "8点", "end": "20:00"}, "shifts[0].start", "HH:MM"),
    ):
        r = httpx.put(f"{rs15['url']}/weekly", json={"shifts": [body]}, headers=rs15["LD"], timeout=10)
        assert r.status_code == 422 and r.json()["detail"]["field"] == field and words in r.json()["detail"]["message"]
    assert httpx.get(rs15["url"], headers=rs15["LD"], timeout=10).json() == before


def test_other_stations_and_officers_cannot_touch_the_roster(stack, infra, rs15):
    leave = {"kind": "leave", "staff": f"{STATION}-N1", "from": today().isoformat(), "to": today().isoformat()}
    for who in ("KZ01-LD", "KZ01-P2"):
        assert httpx.get(rs15["url"], headers=token(stack, who), timeout=10).status_code == 404
        r = httpx.post(f"{rs15['url']}/exceptions", json=leave, headers=token(stack, who), timeout=10)
        assert r.status_code == 404, r.text
    # the station's own officer reads nothing and changes nothing: the leader's
    assert httpx.get(rs15["url"], headers=rs15["C1"], timeout=10).status_code == 403
    assert httpx.post(f"{rs15['url']}/exceptions", json=leave, headers=rs15["C1"], timeout=10).status_code == 403
    # another station's leader naming RS15's exception under their own station: not found, not removed
    own = sql(infra.dsn, "SELECT id FROM mediation.roster_exceptions WHERE station = $1", STATION)[0]["id"]
    kz02 = f"{stack['urls']['mediation']}/api/v1/stations/KZ02/roster/exceptions/{own}"
    assert httpx.delete(kz02, headers=token(stack, "KZ02-LD"), timeout=10).status_code == 404
    assert sql(infra.dsn, "SELECT 1 FROM mediation.roster_exceptions WHERE id = $1", own)


def test_the_roster_command_shows_the_days_and_refuses_a_gap(infra, rs15, tmp_path: Path):
    env = {**os.environ, "DATABASE_URL": infra.dsn}
    fengqiao = [str(Path(sys.executable).parent / "fengqiao")]
    shown = subprocess.run(
        [*fengqiao, "roster", "show", STATION, "--days", "2"], env=env, capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    assert today().isoformat() in shown.stdout and "排班民警C2" in shown.stdout
    csv = tmp_path / "gap.csv"
    csv.write_text("team,weekday,staff,start,end\ncommunity,周一,150001,08:00,20:00\n", encoding="utf-8")
    refused = subprocess.run([*fengqiao, "roster", "set", STATION, str(csv)], env=env, capture_output=True, text=True)
    assert refused.returncode != 0 and "周一 00:00–08:00" in refused.stderr, refused.stderr
    leave = subprocess.run(
        [*fengqiao, "roster", "leave", f"{STATION}-N1", "--from", "2020-01-01", "--to", "2020-01-02"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert leave.returncode != 0 and "字段 to 不能早于今天" in leave.stderr, leave.stderr

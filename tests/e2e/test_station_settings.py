"""Triage honours the station's own settings from the directory (issue 15): the station's
category -> team mapping decides the team, its alert thresholds override triage's defaults, and an
item still on its way when the station is deactivated is given to nobody there but flagged for the
bureau. A station of its own (ST15), set through mediation's API by its leader; real stack."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, time, timedelta
from pathlib import Path

import httpx
import pytest

from fengqiao.admin import directory_writer
from fengqiao.constants import STATION_TZ
from fengqiao.events import StaffUpserted, StationUpserted
from tests.e2e.helpers import sql, submit, token
from tests.e2e.test_rosters import wait_until

pytestmark = pytest.mark.e2e
STATION = "ST15"
OFFICERS = {"C1": "community", "P1": "patrol", "S1": "special"}
# Noise complaints different enough not to be merged as repeats of one another.
NOISE = [
    "{p}楼下的烧烤店每天半夜噪音扰民，吵得孩子睡不着觉",
    "{p}隔壁工地晚上十一点还在打桩，噪声太大了",
    "{p}广场舞音响开到很晚，音量特别大，老人休息不了",
    "{p}楼上住户凌晨两点还在唱卡拉OK，噪音扰民很严重",
    "{p}对面酒吧每晚放很响的音乐，附近居民投诉噪声扰民",
]


@pytest.fixture(scope="module")
def st15(stack, infra) -> dict:
    """ST15 with a leader and three officers (one of its own team `special`), all on duty around
    the clock by a weekly pattern set through the roster API."""

    async def create() -> str:
        async with directory_writer(infra.dsn) as w:
            await w.station(
                StationUpserted(
                    code=STATION,
                    name="设置测试派出所",
                    jurisdiction=["设置路"],
                    teams=["community", "patrol", "special"],
                )
            )
            await w.staff(StaffUpserted(staff_id=f"{STATION}-LD", station=STATION, name="设置所长", role="leader"))
            for suffix, team in OFFICERS.items():
                await w.staff(
                    StaffUpserted(
                        staff_id=f"{STATION}-{suffix}",
                        station=STATION,
                        name=f"设置民警{suffix}",
                        role="officer",
                        team=team,
                    )
                )
            return await w.issue_token(
                token_id=f"test:{STATION}-LD", role="leader", station=STATION, staff_id=f"{STATION}-LD"
            )

    leader = {"Authorization": f"Bearer {asyncio.run(create())}"}
    url = f"{stack['urls']['mediation']}/api/v1/stations/{STATION}"
    shifts = [
        {"weekday": d, "staff": f"{STATION}-{who}", "start": start, "end": end}
        for d in range(1, 8)
        for who in OFFICERS
        for start, end in (("00:00", "12:00"), ("12:00", "00:00"))
    ]
    r = httpx.put(f"{url}/roster/weekly", json={"shifts": shifts}, headers=leader, timeout=20)
    assert r.status_code == 200, r.text
    wait_until(lambda: sql(infra.dsn, "SELECT 1 FROM triage.roster WHERE station = $1", STATION), "ST15's roster")
    wait_until(lambda: sql(infra.dsn, "SELECT 1 FROM intake.stations WHERE code = $1", STATION), "ST15 in intake")
    return {"url": url, "leader": leader}


def change(infra, st15, settings: dict, column: str) -> None:
    """PATCH the station as its leader and wait until triage's copy has the new value."""
    r = httpx.patch(st15["url"], json=settings, headers=st15["leader"], timeout=10)
    assert r.status_code == 200, r.text
    wait_until(
        lambda: sql(
            infra.dsn,
            f"SELECT {column} <> $2::jsonb AS changed FROM triage.stations WHERE code = $1",
            STATION,
            "{}" if column == "category_teams" else "[]",
        )[0]["changed"],
        f"triage's copy of {column}",
    )


def assigned(infra, tracking_no: str) -> dict:
    return wait_until(
        lambda: sql(
            infra.dsn,
            "SELECT a.assignee_id, a.reason, a.flagged, d.category FROM triage.assignments a "
            "JOIN triage.decisions d USING (tracking_no) WHERE a.tracking_no = $1",
            tracking_no,
        ),
        f"assignment of {tracking_no}",
        timeout=30,
    )[0]


def test_the_stations_own_category_mapping_decides_the_team(stack, infra, st15):
    first = assigned(infra, submit(stack, STATION, NOISE[0].format(p="设置路1号"))["tracking_no"])
    assert first["category"] == "noise"
    assert first["assignee_id"] == f"{STATION}-C1" and "rule:team:community" in first["reason"]  # built-in mapping

    change(infra, st15, {"category_teams": {"noise": "special"}}, "category_teams")
    second = assigned(infra, submit(stack, STATION, NOISE[1].format(p="设置路2号"))["tracking_no"])
    assert second["category"] == "noise"
    assert second["assignee_id"] == f"{STATION}-S1" and "rule:team:special" in second["reason"], second
    # a category the station does not name still follows the built-in mapping
    theft = assigned(infra, submit(stack, STATION, "设置路小区车棚里我的电动车电瓶昨晚被人偷了")["tracking_no"])
    assert theft["category"] == "theft" and theft["assignee_id"] == f"{STATION}-P1", theft


def test_the_stations_alert_thresholds_override_triages_defaults(stack, infra, st15):
    place = f"设置路{uuid.uuid4().hex[:4]}号"
    thresholds = [{"kind": "cluster", "category": "noise", "window_hours": 24, "yellow": 1, "orange": 2, "red": 3}]
    change(infra, st15, {"alert_thresholds": thresholds}, "alert_thresholds")
    no = submit(stack, STATION, NOISE[2].format(p=place), address=place, phone="13700015001")["tracking_no"]
    assert assigned(infra, no)["category"] == "noise"
    alerts = httpx.get(f"{stack['urls']['triage']}/api/v1/triage/alerts", headers=st15["leader"]).json()["alerts"]
    ours = [a for a in alerts if a["kind"] == "cluster" and no in a["members"]]
    # the deployment's default is yellow at 3 reporters: with the station's own, one is enough
    assert len(ours) == 1 and ours[0]["level"] == "yellow" and ours[0]["reporters"] == 1, alerts


def test_duty_hours_per_weekday_decide_the_acceptance_clock(stack, infra, st15):
    """Today's weekday without duty, every other day 00:00–23:59: an item filed now must be
    accepted by 01:00 tomorrow (station time)."""
    today = datetime.now(STATION_TZ).date()
    hours = {"starts": "00:00", "ends": "23:59", "weekdays": {str(today.isoweekday()): "off"}}
    r = httpx.patch(st15["url"], json={"duty_hours": hours}, headers=st15["leader"], timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["duty_schedule"] == {"weekdays": {str(today.isoweekday()): "off"}}
    no = submit(stack, STATION, NOISE[4].format(p="设置路5号"))["tracking_no"]
    clock = wait_until(
        lambda: sql(
            infra.dsn, "SELECT due_at, note FROM mediation.case_clocks WHERE tracking_no = $1 AND clock = 'accept'", no
        ),
        "the acceptance clock",
        timeout=30,
    )[0]
    tomorrow_1am = datetime.combine(today + timedelta(days=1), time(1), STATION_TZ)
    assert clock["due_at"] == tomorrow_1am and "周末及节假日按本所安排" in clock["note"], clock

    every_day_off = {"starts": "08:00", "ends": "18:00", "weekdays": {str(d): "off" for d in range(1, 8)}}
    bad = httpx.patch(st15["url"], json={"duty_hours": every_day_off}, headers=st15["leader"], timeout=10)
    assert bad.status_code == 422 and bad.json()["detail"]["field"] == "duty_hours", bad.text
    fengqiao = str(Path(sys.executable).parent / "fengqiao")
    env = {**os.environ, "DATABASE_URL": infra.dsn}
    args = ["--duty-hours", "08:30-17:30", "--duty-day", "6=09:00-12:00", "--duty-day", "7=off"]
    done = subprocess.run(
        [fengqiao, "station", "duty-hours", STATION, *args, "--holiday-hours", "off"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "weekday 6: 09:00-12:00" in done.stdout and "holidays: off" in done.stdout
    stored = sql(infra.dsn, "SELECT schedule::text FROM mediation.station_duty_hours WHERE station = $1", STATION)
    assert json.loads(stored[0]["schedule"]) == {
        "weekdays": {"6": {"starts": "09:00", "ends": "12:00"}, "7": "off"},
        "holidays": "off",
    }
    wrong = subprocess.run(
        [fengqiao, "station", "duty-hours", STATION, "--duty-hours", "08:30-17:30", "--duty-day", "8=off"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert wrong.returncode != 0 and "duty_hours" in wrong.stderr, wrong.stderr


def test_an_item_on_its_way_when_the_station_is_deactivated_waits_for_the_bureau(stack, infra, st15):
    fengqiao = str(Path(sys.executable).parent / "fengqiao")
    env = {**os.environ, "DATABASE_URL": infra.dsn}
    done = subprocess.run([fengqiao, "station", "deactivate", STATION], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    inactive = "SELECT NOT active AS inactive FROM {}.stations WHERE code = $1"
    wait_until(lambda: sql(infra.dsn, inactive.format("triage"), STATION)[0]["inactive"], "triage's copy inactive")
    wait_until(lambda: sql(infra.dsn, inactive.format("intake"), STATION)[0]["inactive"], "intake's copy inactive")
    # An item intake took just before it learnt of the deactivation: its copy still says active.
    sql(infra.dsn, "UPDATE intake.stations SET active = true WHERE code = $1", STATION)
    try:
        no = submit(stack, STATION, NOISE[3].format(p="设置路9号"))["tracking_no"]
    finally:
        sql(infra.dsn, "UPDATE intake.stations SET active = false WHERE code = $1", STATION)
    a = assigned(infra, no)
    assert a["assignee_id"] is None and a["flagged"] and a["reason"] == "rule:station_inactive;bureau_review", a
    bureau, cases = token(stack, "BUREAU-01"), f"{stack['urls']['mediation']}/api/v1/cases"
    query = {"flagged": "true", "sort": "-submitted_at", "limit": 200}

    def bureau_sees_it() -> bool:
        r = httpx.get(cases, params=query, headers=bureau, timeout=10)
        return no in [c["tracking_no"] for c in r.json()["cases"] if c["assignee_id"] is None]

    wait_until(bureau_sees_it, "the bureau seeing the item flagged and unassigned")

"""The demo deployment of DESIGN 4.6, made through the same domain functions as the directory API
and the `fengqiao station|staff` commands (mediation.directory_admin: the same checks, directory
events and audit, as the editor `seed`) and the roster functions, so other services learn it the
usual way. Only the demo's fixed staff ids (KZ01-P1...) and its accounts without a forced password
change (DESIGN 4.8) are its own."""

from __future__ import annotations

import secrets
from datetime import date
from typing import Any

from fengqiao.directory import DirectoryWriter
from fengqiao.events import Role
from mediation import db
from mediation import directory_admin as admin
from mediation.roster_ops import ShiftIn, set_pattern
from mediation.signin import set_account

SEED = admin.Editor("seed", "admin", None)  # audited as `seed`

STATIONS = [
    (
        "KZ01",
        "矿区派出所",
        "0516-87650110",
        ["矿区", "矿山路", "矿工新村", "煤矿"],
        {"LD": "王建国", "IN": "李红梅", "P1": "张伟", "P2": "刘洋", "P3": "陈静", "P4": "杨帆", "MD": "赵秀兰"},
    ),
    (
        "KZ02",
        "新村派出所",
        "0516-87660110",
        ["新村", "新华街", "幸福小区", "新村市场"],
        {"LD": "孙立军", "IN": "周敏", "P1": "吴磊", "P2": "郑浩", "P3": "冯雪", "P4": "何平", "MD": "马玉珍"},
    ),
]
ROLES: dict[str, Role] = {
    "LD": "leader",
    "IN": "instructor",
    "P1": "officer",
    "P2": "officer",
    "P3": "officer",
    "P4": "officer",
    "MD": "mediator",
}
TEAMS = {"P1": "community", "P2": "community", "P3": "patrol", "P4": "patrol", "MD": "mediation"}
# Day team and night team cover the whole day, so a demo item always finds someone on duty.
SHIFTS = {
    "P1": ("08:00", "20:00"),
    "P2": ("08:00", "20:00"),
    "P3": ("20:00", "08:00"),
    "P4": ("20:00", "08:00"),
    "MD": ("08:30", "17:30"),
    "LD": ("08:30", "17:30"),
    "IN": ("08:30", "17:30"),
}
BUREAU = ("BUREAU-01", "黄志强")
# Approved by the leader to handle confidential tip-offs (举报): leadership and one officer.
CONFIDENTIAL_HANDLERS = frozenset({"LD", "IN", "P1"})


async def seed_demo(writer: DirectoryWriter, today: date) -> list[dict]:
    """Idempotent: upserts stations, staff and weekly duty patterns and issues a fresh
    token for every demo account. Returns the credentials to print."""
    credentials: list[dict] = []
    for code, name, phone, jurisdiction, people in STATIONS:
        await _upsert_station(writer, code, {"name": name, "jurisdiction": jurisdiction, "phone": phone})
        await _upsert_staff(writer, code, people)
        await _publish_rosters(writer, code, today)
        credentials.extend(await _issue_station_tokens(writer, code, people))
    credentials.extend(await _seed_bureau(writer))
    return credentials


# A reseed puts the demo stations' settings back to these (name, jurisdiction and phone above).
STATION_DEFAULTS: dict[str, Any] = {
    "mailbox": None,
    "duty_hours": None,
    "teams": [],
    "category_teams": {},
    "alert_thresholds": [],
}


async def _upsert_station(writer: DirectoryWriter, code: str, fields: dict[str, Any]) -> None:
    conn, outbox = writer.conn, writer.outbox
    current = await db.directory.station(conn, code, lock=True)
    if current is None:
        await admin.create_station(conn, outbox, SEED, admin.parse(admin.StationIn, {"code": code, **fields}))
        return
    change = admin.parse(admin.StationChange, STATION_DEFAULTS | fields)
    await admin.change_station(conn, outbox, SEED, code, change)
    if not current["active"]:
        await admin.set_station_active(conn, outbox, SEED, code, True)


async def _upsert_person(writer: DirectoryWriter, staff_id: str, station: str | None, fields: dict[str, Any]) -> None:
    """Create the demo person with their fixed id, or put them back as the demo has them
    (reactivated, back at their station, their fields as seeded)."""
    conn, outbox = writer.conn, writer.outbox
    row = await db.directory.staff_member(conn, staff_id)
    if row is None:
        body = admin.parse(admin.StaffIn, fields | {"username": staff_id.lower()})
        await admin.create_staff(conn, outbox, SEED, station, body, None, staff_id=staff_id)
        return
    if row["station"] != station and station is not None:
        await admin.transfer_staff(conn, outbox, SEED, staff_id, station, fields.get("team"))
    if not row["active"]:
        await admin.reactivate_staff(conn, outbox, SEED, staff_id)
    await admin.change_staff(conn, outbox, SEED, staff_id, admin.parse(admin.StaffChange, fields), None)


async def _upsert_staff(writer: DirectoryWriter, code: str, people: dict[str, str]) -> None:
    for n, (suffix, person) in enumerate(people.items(), start=1):
        fields = {
            "name": person,
            "role": ROLES[suffix],
            "team": TEAMS.get(suffix),
            "badge_no": f"{code[-2:]}{n:04d}",
            "confidential_handler": suffix in CONFIDENTIAL_HANDLERS,
        }
        await _upsert_person(writer, f"{code}-{suffix}", code, fields)


async def _publish_rosters(writer: DirectoryWriter, code: str, today: date) -> None:
    """The same day and night shifts every weekday, set as the station's weekly pattern through
    the roster functions the API uses, which publish yesterday to today + 14 (and the daily run
    keeps them published ahead): the demo works any day without reseeding."""
    shifts = [
        ShiftIn(staff=f"{code}-{s}", start=start, end=end, field=f"{s}/{weekday}", weekday=weekday)
        for weekday in range(1, 8)
        for s, (start, end) in SHIFTS.items()
    ]
    await set_pattern(
        writer.conn, writer.outbox, station=code, kind="weekly", shifts=shifts, allow_gaps=False, today=today
    )


async def _issue_station_tokens(writer: DirectoryWriter, code: str, people: dict[str, str]) -> list[dict]:
    credentials: list[dict] = []
    for suffix, person in people.items():
        staff_id = f"{code}-{suffix}"
        token = await writer.issue_token(
            token_id=f"demo:{staff_id}", role=ROLES[suffix], station=code, staff_id=staff_id
        )
        credentials.append(
            {"staff_id": staff_id, "name": person, "role": ROLES[suffix], "station": code, "token": token}
            | await _demo_account(writer, staff_id)
        )
    return credentials


async def _demo_account(writer: DirectoryWriter, staff_id: str) -> dict[str, str]:
    """The console sign-in of a demo account: user name = staff id in lower case, a fresh random
    password at every seed (written to the dev credentials), no forced change (DESIGN 4.8)."""
    username, password = staff_id.lower(), secrets.token_urlsafe(12)
    await set_account(writer.conn, staff_id, username, password, must_change=False)
    return {"username": username, "password": password}


async def _seed_bureau(writer: DirectoryWriter) -> list[dict]:
    """The bureau's account and the bureau systems' integration token: they belong to no station."""
    credentials: list[dict] = []
    bureau_id, bureau_name = BUREAU
    await _upsert_person(writer, bureau_id, None, {"name": bureau_name, "role": "bureau"})
    credentials.append(
        {
            "staff_id": bureau_id,
            "name": bureau_name,
            "role": "bureau",
            "station": None,
            "token": await writer.issue_token(
                token_id=f"demo:{bureau_id}", role="bureau", station=None, staff_id=bureau_id
            ),
        }
        | await _demo_account(writer, bureau_id)
    )
    credentials.append(
        {
            "staff_id": None,
            "name": "demo integration (bureau systems)",
            "role": "integration",
            "station": None,
            "token": await writer.issue_token(token_id="demo:integration", role="integration", station=None),
        }
    )
    return credentials

"""Directory administration (issue 15): who may change which station and which person, what a
valid station or staff record is, and the change itself (rows, directory event, audit entry) in
the caller's transaction. The JSON API (directory_api.py) and the `fengqiao station|staff|admin`
commands (directory_cli.py) both call these functions: there is one set of rules.

Over 400 lines with a reason: stations and staff share the editor's scope rules, the record
checks and the audit, and splitting them would put the rules in two places."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import time
from typing import Annotated, Any, Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from fengqiao.auth import DEPLOYMENT_ROLES, Principal
from fengqiao.directory import DirectoryWriter
from fengqiao.errors import invalid_field
from fengqiao.events import STATION_PHONE_PATTERN, Category, StaffUpserted, StationUpserted
from fengqiao.outbox import Outbox
from fengqiao.pii import PiiCipher, mask_email, mask_phone, normalise_phone
from mediation import db
from mediation.lifecycle import OPEN
from mediation.signin import PasswordRefused, end_sessions_of, set_account

# Teams a station has when it names none: those of the deployment's default category rules.
DEFAULT_TEAMS = ("community", "patrol", "mediation")
# Roles a station leader may give and take; leaders, bureau and admins are the administrator's.
LEADER_MANAGES = frozenset({"officer", "mediator", "instructor"})
STAFF_ROLES = ("officer", "mediator", "instructor", "leader", "bureau", "admin")
StaffRole = Literal["officer", "mediator", "instructor", "leader", "bureau", "admin"]

StationCode = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9]{1,15}$")]
Team = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
Badge = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z-]{1,20}$")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
HHMM = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63}){1,8}$")


class DirectoryRefused(Exception):
    """A change refused: HTTP status, a stable code, a Chinese message naming the field."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def _not_found_station() -> DirectoryRefused:
    return DirectoryRefused(404, "not_found", "未找到该派出所。")


def _not_found_staff() -> DirectoryRefused:
    return DirectoryRefused(404, "not_found", "没有这名工作人员。")


@dataclass(frozen=True)
class Editor:
    """Who changes the directory: a principal of the API, or the command line (an administrator)."""

    who: str
    role: str
    station: str | None

    @classmethod
    def of(cls, p: Principal) -> Editor:
        return cls(p.staff_id or p.token_id, p.role, p.station)

    @property
    def admin(self) -> bool:
        return self.role == "admin"

    def sees(self, station: str | None) -> bool:
        """Reads: admin and bureau everything; leader and instructor their own station."""
        if self.role in DEPLOYMENT_ROLES:
            return True
        return station is not None and self.station == station and self.role in ("leader", "instructor")

    def visible(self, station: str | None) -> bool:
        """Whether the station exists for this editor at all (else 404, never 403)."""
        return self.role in DEPLOYMENT_ROLES or (station is not None and station == self.station)


COMMAND_LINE = Editor("cli", "admin", None)


def may_read(editor: Editor, station: str | None) -> None:
    if not editor.visible(station):
        raise _not_found_station()
    if not editor.sees(station):
        raise DirectoryRefused(403, "forbidden", "只有所领导和分局管理员可以查看人员名册。")


def _may_edit_station(editor: Editor, station: str) -> None:
    if not editor.visible(station):
        raise _not_found_station()
    if not (editor.admin or (editor.role == "leader" and editor.station == station)):
        raise DirectoryRefused(403, "forbidden", "只有本所所长或分局管理员可以修改派出所信息。")


def _admin_only(editor: Editor, what: str) -> None:
    if not editor.admin:
        raise DirectoryRefused(403, "forbidden", f"只有分局管理员可以{what}。")


def _may_manage(editor: Editor, station: str | None, roles: set[str]) -> None:
    """A person of `station` whose role is (and becomes) one of `roles`."""
    if not editor.visible(station):
        raise _not_found_staff()
    if editor.admin:
        return
    if editor.role != "leader" or editor.station != station:
        raise DirectoryRefused(403, "forbidden", "只有本所所长或分局管理员可以管理人员。")
    if not roles <= LEADER_MANAGES:
        raise DirectoryRefused(
            403, "forbidden", "所长只能管理本所民警、调解员和指导员；所长及分局人员由分局管理员管理。"
        )


# -- the records ----------------------------------------------------------------------------------


class AlertThreshold(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["cluster", "trend", "repeat_dispute"]
    category: Category | Literal["*"] = "*"
    window_hours: int = Field(ge=1, le=24 * 366)
    yellow: int = Field(ge=1, le=10_000)
    orange: int = Field(ge=1, le=10_000)
    red: int = Field(ge=1, le=10_000)

    @model_validator(mode="after")
    def _ordered(self) -> AlertThreshold:
        if not self.yellow <= self.orange <= self.red:
            raise ValueError("must be one of: yellow <= orange <= red")
        return self


class DutyRange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    starts: HHMM
    ends: HHMM

    @model_validator(mode="after")
    def _ordered(self) -> DutyRange:
        if self.starts >= self.ends:
            raise ValueError("ends is before starts")
        return self


Weekday = Literal["1", "2", "3", "4", "5", "6", "7"]


class DutyHours(DutyRange):
    """`starts`–`ends` every day, except the weekdays listed (ISO, "1" = Monday: their own range
    or "off") and, if given, the days off of the working-day calendar (holidays and rest days)."""

    weekdays: dict[Weekday, DutyRange | Literal["off"]] = Field(
        default_factory=dict, description='per ISO weekday ("1" = Monday): a range, or "off"'
    )
    holidays: DutyRange | Literal["off"] | None = Field(
        default=None, description='statutory holidays and rest days: a range, or "off"; absent: as their weekday'
    )

    @model_validator(mode="after")
    def _some_duty(self) -> DutyHours:
        if len(self.weekdays) == 7 and all(v == "off" for v in self.weekdays.values()):
            raise ValueError("every weekday is off")
        return self

    def schedule(self) -> dict[str, Any]:
        return self.model_dump(mode="json", include={"weekdays", "holidays"}, exclude_none=True)


class StationChange(BaseModel):
    """The fields of a station a leader may change for their own station (all optional: a PATCH)."""

    model_config = ConfigDict(extra="forbid")
    name: Text | None = None
    jurisdiction: list[Text] | None = Field(default=None, max_length=200, description="address keywords")
    phone: str | None = Field(default=None, max_length=32, pattern=STATION_PHONE_PATTERN)
    mailbox: str | None = Field(default=None, max_length=254, description="the station's own mailbox address")
    duty_hours: DutyHours | None = Field(default=None, description="on-duty hours of the acceptance clock")
    teams: list[Team] | None = Field(default=None, max_length=30)
    category_teams: dict[Category, Team] | None = Field(default=None, description="category -> team")
    alert_thresholds: list[AlertThreshold] | None = Field(default=None, max_length=50)


class StationIn(StationChange):
    code: StationCode
    name: Text


class StaffChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Text | None = None
    role: StaffRole | None = None
    team: Team | None = None
    badge_no: Badge | None = Field(default=None, description="警号, unique across the deployment")
    phone: str | None = Field(default=None, max_length=40, description="sealed; shown masked")
    email: str | None = Field(default=None, max_length=254, description="sealed; shown masked")
    confidential_handler: bool | None = Field(default=None, description="approved for confidential tip-offs")


class StaffIn(StaffChange):
    name: Text
    role: StaffRole
    username: str | None = Field(default=None, max_length=64, description="sign-in name; default the badge number")


def parse(model: type[BaseModel], data: dict[str, Any]) -> Any:
    """Validate a command-line or import row as the API would (the same Chinese message)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        detail: Any = invalid_field(exc.errors(), data).detail  # api_error's dict
        raise DirectoryRefused(422, "invalid_field", detail["message"], detail.get("field")) from None


# -- stations -------------------------------------------------------------------------------------


def _check_station(s: dict[str, Any]) -> None:
    teams = set(s["teams"] or DEFAULT_TEAMS)
    unknown = sorted(set(s["category_teams"].values()) - teams)
    if unknown:
        raise DirectoryRefused(
            422, "unknown_team", f"类别对应的队组 {'、'.join(unknown)} 不在本所队组中。", "category_teams"
        )
    if s["mailbox"] is not None and not EMAIL.match(s["mailbox"]):
        raise DirectoryRefused(422, "invalid_field", "字段 mailbox 不是有效的电子邮箱地址。", "mailbox")


def _event(s: dict[str, Any]) -> StationUpserted:
    return StationUpserted(
        code=s["code"],
        name=s["name"],
        jurisdiction=s["jurisdiction"],
        phone=s["phone"],
        active=s["active"],
        mailbox=s["mailbox"],
        duty_starts=s["duty_starts"],
        duty_ends=s["duty_ends"],
        teams=s["teams"],
        category_teams=s["category_teams"],
        alert_thresholds=s["alert_thresholds"],
    )


def _merge_station(current: dict[str, Any], change: StationChange) -> dict[str, Any]:
    fields = change.model_dump(exclude_unset=True, mode="json")
    if "duty_hours" in fields:
        fields.pop("duty_hours")
        hours = change.duty_hours
        fields |= {
            "duty_starts": hours.starts if hours else None,
            "duty_ends": hours.ends if hours else None,
            "duty_schedule": hours.schedule() if hours else None,
        }
    for name in ("name", "jurisdiction", "teams", "category_teams", "alert_thresholds"):
        if name in fields and fields[name] is None:
            del fields[name]  # explicitly null: keep (these have no "none")
    return current | fields


MIN_KEYWORD_CHARS = 2


async def _check_jurisdiction(conn: asyncpg.Connection, s: dict[str, Any]) -> None:
    """Address keywords are at least two characters and none is another active station's: a
    shared keyword would send one station's citizens to another by the order of station codes."""
    short = [k for k in s["jurisdiction"] if len(k.strip()) < MIN_KEYWORD_CHARS]
    if short:
        raise DirectoryRefused(
            422, "invalid_field", f"辖区关键词至少 {MIN_KEYWORD_CHARS} 个字：{'、'.join(short)}。", "jurisdiction"
        )
    taken = {
        k: other["code"]
        for other in await db.directory.stations(conn, None)
        if other["code"] != s["code"] and other["active"]
        for k in other["jurisdiction"]
    }
    shared = sorted(k for k in s["jurisdiction"] if k in taken)
    if shared:
        raise DirectoryRefused(
            422,
            "jurisdiction_taken",
            f"辖区关键词已属于其他派出所：{'、'.join(f'{k}（{taken[k]}）' for k in shared)}。",
            "jurisdiction",
        )


async def _write_station(
    conn: asyncpg.Connection, outbox: Outbox, s: dict[str, Any], editor: Editor, action: str, changed: list[str]
) -> dict[str, Any]:
    _check_station(s)
    if "jurisdiction" in changed:
        await _check_jurisdiction(conn, s)
    await DirectoryWriter(conn, outbox).station(_event(s))
    await db.directory.set_duty_hours(
        conn, s["code"], _time(s["duty_starts"]), _time(s["duty_ends"]), s.get("duty_schedule") or {}
    )
    await _audit(conn, editor, s["code"], action, s["code"], {"fields": changed})
    stored = await db.directory.station(conn, s["code"])
    assert stored is not None
    return stored


def _time(value: str | None) -> time | None:
    return time.fromisoformat(value) if value else None


async def create_station(conn: asyncpg.Connection, outbox: Outbox, editor: Editor, body: StationIn) -> dict[str, Any]:
    _admin_only(editor, "新建派出所")
    if await db.directory.station(conn, body.code, lock=True) is not None:
        raise DirectoryRefused(422, "duplicate", f"派出所代码“{body.code}”已被使用。", "code")
    blank = {
        "code": body.code,
        "active": True,
        "phone": None,
        "mailbox": None,
        "duty_starts": None,
        "duty_ends": None,
        "duty_schedule": None,
        "jurisdiction": [],
        "teams": [],
        "category_teams": {},
        "alert_thresholds": [],
    }
    s = _merge_station(blank, body)
    return await _write_station(conn, outbox, s, editor, "station_created", sorted(body.model_fields_set))


async def change_station(
    conn: asyncpg.Connection, outbox: Outbox, editor: Editor, code: str, change: StationChange
) -> dict[str, Any]:
    _may_edit_station(editor, code)
    if "jurisdiction" in change.model_fields_set:
        # The keywords decide which station receives citizens' web items: a leader widening his own
        # would take in another station's items, complaints about its officers included.
        _admin_only(editor, "修改辖区关键词")
    current = await db.directory.station(conn, code, lock=True)
    if current is None:
        raise _not_found_station()
    changed = sorted(change.model_fields_set)
    return await _write_station(conn, outbox, _merge_station(current, change), editor, "station_changed", changed)


async def set_station_active(
    conn: asyncpg.Connection, outbox: Outbox, editor: Editor, code: str, active: bool
) -> dict[str, Any]:
    """Deactivate (nothing new routed there; its items stay readable) or reactivate a station."""
    if not editor.visible(code):
        raise _not_found_station()
    _admin_only(editor, "停用或启用派出所")
    current = await db.directory.station(conn, code, lock=True)
    if current is None:
        raise _not_found_station()
    action = "station_reactivated" if active else "station_deactivated"
    return await _write_station(conn, outbox, current | {"active": active}, editor, action, ["active"])


# -- staff ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffResult:
    staff: dict[str, Any]
    one_time_password: str | None = None
    revoked_tokens: tuple[str, ...] = ()
    flagged_cases: tuple[str, ...] = ()
    outcome: str = "changed"  # created, changed, unchanged


def staff_view(row: asyncpg.Record, cipher: PiiCipher | None) -> dict[str, Any]:
    """A staff record as the API shows it: contacts masked (never in full), no hashes."""
    out = {k: row[k] for k in ("staff_id", "station", "name", "role", "team", "badge_no", "active")}
    out |= {"confidential_handler": row["confidential_handler"], "username": row["username"]}
    out |= {"must_change_password": row["must_change"], "phone": None, "email": None}
    if row["contact_enc"] is not None and cipher is not None:
        contact = _open_contact(cipher, row)
        out["phone"] = mask_phone(contact["phone"]) if contact.get("phone") else None
        out["email"] = mask_email(contact["email"]) if contact.get("email") else None
    return out


def _open_contact(cipher: PiiCipher, row: asyncpg.Record) -> dict[str, Any]:
    from fengqiao.pii import Sealed

    sealed = Sealed(row["contact_kid"], bytes(row["contact_enc"]))
    return cipher.open_json(sealed, context=f"staff/{row['staff_id']}/contact")


async def _station_teams(conn: asyncpg.Connection, station: str | None, editor: Editor) -> set[str]:
    """The station's teams; a station that does not exist (or is hidden from the editor) is a 422."""
    if station is None:
        return set()
    s = await db.directory.station(conn, station)
    if s is None or not editor.visible(station):
        raise DirectoryRefused(422, "unknown_station", f"未知的派出所代码：{station}", "station")
    if not s["active"]:
        raise DirectoryRefused(422, "station_inactive", f"派出所 {station} 已停用，不能加入人员。", "station")
    return set(s["teams"] or DEFAULT_TEAMS)


async def _check_staff(conn: asyncpg.Connection, staff_id: str, record: dict[str, Any], editor: Editor) -> None:
    deployment = record["role"] in DEPLOYMENT_ROLES
    if deployment and record["station"] is not None:
        raise DirectoryRefused(422, "invalid_field", "分局人员（bureau、admin）不属于任何派出所。", "station")
    if not deployment and record["station"] is None:
        raise DirectoryRefused(422, "invalid_field", "该角色的人员须属于一个派出所，请填写 station。", "station")
    teams = await _station_teams(conn, record["station"], editor)
    if record["team"] is not None and record["team"] not in teams:
        known = "、".join(sorted(teams)) or "无"
        raise DirectoryRefused(422, "unknown_team", f"队组“{record['team']}”不在本所队组中（{known}）。", "team")
    if record["badge_no"]:
        await db.directory.lock_badge(conn, record["badge_no"])
        holder = await db.directory.staff_by_badge(conn, record["badge_no"])
        if holder is not None and holder["staff_id"] != staff_id:
            raise DirectoryRefused(422, "duplicate", f"警号“{record['badge_no']}”已被其他人员使用。", "badge_no")


def _contact(body: StaffChange) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    if "phone" in body.model_fields_set:
        try:
            out["phone"] = normalise_phone(body.phone) if body.phone else None
        except ValueError:
            raise DirectoryRefused(422, "invalid_field", "字段 phone 不是有效的电话号码。", "phone") from None
    if "email" in body.model_fields_set:
        if body.email and not EMAIL.match(body.email.strip()):
            raise DirectoryRefused(422, "invalid_field", "字段 email 不是有效的电子邮箱地址。", "email")
        out["email"] = body.email.strip() if body.email else None
    return out


async def _seal_contact(
    conn: asyncpg.Connection, staff_id: str, changes: dict[str, str | None], cipher: PiiCipher | None, row: Any
) -> None:
    if not changes:
        return
    if cipher is None:
        raise DirectoryRefused(
            422, "invalid_field", "未配置个人信息加密密钥（FENGQIAO_PII_KEYS），不能保存电话和邮箱。", "phone"
        )
    current = _open_contact(cipher, row) if row is not None and row["contact_enc"] is not None else {}
    sealed = cipher.seal_json(current | changes, context=f"staff/{staff_id}/contact")
    await db.directory.set_contact(conn, staff_id, sealed.kid, sealed.blob)


def _upserted(staff_id: str, r: dict[str, Any]) -> StaffUpserted:
    return StaffUpserted(
        staff_id=staff_id,
        station=r["station"],
        name=r["name"],
        role=r["role"],
        team=r["team"],
        badge_no=r["badge_no"],
        active=r["active"],
        confidential_handler=r["confidential_handler"],
    )


async def _new_staff_id(conn: asyncpg.Connection, station: str | None, badge_no: str | None) -> str:
    """Fixed at creation and kept through transfers: readable, e.g. KZ03-0315 (station-badge)."""
    base = f"{station or 'BUREAU'}-{badge_no or secrets.token_hex(3).upper()}"
    staff_id = base
    while await db.directory.staff_id_taken(conn, staff_id):
        staff_id = f"{base}-{secrets.token_hex(2).upper()}"
    return staff_id


def one_time_password() -> str:
    return secrets.token_urlsafe(12)


async def create_staff(
    conn: asyncpg.Connection,
    outbox: Outbox,
    editor: Editor,
    station: str | None,
    body: StaffIn,
    cipher: PiiCipher | None,
    *,
    staff_id: str | None = None,
) -> StaffResult:
    """A new person and their sign-in account, with a one-time password they must change.
    `staff_id` is for the demo seed only (its documented ids, e.g. KZ01-P1); the API and the
    commands let the id be made from the station and badge number."""
    _may_manage(editor, station, {body.role})
    record = body.model_dump(include={"name", "role", "team", "badge_no"}) | {"station": station, "active": True}
    record["confidential_handler"] = bool(body.confidential_handler)
    if staff_id is not None and await db.directory.staff_id_taken(conn, staff_id):
        raise DirectoryRefused(422, "duplicate", f"人员编号“{staff_id}”已被使用。", "staff_id")
    staff_id = staff_id or await _new_staff_id(conn, station, body.badge_no)
    await _check_staff(conn, staff_id, record, editor)
    contact = _contact(body)
    await DirectoryWriter(conn, outbox).staff(_upserted(staff_id, record))
    await _seal_contact(conn, staff_id, contact, cipher, None)
    password = one_time_password()
    username = body.username or (body.badge_no or staff_id).lower()
    try:
        await set_account(conn, staff_id, username, password, must_change=True)
    except PasswordRefused as exc:
        raise DirectoryRefused(422, "invalid_field", exc.message, exc.field) from None
    await _audit(conn, editor, station, "staff_created", staff_id, _described(record, contact) | {"username": username})
    row = await db.directory.staff_member(conn, staff_id)
    return StaffResult(staff_view(row, cipher), password, outcome="created")


async def _person(conn: asyncpg.Connection, editor: Editor, staff_id: str) -> asyncpg.Record:
    row = await db.directory.staff_member(conn, staff_id, lock=True)
    if row is None or not editor.visible(row["station"]):
        raise _not_found_staff()
    return row


async def change_staff(
    conn: asyncpg.Connection, outbox: Outbox, editor: Editor, staff_id: str, body: StaffChange, cipher: PiiCipher | None
) -> StaffResult:
    row = await _person(conn, editor, staff_id)
    fields = body.model_dump(exclude_unset=True, include={"name", "role", "team", "badge_no", "confidential_handler"})
    fields = {k: v for k, v in fields.items() if v is not None or k in ("team", "badge_no")}
    _may_manage(editor, row["station"], {row["role"], fields.get("role", row["role"])})
    record = {k: row[k] for k in ("station", "name", "role", "team", "badge_no", "active", "confidential_handler")}
    new = record | fields
    contact = _contact(body)
    if contact and cipher is not None and row["contact_enc"] is not None:
        current = _open_contact(cipher, row)
        contact = {k: v for k, v in contact.items() if current.get(k) != v}
    changed = {k: v for k, v in new.items() if record[k] != v}
    if not changed and not contact:
        return StaffResult(staff_view(row, cipher), outcome="unchanged")
    await _check_staff(conn, staff_id, new, editor)
    revoked: list[str] = []
    if changed:
        revoked = await DirectoryWriter(conn, outbox).staff(_upserted(staff_id, new))
    await _seal_contact(conn, staff_id, contact, cipher, row)
    if "role" in changed:  # a new role: sessions carry the old one's pages; sign in again
        await end_sessions_of(conn, staff_id)
    await _audit(conn, editor, row["station"], "staff_changed", staff_id, _described(changed, contact))
    fresh = await db.directory.staff_member(conn, staff_id)
    return StaffResult(staff_view(fresh, cipher), revoked_tokens=tuple(revoked))


async def _leave(
    conn: asyncpg.Connection, outbox: Outbox, staff_id: str, record: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """The person leaves their station (deactivated or transferred): tokens revoked, sessions
    ended and open cases flagged for the leader, in this transaction."""
    revoked = await DirectoryWriter(conn, outbox).staff(_upserted(staff_id, record))
    await end_sessions_of(conn, staff_id)  # their session tokens were among the revoked ones
    flagged = await db.directory.flag_open_cases(conn, staff_id, sorted(OPEN))
    return revoked, flagged


async def deactivate_staff(conn: asyncpg.Connection, outbox: Outbox, editor: Editor, staff_id: str) -> StaffResult:
    row = await _person(conn, editor, staff_id)
    _may_manage(editor, row["station"], {row["role"]})
    if not row["active"]:
        return StaffResult(staff_view(row, None), outcome="unchanged")
    record = {k: row[k] for k in ("station", "name", "role", "team", "badge_no", "confidential_handler")}
    revoked, flagged = await _leave(conn, outbox, staff_id, record | {"active": False})
    detail = {"revoked_tokens": len(revoked), "flagged_cases": flagged}
    await _audit(conn, editor, row["station"], "staff_deactivated", staff_id, detail)
    fresh = await db.directory.staff_member(conn, staff_id)
    return StaffResult(staff_view(fresh, None), None, tuple(revoked), tuple(flagged))


async def reactivate_staff(conn: asyncpg.Connection, outbox: Outbox, editor: Editor, staff_id: str) -> StaffResult:
    """Back at their station (administrator only; the demo seed): no token or session returns."""
    row = await _person(conn, editor, staff_id)
    _admin_only(editor, "恢复人员")
    if row["active"]:
        return StaffResult(staff_view(row, None), outcome="unchanged")
    record = {k: row[k] for k in ("station", "name", "role", "team", "badge_no", "confidential_handler")}
    record["active"] = True
    await _check_staff(conn, staff_id, record, editor)
    await DirectoryWriter(conn, outbox).staff(_upserted(staff_id, record))
    await _audit(conn, editor, row["station"], "staff_reactivated", staff_id, {})
    fresh = await db.directory.staff_member(conn, staff_id)
    return StaffResult(staff_view(fresh, None))


async def transfer_staff(
    conn: asyncpg.Connection, outbox: Outbox, editor: Editor, staff_id: str, to_station: str, team: str | None
) -> StaffResult:
    """To another station (administrator only): as leaving the old one, then joining the new one."""
    row = await _person(conn, editor, staff_id)
    _admin_only(editor, "调动人员")
    if row["role"] in DEPLOYMENT_ROLES:
        raise DirectoryRefused(422, "invalid_field", "分局人员不属于任何派出所，不能调动。", "to_station")
    if to_station == row["station"]:
        raise DirectoryRefused(422, "invalid_field", "调入的派出所与现所相同。", "to_station")
    record = {k: row[k] for k in ("name", "role", "badge_no", "confidential_handler")}
    record |= {"station": to_station, "team": team, "active": True}
    await _check_staff(conn, staff_id, record, editor)
    revoked, flagged = await _leave(conn, outbox, staff_id, record)
    # Both leaders read it in their audit: the old station's case numbers only in the old one's.
    detail = {"from": row["station"], "to": to_station, "revoked_tokens": len(revoked)}
    await _audit(conn, editor, row["station"], "staff_transferred", staff_id, detail | {"flagged_cases": flagged})
    await _audit(conn, editor, to_station, "staff_transferred", staff_id, detail | {"flagged_cases": len(flagged)})
    fresh = await db.directory.staff_member(conn, staff_id)
    return StaffResult(staff_view(fresh, None), None, tuple(revoked), tuple(flagged))


async def reset_password(conn: asyncpg.Connection, editor: Editor, staff_id: str) -> StaffResult:
    """A new one-time password (shown once), changed at the next sign-in; their sessions end."""
    row = await _person(conn, editor, staff_id)
    _may_manage(editor, row["station"], {row["role"]})
    if not row["active"]:
        raise DirectoryRefused(409, "inactive", "该人员已停用，不能重置密码。")
    password = one_time_password()
    await set_account(conn, staff_id, row["username"] or staff_id.lower(), password, must_change=True)
    await _audit(conn, editor, row["station"], "password_reset", staff_id, {})
    fresh = await db.directory.staff_member(conn, staff_id)
    return StaffResult(staff_view(fresh, None), password)


def _described(changed: dict[str, Any], contact: dict[str, Any]) -> dict[str, Any]:
    """What the audit keeps of a change: the values, but of the contacts only that they changed."""
    return {k: v for k, v in changed.items() if k != "name"} | {
        "changed": sorted([*changed, *contact]),
    }


async def _audit(
    conn: asyncpg.Connection, editor: Editor, station: str | None, action: str, target: str, detail: dict[str, Any]
) -> None:
    await db.directory.insert_audit(
        conn,
        actor=editor.who,
        role=editor.role,
        station=station,
        action=action,
        target=target,
        detail=json.loads(json.dumps(detail, default=str)),
    )


# -- import ---------------------------------------------------------------------------------------

IMPORT_COLUMNS = ("station", "name", "role", "team", "badge_no", "phone", "email", "confidential_handler", "username")
_TRUE, _FALSE = {"1", "true", "yes", "y", "是", "x"}, {"", "0", "false", "no", "n", "否"}


def import_fields(raw: dict[str, Any]) -> dict[str, Any]:
    """A spreadsheet row as the API's fields: empty cells are absent, the flag a yes or no."""
    row: dict[str, Any] = {
        k: str(v).strip() for k, v in raw.items() if k in IMPORT_COLUMNS and v is not None and str(v).strip()
    }
    flag = row.pop("confidential_handler", "").lower()
    if flag not in _TRUE | _FALSE:
        raise DirectoryRefused(
            422, "invalid_field", "字段 confidential_handler 须为 是 或 否。", "confidential_handler"
        )
    if flag in _TRUE:
        row["confidential_handler"] = True
    if not row.get("badge_no"):
        raise DirectoryRefused(422, "invalid_field", "字段 badge_no 为必填项（导入按警号更新）。", "badge_no")
    return row


async def import_row(
    conn: asyncpg.Connection, outbox: Outbox, editor: Editor, raw: dict[str, Any], cipher: PiiCipher | None
) -> StaffResult:
    """One row of `fengqiao staff import`: creates the person, or updates the one with that badge
    number (so importing the same file twice changes nothing). Moving someone to another station is
    a transfer, not an import."""
    row = import_fields(raw)
    station = row.pop("station", None)
    existing = await db.directory.staff_by_badge(conn, row["badge_no"])
    if existing is None:
        return await create_staff(conn, outbox, editor, station, parse(StaffIn, row), cipher)
    if existing["station"] != station:
        raise DirectoryRefused(
            422,
            "invalid_field",
            f"警号 {row['badge_no']} 的人员属于 {existing['station'] or '分局'}：调动请用调动功能。",
            "station",
        )
    row.pop("username", None)
    change = parse(StaffChange, row)
    return await change_staff(conn, outbox, editor, existing["staff_id"], change, cipher)

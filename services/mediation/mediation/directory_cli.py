"""`fengqiao station ...`, `fengqiao staff ...` and `fengqiao admin add` (DESIGN 4.8): the first
setup of a deployment and scripting, against `DATABASE_URL` or the running dev stack. They call
the same functions as the JSON API (mediation.directory_admin), as an administrator, audited as
`cli:<os user>`."""

from __future__ import annotations

import asyncio
import csv
import getpass
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from mediation.sheets import SheetRefused, xlsx_rows

if TYPE_CHECKING:
    import asyncpg

    from fengqiao.outbox import Outbox
    from fengqiao.pii import PiiCipher
    from mediation.directory_admin import Editor

T = TypeVar("T")
MAX_IMPORT_BYTES = 10 * 1024 * 1024
# Column headings of an import file: the API's field names, or these Chinese ones.
HEADINGS = {
    "派出所": "station",
    "姓名": "name",
    "角色": "role",
    "队组": "team",
    "警号": "badge_no",
    "电话": "phone",
    "邮箱": "email",
    "保密举报承办": "confidential_handler",
    "用户名": "username",
}
ROLE_NAMES = {"民警": "officer", "调解员": "mediator", "指导员": "instructor", "所长": "leader"}


def _editor() -> Editor:
    from mediation.directory_admin import Editor

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Editor(f"cli:{user}", "admin", None)


def _cipher() -> PiiCipher | None:
    """The deployment's personal-data keys (FENGQIAO_PII_KEYS, or the dev stack's); None if unset."""
    from fengqiao.pii import PiiCipher
    from fengqiao.settings import Settings

    settings = Settings()
    value = settings.pii_keys.get_secret_value() if settings.pii_keys else None
    dev_keys = settings.fengqiao_home / "pii-keys"
    if value is None and dev_keys.exists():
        value = dev_keys.read_text().strip()
    return PiiCipher.from_setting(value) if value else None


@asynccontextmanager
async def _connection() -> AsyncIterator[asyncpg.Connection]:
    import asyncpg

    from fengqiao.cli import _connection_from_state
    from fengqiao.settings import Settings

    dsn, _ = _connection_from_state(Settings())
    if not dsn:
        raise click.ClickException("set DATABASE_URL, or start `fengqiao dev` first")
    conn = await asyncpg.connect(dsn, server_settings={"search_path": "mediation"})
    try:
        yield conn
    finally:
        await conn.close()


async def _in_transaction(conn: asyncpg.Connection, change: Callable[[Outbox], Awaitable[T]]) -> T:
    """One change, its directory events and its audit entry: all or nothing."""
    from fengqiao.outbox import Outbox

    async with conn.transaction():
        outbox = Outbox(conn)
        result = await change(outbox)
        await outbox.flush()
    return result


def _run(change: Callable[[asyncpg.Connection, Outbox], Awaitable[T]]) -> T:
    from mediation.directory_admin import DirectoryRefused

    async def run() -> T:
        async with _connection() as conn:
            return await _in_transaction(conn, lambda outbox: change(conn, outbox))

    try:
        return asyncio.run(run())
    except DirectoryRefused as exc:
        raise click.ClickException(f"{exc.field or exc.code}: {exc.message}") from None


# -- station --------------------------------------------------------------------------------------


@click.group()
def station() -> None:
    """Stations of the deployment (add, duty-hours, list, deactivate)."""


def _range(value: str) -> dict[str, str] | str:
    if value.strip().lower() == "off":
        return "off"
    starts, _, ends = value.partition("-")
    return {"starts": starts.strip(), "ends": ends.strip()}


def _duty_hours(every_day: str, days: tuple[str, ...], holidays: str | None) -> dict[str, Any]:
    """`08:30-17:30`, `6=09:00-12:00` / `7=off` (ISO weekday), `10:00-12:00` / `off` as the API's duty_hours."""
    default = _range(every_day)
    if isinstance(default, str):
        raise click.ClickException("--duty-hours: HH:MM-HH:MM (the hours of every day not listed)")
    hours: dict[str, Any] = dict(default)
    weekdays = {}
    for day in days:
        weekday, _, value = day.partition("=")
        weekdays[weekday.strip()] = _range(value)
    hours["weekdays"] = weekdays
    if holidays:
        hours["holidays"] = _range(holidays)
    return hours


def _duty_options(command: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(
        [
            click.option(
                "--duty-hours", help="on-duty hours of the acceptance clock, HH:MM-HH:MM (none: around the clock)"
            ),
            click.option(
                "--duty-day", multiple=True, help="a weekday's own hours: 6=09:00-12:00, or 7=off (1 = Monday; repeat)"
            ),
            click.option("--holiday-hours", help="hours on holidays and rest days: HH:MM-HH:MM, or off"),
        ]
    ):
        command = option(command)
    return command


@station.command("add")
@click.argument("code")
@click.option("--name", required=True, help="the station's name, e.g. 新村派出所")
@click.option("--jurisdiction", multiple=True, help="an address keyword that routes web items here (repeat)")
@click.option("--phone", help="the station's own number, given to citizens")
@click.option("--mailbox", help="the station's mailbox address")
@_duty_options
def station_add(
    code: str,
    name: str,
    jurisdiction: tuple[str, ...],
    phone: str | None,
    mailbox: str | None,
    duty_hours: str | None,
    duty_day: tuple[str, ...],
    holiday_hours: str | None,
) -> None:
    """Add station CODE (upper-case letters and digits, e.g. KZ03)."""
    from mediation import directory_admin as admin

    fields: dict[str, Any] = {"code": code, "name": name, "jurisdiction": list(jurisdiction)}
    fields |= {k: v for k, v in (("phone", phone), ("mailbox", mailbox)) if v}
    if duty_hours:
        fields["duty_hours"] = _duty_hours(duty_hours, duty_day, holiday_hours)
    elif duty_day or holiday_hours:
        raise click.ClickException("--duty-day and --holiday-hours need --duty-hours (the hours of the other days)")
    editor = _editor()

    async def change(conn: asyncpg.Connection, outbox: Outbox) -> dict[str, Any]:
        body = admin.parse(admin.StationIn, fields)
        return await admin.create_station(conn, outbox, editor, body)

    created = _run(change)
    click.echo(f"station {created['code']} ({created['name']}) added; services learn it within seconds")


@station.command("duty-hours")
@click.argument("code")
@_duty_options
def station_duty_hours(code: str, duty_hours: str | None, duty_day: tuple[str, ...], holiday_hours: str | None) -> None:
    """Set (replace) the acceptance clock's duty hours of station CODE; without --duty-hours:
    around the clock. New clocks use them at once."""
    from mediation import directory_admin as admin

    if not duty_hours and (duty_day or holiday_hours):
        raise click.ClickException("--duty-day and --holiday-hours need --duty-hours (the hours of the other days)")
    fields = {"duty_hours": _duty_hours(duty_hours, duty_day, holiday_hours) if duty_hours else None}
    editor = _editor()

    async def change(conn: asyncpg.Connection, outbox: Outbox) -> dict[str, Any]:
        return await admin.change_station(conn, outbox, editor, code, admin.parse(admin.StationChange, fields))

    changed = _run(change)
    click.echo(
        f"station {code}: duty hours {changed['duty_starts'] or 'around the clock'}–{changed['duty_ends'] or ''}"
    )
    for day, hours in sorted((changed["duty_schedule"] or {}).get("weekdays", {}).items()):
        click.echo(f"  weekday {day}: {hours if hours == 'off' else hours['starts'] + '-' + hours['ends']}")
    holidays = (changed["duty_schedule"] or {}).get("holidays")
    if holidays:
        click.echo(f"  holidays: {holidays if holidays == 'off' else holidays['starts'] + '-' + holidays['ends']}")


@station.command("list")
def station_list() -> None:
    """Every station: code, name, active or not, phone."""
    from mediation import db

    async def run() -> list[dict[str, Any]]:
        async with _connection() as conn:
            return await db.directory.stations(conn, None)

    for s in asyncio.run(run()):
        state = "active" if s["active"] else "inactive"
        click.echo(f"{s['code']}\t{s['name']}\t{state}\t{s['phone'] or '-'}\t{','.join(s['jurisdiction'])}")


@station.command("deactivate")
@click.argument("code")
def station_deactivate(code: str) -> None:
    """Stop routing anything new to station CODE (its items stay readable)."""
    from mediation import directory_admin as admin

    editor = _editor()
    _run(lambda conn, outbox: admin.set_station_active(conn, outbox, editor, code, False))
    click.echo(f"station {code} deactivated: intake takes nothing new for it")


# -- staff ----------------------------------------------------------------------------------------


@click.group()
def staff() -> None:
    """People of the stations (add, import, deactivate, reset-password)."""


def _created(result: Any) -> None:
    s = result.staff
    click.echo(
        f"added {s['staff_id']} ({s['role']}, station {s['station'] or '-'}), user name {s['username']}; "
        "the one-time password below must be changed at the first sign-in (shown once):",
        err=True,
    )
    click.echo(result.one_time_password)


@staff.command("add")
@click.option("--station", help="station code (not for --role bureau or admin)")
@click.option("--name", required=True)
@click.option(
    "--role", required=True, type=click.Choice(["officer", "mediator", "instructor", "leader", "bureau", "admin"])
)
@click.option("--badge", "badge_no", help="badge number (警号), unique in the deployment")
@click.option("--team", help="one of the station's teams (default teams: community, patrol, mediation)")
@click.option("--username", help="sign-in name (default: the badge number, else the staff id)")
@click.option("--phone", help="sealed; shown masked")
@click.option("--email", help="sealed; shown masked")
@click.option("--confidential-handler", is_flag=True, help="approved to handle confidential tip-offs")
def staff_add(station: str | None, **options: Any) -> None:
    """Add a person with a sign-in account; prints the one-time password alone on the last line."""
    _created(_add_person(station, options))


def _add_person(station: str | None, options: dict[str, Any]) -> Any:
    from mediation import directory_admin as admin

    fields = {k: v for k, v in options.items() if v not in (None, False)}
    editor, cipher = _editor(), _cipher()

    async def change(conn: asyncpg.Connection, outbox: Outbox) -> Any:
        body = admin.parse(admin.StaffIn, fields)
        return await admin.create_staff(conn, outbox, editor, station, body, cipher)

    return _run(change)


@staff.command("deactivate")
@click.argument("staff_id")
def staff_deactivate(staff_id: str) -> None:
    """Deactivate STAFF_ID: tokens revoked, sessions ended, open cases flagged for the leader."""
    from mediation import directory_admin as admin

    editor = _editor()
    result = _run(lambda conn, outbox: admin.deactivate_staff(conn, outbox, editor, staff_id))
    click.echo(
        f"{staff_id} deactivated: {len(result.revoked_tokens)} token(s) revoked, "
        f"{len(result.flagged_cases)} open case(s) flagged for the leader"
    )


@staff.command("reset-password")
@click.argument("staff_id")
def staff_reset_password(staff_id: str) -> None:
    """A new one-time password for STAFF_ID (alone on the last line); their sessions end."""
    from mediation import directory_admin as admin

    editor = _editor()
    result = _run(lambda conn, outbox: admin.reset_password(conn, editor, staff_id))
    click.echo(f"new one-time password for {staff_id} (user name {result.staff['username']}):", err=True)
    click.echo(result.one_time_password)


def read_rows(file: Path) -> list[dict[str, Any]]:
    """The rows of a CSV (UTF-8) or XLSX file (first sheet), keyed by the API's field names."""
    if file.stat().st_size > MAX_IMPORT_BYTES:
        raise click.ClickException(f"{file.name}: larger than {MAX_IMPORT_BYTES // 1024 // 1024} MiB")
    if file.suffix.lower() in (".xlsx", ".xlsm"):
        table = _xlsx_rows(file)
    else:
        table = list(csv.reader(io.StringIO(file.read_text("utf-8-sig"))))
    if not table:
        raise click.ClickException(f"{file.name}: empty")
    header = [HEADINGS.get(str(h or "").strip(), str(h or "").strip().lower()) for h in table[0]]
    missing = {"name", "role", "badge_no"} - set(header)
    if missing:
        raise click.ClickException(f"{file.name}: missing column(s) {', '.join(sorted(missing))}")
    rows = []
    for values in table[1:]:
        row = {h: _cell(v) for h, v in zip(header, values, strict=False) if h}
        if any(row.values()):
            row["role"] = ROLE_NAMES.get(row.get("role") or "", row.get("role"))
            rows.append(row)
    return rows


MAX_IMPORT_ROWS = 20_000  # a bureau's whole staff, with room


def _xlsx_rows(file: Path) -> list[list[Any]]:
    try:
        return xlsx_rows(file, max_rows=MAX_IMPORT_ROWS + 1)
    except SheetRefused as exc:
        raise click.ClickException(str(exc)) from None


def _cell(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a badge number typed as a number
    return str(value).strip() or None


@staff.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def staff_import(file: Path) -> None:
    """Import people from a CSV or XLSX FILE, one person a row, by badge number (a row whose badge
    is known updates that person, so importing a file twice changes nothing). Columns: station,
    name, role, team, badge_no, phone, email, confidential_handler (是/否), username. Each row is
    applied whole or not at all; refused rows are reported with the field and the reason."""
    from tqdm import tqdm

    from mediation import directory_admin as admin

    rows = read_rows(file)
    editor, cipher = _editor(), _cipher()
    report: list[str] = []
    counts = {"created": 0, "changed": 0, "unchanged": 0, "refused": 0}

    async def run() -> None:
        async with _connection() as conn:
            for number, row in enumerate(tqdm(rows, unit="row", desc="importing"), start=2):

                def change(outbox: Outbox, row: dict[str, Any] = row) -> Awaitable[admin.StaffResult]:
                    return admin.import_row(conn, outbox, editor, row, cipher)

                try:
                    result = await _in_transaction(conn, change)
                except admin.DirectoryRefused as exc:
                    counts["refused"] += 1
                    report.append(f"row {number}: refused: {exc.field or exc.code}: {exc.message}")
                    continue
                counts[result.outcome] += 1
                s = result.staff
                line = f"row {number}: {result.outcome} {s['staff_id']} ({s['name']}, badge {s['badge_no']})"
                if result.one_time_password:
                    line += f" user name {s['username']} one-time password {result.one_time_password}"
                report.append(line)

    asyncio.run(run())
    for line in report:
        click.echo(line)
    click.echo(", ".join(f"{n} {k}" for k, n in counts.items()))
    if counts["refused"]:
        raise SystemExit(1)


# -- admin ----------------------------------------------------------------------------------------


@click.group("admin")
def admin_group() -> None:
    """The bureau's administrators (all stations)."""


@admin_group.command("add")
@click.option("--name", required=True)
@click.option("--username", required=True, help="sign-in name")
@click.option("--badge", "badge_no", help="badge number (警号)")
@click.option("--email", help="sealed; shown masked")
def admin_add(**options: Any) -> None:
    """Add a bureau administrator (the first one of a new deployment, or another); prints the
    one-time password alone on the last line."""
    _created(_add_person(None, options | {"role": "admin"}))

"""`fengqiao calendar ...` (load a year's statutory holidays and adjusted working days) and
`fengqiao roster ...` (a station's weekly duty pattern from a file, the days ahead, leave) and
`fengqiao seed` (a large synthetic history for benchmarks, mediation.bulk_seed)."""

from __future__ import annotations

import asyncio
import csv
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from fengqiao.pii import PiiCipher


def parse_schedule(text: str) -> list[tuple[date, bool, str]]:
    """Lines `YYYY-MM-DD,holiday|workday,name` (a header line and # comments allowed): the
    exceptions of a year; days not listed follow Monday–Friday."""
    rows = []
    for n, fields in enumerate(
        csv.reader(line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")), start=1
    ):
        if n == 1 and fields and fields[0].strip().lower() == "date":
            continue
        if len(fields) < 2:
            raise click.ClickException(f"line {n}: expected date,holiday|workday[,name]")
        try:
            day = date.fromisoformat(fields[0].strip())
        except ValueError as exc:
            raise click.ClickException(f"line {n}: {fields[0]!r} is not a date (YYYY-MM-DD)") from exc
        kind = fields[1].strip().lower()
        if kind not in ("holiday", "workday"):
            raise click.ClickException(f"line {n}: kind must be holiday or workday, not {kind!r}")
        rows.append((day, kind == "workday", fields[2].strip() if len(fields) > 2 else ""))
    return rows


@click.group()
def calendar() -> None:
    """The working-day calendar of the case clocks."""


@calendar.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def load(file: Path) -> None:
    """Load FILE (date,holiday|workday,name per line) into the deployment's calendar."""
    import asyncpg

    from fengqiao.cli import _connection_from_state
    from fengqiao.settings import Settings
    from mediation import db

    rows = parse_schedule(file.read_text(encoding="utf-8"))
    dsn, _ = _connection_from_state(Settings())
    if not dsn:
        raise click.ClickException("set DATABASE_URL, or start `fengqiao dev` first")

    async def run() -> int:
        conn = await asyncpg.connect(dsn, server_settings={"search_path": "mediation"})
        try:
            await db.clocks.upsert_calendar_days(conn, rows)
        finally:
            await conn.close()
        return await _republish_rosters(dsn)

    republished = asyncio.run(run())
    years = sorted({d.year for d, _, _ in rows})
    click.echo(f"loaded {len(rows)} days for {', '.join(map(str, years))}; clocks use them from the next deadline on")
    click.echo(f"duty rosters: {republished} day(s) published again")


async def _republish_rosters(dsn: str) -> int:
    """Holidays decide which pattern a day follows: publish the days a new calendar changes."""
    from fengqiao.db import create_pool
    from mediation.roster_ops import materialise_all

    pool = await create_pool(dsn, "mediation")
    try:
        return await materialise_all(pool, _today())
    finally:
        await pool.close()


# -- fengqiao roster ---------------------------------------------------------------------------------

_WEEKDAY_NAMES = {
    **{str(n): n for n in range(1, 8)},
    **{name: n for n, name in enumerate(("周一", "周二", "周三", "周四", "周五", "周六", "周日"), start=1)},
    **{
        name: n
        for n, name in enumerate(("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日"), start=1)
    },
    **{name: n for n, name in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), start=1)},
    **{
        name: n
        for n, name in enumerate(("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"), 1)
    },
    "周天": 7,
    "星期天": 7,
}
HOLIDAY_NAMES = frozenset({"holiday", "节假日", "假日", "休息日"})
MAX_ROSTER_FILE_BYTES = 2_000_000
MAX_ROSTER_ROWS = 5_000  # a week of shifts of a large station is a few hundred


def _rows_of(file: Path) -> list[list[str]]:
    """The cells of a CSV or XLSX file as text (first sheet), blank lines dropped."""
    if file.stat().st_size > MAX_ROSTER_FILE_BYTES:
        raise click.ClickException(f"{file}: larger than {MAX_ROSTER_FILE_BYTES} bytes")
    if file.suffix.lower() in (".xlsx", ".xlsm"):
        from mediation.sheets import SheetRefused, xlsx_rows

        try:
            cells = xlsx_rows(file, max_rows=MAX_ROSTER_ROWS)
        except SheetRefused as exc:
            raise click.ClickException(str(exc)) from None
        rows = [
            ["" if c is None else (c.strftime("%H:%M") if hasattr(c, "strftime") else str(c)).strip() for c in row]
            for row in cells
        ]
    else:
        text = file.read_text(encoding="utf-8-sig")
        rows = [[c.strip() for c in r] for r in csv.reader(text.splitlines())]
    return [r for r in rows if any(r) and not r[0].startswith("#")]


def parse_pattern_file(rows: list[list[str]]) -> tuple[list, list]:
    """Rows `team,weekday,staff,start,end` (a header line allowed; weekday 1–7, 周一…周日, mon…sun,
    or `holiday`/节假日 for the holiday pattern) -> (weekly, holiday) `ShiftIn`s, each named by
    its line ("第3行")."""
    from mediation.roster_ops import ShiftIn

    weekly, holiday = [], []
    for n, cells in enumerate(rows, start=1):
        if n == 1 and cells[0].lower() in ("team", "队", "班组"):
            continue
        if len(cells) < 5:
            raise click.ClickException(f"第{n}行：应为 team,weekday,staff,start,end 五列")
        team, day, staff, start, end = cells[:5]
        name = day.lower()
        if name not in HOLIDAY_NAMES and name not in _WEEKDAY_NAMES:
            raise click.ClickException(f"第{n}行：字段 weekday「{day}」应为 1–7、周一…周日 或 holiday")
        shift = ShiftIn(staff=staff, start=start, end=end, field=f"第{n}行", team=team or None)
        if name in HOLIDAY_NAMES:
            holiday.append(shift)
        else:
            weekly.append(ShiftIn(**{**shift.__dict__, "weekday": _WEEKDAY_NAMES[name]}))
    return weekly, holiday


def _dsn() -> str:
    from fengqiao.cli import _connection_from_state
    from fengqiao.settings import Settings

    dsn, _ = _connection_from_state(Settings())
    if not dsn:
        raise click.ClickException("set DATABASE_URL, or start `fengqiao dev` first")
    return dsn


def _today() -> date:
    from datetime import datetime

    from fengqiao.constants import STATION_TZ

    return datetime.now(STATION_TZ).date()


async def _audit(conn: object, station: str, action: str, detail: str) -> None:
    from mediation import db

    await db.cases.insert_audit(
        conn, staff_id="cli", role="admin", station=station, action=action, tracking_no=None, detail=detail[:2000]
    )


@click.group()
def roster() -> None:
    """Duty rosters: a station's weekly pattern, leave, and the days published ahead."""


@roster.command("set")
@click.argument("station")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--allow-gaps", is_flag=True, help="accept hours without a patrol or community officer")
def roster_set(station: str, file: Path, allow_gaps: bool) -> None:
    """Set STATION's weekly pattern from FILE (CSV or XLSX: team,weekday,staff,start,end; rows with
    weekday `holiday` set the holiday pattern). All or nothing."""
    from fengqiao.admin import directory_writer
    from mediation import db
    from mediation.roster_ops import set_pattern
    from mediation.rosters import RosterRefused

    weekly, holiday = parse_pattern_file(_rows_of(file))

    async def run() -> list[str]:
        async with directory_writer(_dsn()) as w:
            if not await db.rosters.station_exists(w.conn, station):
                raise click.ClickException(f"未找到派出所 {station}")
            out = await set_pattern(
                w.conn, w.outbox, station=station, kind="weekly", shifts=weekly, allow_gaps=allow_gaps, today=_today()
            )
            warnings, published = out.warnings, set(out.published)
            if holiday:
                out = await set_pattern(
                    w.conn,
                    w.outbox,
                    station=station,
                    kind="holiday",
                    shifts=holiday,
                    allow_gaps=allow_gaps,
                    today=_today(),
                )
                warnings, published = warnings + out.warnings, published | set(out.published)
            await _audit(w.conn, station, "roster_weekly", f"{file.name}: {len(weekly)}+{len(holiday)} shifts")
            return [
                *warnings,
                f"{len(weekly)} weekly and {len(holiday)} holiday shifts set; {len(published)} day(s) published",
            ]

    try:
        for line in asyncio.run(run()):
            click.echo(line)
    except RosterRefused as exc:
        raise click.ClickException(exc.message) from exc


@roster.command("show")
@click.argument("station")
@click.option("--days", type=click.IntRange(1, 60), default=7, show_default=True)
def roster_show(station: str, days: int) -> None:
    """The concrete day rosters of STATION from today on, with the hours nobody covers."""
    from fengqiao.admin import directory_writer
    from mediation import db
    from mediation.roster_ops import preview

    async def run() -> list[dict]:
        async with directory_writer(_dsn()) as w:
            if not await db.rosters.station_exists(w.conn, station):
                raise click.ClickException(f"未找到派出所 {station}")
            return await preview(w.conn, station, _today(), days)

    for d in asyncio.run(run()):
        kind = "工作日" if d["workday"] else "休息日/节假日"
        mark = "" if d["published"] else "  (not yet published)"
        click.echo(f"{d['day']} {d['weekday']} {kind} [{d['pattern']}]{mark}")
        for s in d["shifts"]:
            click.echo(f"    {s['start']}–{s['end']}  {s['name'] or ''} ({s['staff_id']}, {s['team'] or '-'})")
        if d["gaps"]:
            click.echo(f"    无人值班：{'、'.join(d['gaps'])}")


@roster.command("leave")
@click.argument("staff")
@click.option("--from", "day_from", type=click.DateTime(["%Y-%m-%d"]), required=True)
@click.option("--to", "day_to", type=click.DateTime(["%Y-%m-%d"]), required=True)
@click.option("--reason", default=None, help="kept with the roster (not published)")
def roster_leave(staff: str, day_from: object, day_to: object, reason: str | None) -> None:
    """STAFF (staff id) is off from --from to --to (both included): the days are published again."""
    from datetime import datetime

    from fengqiao.admin import directory_writer
    from mediation.roster_ops import ExceptionIn, add_exception
    from mediation.rosters import RosterRefused

    assert isinstance(day_from, datetime) and isinstance(day_to, datetime)
    if reason is not None and len(reason) > 500:
        raise click.ClickException("--reason: at most 500 characters")

    async def run() -> list[str]:
        async with directory_writer(_dsn()) as w:
            station = await w.conn.fetchval("SELECT station FROM staff WHERE staff_id = $1", staff)
            if station is None:
                raise click.ClickException(f"未找到工作人员 {staff}（请使用工作人员编号）")
            e = ExceptionIn("leave", staff, day_from.date(), day_to.date(), reason=reason)
            exception_id, out = await add_exception(
                w.conn, w.outbox, station=station, e=e, created_by="cli", today=_today()
            )
            await _audit(w.conn, station, "roster_leave", f"#{exception_id} {staff} {e.day_from}..{e.day_to}")
            return [*out.warnings, f"leave #{exception_id} recorded; {len(out.published)} day(s) published"]

    try:
        for line in asyncio.run(run()):
            click.echo(line)
    except RosterRefused as exc:
        raise click.ClickException(exc.message) from exc


# -- fengqiao seed -----------------------------------------------------------------------------------


def _pii_cipher() -> PiiCipher:
    """The deployment's personal-data keys: FENGQIAO_PII_KEYS, else the dev stack's key file."""
    from fengqiao.pii import PiiCipher, PiiKeyError
    from fengqiao.settings import Settings

    settings = Settings()
    value = settings.pii_keys.get_secret_value() if settings.pii_keys else None
    key_file = settings.fengqiao_home / "pii-keys"
    if not value and key_file.exists():
        value = key_file.read_text().strip()
    try:
        return PiiCipher.from_setting(value)
    except PiiKeyError as exc:
        raise click.ClickException(f"FENGQIAO_PII_KEYS: {exc}") from None


@click.command("seed")
@click.option(
    "--cases", type=click.IntRange(1, 20_000_000), required=True, help="how many cases in all (existing ones count)"
)
@click.option(
    "--stations", type=click.IntRange(1, 999), default=200, show_default=True, help="synthetic stations SY001..."
)
@click.option("--seed", "seed_value", type=click.IntRange(0), default=1, show_default=True, help="random seed")
def seed(cases: int, stations: int, seed_value: int) -> None:
    """A large synthetic history for benchmarks: stations SY001... with eight staff each (through
    the directory functions) and CASES cases over the last two years (COPY into mediation's tables:
    cases, history, clocks, case access, the citizen's words sealed with FENGQIAO_PII_KEYS).
    Against the dev stack or DATABASE_URL. Only mediation is seeded: intake, triage and notify
    know nothing of these cases. A second run adds only what is missing."""
    import time

    from tqdm import tqdm

    from mediation.bulk_seed import run_seed

    dsn = _dsn()
    cipher = _pii_cipher()
    started = time.monotonic()
    click.echo(f"stations SY001… and their staff, then {cases:,} cases (batches of 10,000) …", err=True)
    with tqdm(total=cases, unit="case", desc="seeding", unit_scale=True) as bar:
        report = asyncio.run(
            run_seed(dsn, cases=cases, stations=stations, seed=seed_value, cipher=cipher, progress=bar.update)
        )
    click.echo(
        f"stations: {report.stations_created} created; staff: {report.staff_created} created; "
        f"cases: {report.cases_created} created, {report.cases_existing} already there "
        f"({time.monotonic() - started:.0f} s)"
    )

"""`fengqiao calendar ...`: load a year's statutory holidays and adjusted working days."""

from __future__ import annotations

import asyncio
import csv
from datetime import date
from pathlib import Path

import click


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

    async def run() -> None:
        conn = await asyncpg.connect(dsn, server_settings={"search_path": "mediation"})
        try:
            await db.clocks.upsert_calendar_days(conn, rows)
        finally:
            await conn.close()

    asyncio.run(run())
    years = sorted({d.year for d, _, _ in rows})
    click.echo(f"loaded {len(rows)} days for {', '.join(map(str, years))}; clocks use them from the next deadline on")

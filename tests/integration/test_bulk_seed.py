"""`fengqiao seed` (mediation.bulk_seed): the synthetic history the console benchmark runs on.
Every case is visible to its station's staff through row-level security (its case-access row),
its words open with the deployment's keys, and a second run adds nothing."""

from __future__ import annotations

import secrets
from collections import Counter
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from fengqiao.auth import Principal
from fengqiao.cli import main
from fengqiao.db import create_pool, migrate
from fengqiao.pii import PiiCipher, new_key_setting
from mediation import db
from mediation.access import citizen_words
from mediation.app import MIGRATIONS
from mediation.bulk_seed import run_seed, station_codes, tracking_no
from mediation.unit import staff_unit

CASES, STATIONS = 2_000, 3


@pytest.fixture
async def schema(infra):
    name = f"seed_{secrets.token_hex(4)}"
    await migrate(infra.dsn, name, MIGRATIONS)
    yield name
    pool = await create_pool(infra.dsn, name)
    await pool.execute(f"DROP SCHEMA {name} CASCADE")
    await pool.close()


def staff(station: str, suffix: str, role: str) -> Principal:
    return Principal(token_id="test", role=role, station=station, staff_id=f"{station}-{suffix}")


async def test_seed_is_visible_to_each_station_and_never_duplicates(infra, schema):
    cipher = PiiCipher.from_setting(new_key_setting("seed"))
    now = datetime.now(UTC)
    first = await run_seed(infra.dsn, cases=CASES, stations=STATIONS, seed=7, cipher=cipher, schema=schema, now=now)
    assert (first.stations_created, first.staff_created, first.cases_created) == (3, 24, CASES)
    assert len({tracking_no(i) for i in range(CASES)}) == CASES

    pool = await create_pool(infra.dsn, schema)
    try:
        owner = {r["station"]: r["n"] for r in await pool.fetch("SELECT station, count(*) AS n FROM cases GROUP BY 1")}
        assert owner == {code: len(range(n, CASES, STATIONS)) for n, code in enumerate(station_codes(STATIONS))}
        for table in ("case_access", "case_files"):
            assert await pool.fetchval(f"SELECT count(*) FROM {table}") == CASES
        statuses = Counter(dict(await pool.fetch("SELECT status, count(*) FROM cases GROUP BY 1")))
        assert statuses["closed"] > CASES * 0.6 and sum(statuses.values()) - statuses["closed"] > 20
        # every case has its accept and resolve clocks; an open case runs its resolve clock
        assert await pool.fetchval("SELECT count(*) FROM case_clocks WHERE clock IN ('accept', 'resolve')") == 2 * CASES
        assert not await pool.fetchval(
            "SELECT count(*) FROM cases c WHERE c.status IN ('accepted', 'in_progress', 'mediating', 'reopened') "
            "AND NOT EXISTS (SELECT 1 FROM case_clocks k WHERE k.tracking_no = c.tracking_no "
            "AND k.clock = 'resolve' AND k.done_at IS NULL)"
        )

        for code in station_codes(STATIONS):
            async with staff_unit(pool, staff(code, "LD", "leader")) as (conn, _):
                assert await db.cases.count_cases(conn, code, db.cases.CaseQuery()) == owner[code]
            officer = staff(code, "P1", "officer")
            async with staff_unit(pool, officer) as (conn, _):
                mine = await db.cases.list_cases(conn, code, db.cases.CaseQuery(assignee_id=officer.staff_id))
                assert mine and all(r["station"] == code for r in mine)
                assert await db.cases.count_cases(conn, code, db.cases.CaseQuery()) == owner[code]
                other = station_codes(STATIONS)[-1] if code != station_codes(STATIONS)[-1] else station_codes(1)[0]
                assert await db.cases.count_cases(conn, other, db.cases.CaseQuery()) == 0
                no = mine[0]["tracking_no"]
                words = citizen_words(cipher, no, await db.access.case_file(conn, no))
                assert words is not None and words["title"]

        again = await run_seed(infra.dsn, cases=CASES, stations=STATIONS, seed=8, cipher=cipher, schema=schema)
        assert (again.stations_created, again.staff_created, again.cases_created) == (0, 0, 0)
        assert again.cases_existing == CASES
        assert await pool.fetchval("SELECT count(*) FROM cases") == CASES
        assert await pool.fetchval("SELECT count(*) FROM stations WHERE code LIKE 'SY%'") == STATIONS
    finally:
        await pool.close()


def test_seed_refuses_bad_input_naming_the_field():
    result = CliRunner().invoke(main, ["seed", "--cases", "0"])
    assert result.exit_code == 2 and "--cases" in result.output
    result = CliRunner().invoke(main, ["seed", "--cases", "10", "--stations", "abc"])
    assert result.exit_code == 2 and "--stations" in result.output

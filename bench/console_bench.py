"""Console page-time benchmark (`make bench-console`, issue 16). Not part of the test suite.

Starts its own embedded PostgreSQL in .fengqiao/bench-console (kept between runs: a second run
skips the cases already seeded), applies the migrations, seeds a large synthetic history with
`fengqiao seed --cases N --stations M` (default 1,000,000 / 200), starts mediation alone (with an
embedded broker, which it needs to start), signs in an officer and the leader of station SY001
through /login and gives them API tokens, then times each route of ROUTES: sequential requests on
one keep-alive httpx client after a warm-up, p50 / p95 / max. Times are measured by the client on
loopback, so they are the server's time plus well under a millisecond.

Target (issue 16): p95 <= 100 ms for the queue, a search and the case detail.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

from fengqiao.admin import create_token, migrate_all
from fengqiao.devstack import EmbeddedBroker, EmbeddedPostgres, free_port, start_service, stop_process, wait_ready
from fengqiao.pii import new_index_key_setting, new_key_setting

HOME = Path(".fengqiao/bench-console")
STATION = "SY001"
OFFICER, LEADER = f"{STATION}-P1", f"{STATION}-LD"
OPEN = "status=assigned&status=accepted&status=in_progress&status=mediating&status=returned&status=reopened"


@dataclass(frozen=True)
class Route:
    who: str  # "officer" or "leader": whose session cookie / token
    label: str
    path: str  # {mine}: an open case the officer holds; {closed}: an old closed case of the station;
    # {since}/{until}: a month a year ago
    api: bool = False  # sent with the person's bearer token instead of the session cookie


# The pages and their JSON equivalents. Add new console pages here.
ROUTES = [
    Route("officer", "my queue (page)", "/console/"),
    Route("officer", "my queue (API)", f"/api/v1/cases?assignee=me&{OPEN}&limit=100", api=True),
    Route("leader", "station queue (page)", "/console/station"),
    Route("leader", "station open cases (API)", f"/api/v1/cases?{OPEN}&limit=50", api=True),
    Route("leader", "station all cases by deadline (API)", "/api/v1/cases?limit=50", api=True),
    Route("leader", "station overdue (API)", "/api/v1/cases?overdue=true&limit=50", api=True),
    Route("leader", "station page 21 (API)", "/api/v1/cases?limit=50&offset=1000", api=True),
    Route("officer", "search tracking no (page)", "/console/?q={closed}"),
    Route("leader", "station search, tracking no (page)", "/console/station?q={closed}"),
    Route("leader", "station search, words (page)", "/console/station?q=%E5%99%AA%E9%9F%B3%E6%89%B0%E6%B0%91"),
    Route("leader", "station search, phone (page)", "/console/station?q=13800138000"),
    Route("leader", "station, all statuses (page)", "/console/station?status=all"),
    Route(
        "leader",
        "search filters (API)",
        "/api/v1/cases?category=noise&channel=hotline&since={since}&until={until}&sort=-submitted_at",
        api=True,
    ),
    Route("officer", "case detail, open (page)", "/console/cases/{mine}"),
    Route("officer", "case detail, open (API)", "/api/v1/cases/{mine}", api=True),
    Route("leader", "case detail, closed (page)", "/console/cases/{closed}"),
    Route("leader", "case detail, closed (API)", "/api/v1/cases/{closed}", api=True),
]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def secret(path: Path, make: str) -> str:
    if not path.exists():
        path.write_text(make)
        path.chmod(0o600)
    return path.read_text().strip()


async def prepare_people(dsn: str) -> dict[str, dict[str, str]]:
    """A password for the officer and the leader (no forced change) and an API token each."""
    from mediation.signin import set_account

    people: dict[str, dict[str, str]] = {}
    conn = await asyncpg.connect(dsn, server_settings={"search_path": "mediation"})
    try:
        for who, staff_id in (("officer", OFFICER), ("leader", LEADER)):
            password = os.urandom(12).hex()
            async with conn.transaction():
                await set_account(conn, staff_id, staff_id.lower(), password, must_change=False)
            people[who] = {"username": staff_id.lower(), "password": password}
    finally:
        await conn.close()
    for who, staff_id in (("officer", OFFICER), ("leader", LEADER)):
        people[who]["token"] = await create_token(dsn, None, "officer", staff_id, label="bench-console")
    return people


async def sample_cases(dsn: str) -> dict[str, str]:
    conn = await asyncpg.connect(dsn, server_settings={"search_path": "mediation"})
    try:
        mine = await conn.fetchval(
            "SELECT tracking_no FROM cases WHERE assignee_id = $1 "
            "ORDER BY status = 'in_progress' DESC, status NOT IN ('closed', 'voided') DESC, tracking_no LIMIT 1",
            OFFICER,
        )
        closed = await conn.fetchval(
            "SELECT tracking_no FROM cases WHERE station = $1 AND status = 'closed' "
            "ORDER BY submitted_at < now() - interval '1 year' DESC, tracking_no LIMIT 1",
            STATION,
        )
        size = await conn.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
        counts = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM cases) AS cases, (SELECT count(DISTINCT station) FROM cases) AS stations"
        )
    finally:
        await conn.close()
    year_ago = datetime.now(UTC) - timedelta(days=365)
    return {
        "mine": mine,
        "closed": closed,
        "since": year_ago.date().isoformat(),
        "until": (year_ago + timedelta(days=30)).date().isoformat(),
        "db_size": size,
        "cases": str(counts["cases"]),
        "stations": str(counts["stations"]),
    }


def sign_in(client: httpx.Client, username: str, password: str) -> None:
    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, "no CSRF token on /login"
    done = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token.group(1), "next": "/console/"},
    )
    if done.status_code != 303:
        raise SystemExit(f"sign-in of {username} failed: {done.status_code} {done.text[:300]}")


def time_route(client: httpx.Client, path: str, headers: dict[str, str], n: int, warmup: int) -> dict:
    first = client.get(path, headers=headers)
    if first.status_code != 200:
        return {"status": first.status_code}
    for _ in range(warmup):
        client.get(path, headers=headers)
    times = []
    for _ in range(n):
        started = time.perf_counter()
        response = client.get(path, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            return {"status": response.status_code}
    summary = {"p50": pct(times, 0.5), "p95": pct(times, 0.95), "max": max(times)}
    return {"status": 200, **summary, "bytes": len(first.content)}


def rounded(result: dict) -> dict:
    return {k: round(v, 1) if isinstance(v, float) else v for k, v in result.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=int(os.environ.get("CASES") or 1_000_000))
    parser.add_argument("--stations", type=int, default=int(os.environ.get("STATIONS") or 200))
    parser.add_argument("--requests", type=int, default=200, help="timed requests per route")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--clean", action="store_true", help="delete the benchmark database first")
    parser.add_argument("--only", help="comma-separated words: time only routes whose label contains one")
    args = parser.parse_args()

    HOME.mkdir(parents=True, exist_ok=True)
    pii_keys = secret(HOME / "pii-keys", new_key_setting("bench"))
    pg = EmbeddedPostgres(
        HOME / "pg",
        free_port(),
        HOME / "postgres.log",
        settings={"max_wal_size": "4GB", "shared_preload_libraries": "pg_stat_statements"},
    )
    if args.clean:
        pg.clean()
    broker = EmbeddedBroker(free_port(), HOME / "broker.log")
    mediation = None
    try:
        dsn = pg.start()
        asyncio.run(migrate_all(dsn))
        env = {**os.environ, "DATABASE_URL": dsn, "FENGQIAO_PII_KEYS": pii_keys}
        print(f"[bench] seeding {args.cases:,} cases over {args.stations} stations ...", flush=True)
        started = time.monotonic()
        command = [sys.executable, "-m", "fengqiao.cli", "seed"]
        subprocess.run(
            [*command, "--cases", str(args.cases), "--stations", str(args.stations)],
            env=env,
            check=True,
        )
        seed_s = time.monotonic() - started
        people = asyncio.run(prepare_people(dsn))
        sample = asyncio.run(sample_cases(dsn))

        bootstrap = broker.start()
        port = free_port()
        env |= {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "MEDIATION_PORT": str(port),
            "LOG_LEVEL": "WARNING",
            "FENGQIAO_PII_INDEX_KEY": secret(HOME / "pii-index-key", new_index_key_setting()),
            "FENGQIAO_LINK_KEY": secret(HOME / "link-key", new_index_key_setting()),
            "FENGQIAO_COOKIE_SECURE": "false",
            "RATE_LIMIT_LOGIN": "100000/minute",
        }
        mediation = start_service("mediation", env, HOME / "mediation.log")
        url = f"http://127.0.0.1:{port}"
        not_ready = wait_ready({"mediation": url}, 90)
        if not_ready:
            raise SystemExit(f"mediation not ready: {not_ready} (log: {HOME / 'mediation.log'})")

        clients = {}
        for who in ("officer", "leader"):
            clients[who] = httpx.Client(base_url=url, timeout=30)
            sign_in(clients[who], people[who]["username"], people[who]["password"])
        wanted = [w.strip() for w in args.only.split(",")] if args.only else None
        results = {}
        for route in ROUTES:
            if wanted and not any(w in route.label for w in wanted):
                continue
            path = route.path.format(**sample)
            headers = {"Authorization": f"Bearer {people[route.who]['token']}"} if route.api else {}
            # an API request carries the token alone, no session cookie
            client = httpx.Client(base_url=url, timeout=30) if route.api else clients[route.who]
            results[route.label] = time_route(client, path, headers, args.requests, args.warmup)
            if route.api:
                client.close()
            r = results[route.label]
            line = (
                f"p50 {r['p50']:7.1f} ms  p95 {r['p95']:7.1f} ms  max {r['max']:7.1f} ms"
                if r["status"] == 200
                else f"HTTP {r['status']}" + (" (not built on this branch?)" if r["status"] == 404 else "")
            )
            print(f"[bench] {route.label:<38} {line}", flush=True)
        for c in clients.values():
            c.close()
        report = {
            "when": datetime.now(UTC).isoformat(),
            "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "load_average": os.getloadavg()},
            "cases": int(sample["cases"]),
            "stations": int(sample["stations"]),
            "seed_seconds": round(seed_s, 1),
            "db_size": sample["db_size"],
            "requests_per_route": args.requests,
            "routes": {label: rounded(r) for label, r in results.items()},
        }
        out = Path("bench-results")
        out.mkdir(exist_ok=True)
        path = out / f"console-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
        path.write_text(json.dumps(report, indent=2))
        print(f"[bench] {sample['cases']} cases, {sample['stations']} stations, seed {seed_s:.0f} s")
        print(f"[bench] database size {sample['db_size']}; load average {os.getloadavg()}")
        print(f"[bench] written to {path}")
    finally:
        stop_process(mediation)
        broker.stop()
        pg.stop()


if __name__ == "__main__":
    main()

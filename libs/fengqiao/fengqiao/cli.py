"""The `fengqiao` command: dev, serve, migrate, token create, publish."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from fengqiao.devstack import SERVICES
from fengqiao.settings import Settings

STATION_TZ = ZoneInfo("Asia/Shanghai")
STATE_FILE = "dev-stack.json"


def _service_migrations(name: str) -> Path:
    return importlib.import_module(f"{name}.app").MIGRATIONS


def _connection_from_state(settings: Settings) -> tuple[str | None, str | None]:
    """DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS, else those of a running `fengqiao dev`."""
    dsn, bootstrap = settings.database_url, settings.kafka_bootstrap_servers
    state = settings.fengqiao_home / STATE_FILE
    if (not dsn or not bootstrap) and state.exists():
        doc = json.loads(state.read_text())
        dsn = dsn or doc.get("database_url")
        bootstrap = bootstrap or doc.get("kafka_bootstrap_servers")
    return dsn, bootstrap


@click.group()
def main() -> None:
    """Fengqiao (枫桥): feedback, triage, mediation and follow-up for grassroots police stations."""


# -- serve / migrate ------------------------------------------------------------------------------


@main.command()
@click.argument("service", type=click.Choice(SERVICES))
def serve(service: str) -> None:
    """Run one service in the foreground (what a container runs)."""
    import uvicorn

    settings = Settings()
    settings.require_infrastructure()
    app = importlib.import_module(f"{service}.app").create_app(settings)
    uvicorn.run(app, host=settings.bind_host, port=settings.service_port(service), log_config=None,
                access_log=False, timeout_graceful_shutdown=int(settings.handler_timeout_s) + 5)


async def _migrate_all(dsn: str, services: tuple[str, ...]) -> dict[str, list[str]]:
    from fengqiao.db import ensure_database, migrate

    await ensure_database(dsn)
    return {name: await migrate(dsn, name, _service_migrations(name)) for name in services}


@main.command("migrate")
@click.argument("services", nargs=-1, type=click.Choice(SERVICES))
def migrate_cmd(services: tuple[str, ...]) -> None:
    """Apply pending migrations (all services unless named)."""
    dsn, _ = _connection_from_state(Settings())
    if not dsn:
        raise click.ClickException("set DATABASE_URL, or start `fengqiao dev` first")
    for name, applied in asyncio.run(_migrate_all(dsn, services or SERVICES)).items():
        click.echo(f"{name}: {len(applied)} migration(s) applied" + (f" ({', '.join(applied)})" if applied else ""))


@main.group()
def topics() -> None:
    """Kafka topics of the platform."""


@topics.command("create")
def topics_create() -> None:
    """Create every topic the platform uses (existing ones are left alone)."""
    from fengqiao.events import Topics
    from fengqiao.kafka import create_topics

    settings = Settings()
    _, bootstrap = _connection_from_state(settings)
    if not bootstrap:
        raise click.ClickException("set KAFKA_BOOTSTRAP_SERVERS, or start `fengqiao dev` first")
    created = asyncio.run(create_topics(bootstrap, Topics.all(), partitions=settings.kafka_topic_partitions,
                                        replication=settings.kafka_replication_factor,
                                        compacted=frozenset({Topics.DIRECTORY})))
    click.echo(f"{len(created)} topic(s) created" + (f": {', '.join(created)}" if created else ""))


# -- token ----------------------------------------------------------------------------------------


@main.group()
def token() -> None:
    """API tokens for staff and other bureau systems."""


async def _create_token(dsn: str, station: str | None, role: str, staff_id: str | None) -> str:
    import secrets

    import asyncpg

    from fengqiao.directory import DirectoryWriter
    from fengqiao.outbox import Outbox

    conn = await asyncpg.connect(dsn, server_settings={"search_path": "mediation"})
    try:
        async with conn.transaction():
            if station and not await conn.fetchval("SELECT true FROM stations WHERE code = $1", station):
                raise click.ClickException(f"unknown station {station!r}")
            outbox = Outbox(conn)
            value = await DirectoryWriter(conn, outbox).issue_token(
                token_id=f"cli:{secrets.token_hex(6)}", role=role, station=station, staff_id=staff_id)
            await outbox.flush()
        return value
    finally:
        await conn.close()


@token.command("create")
@click.option("--station", help="station code; required for station roles")
@click.option("--role", required=True, type=click.Choice(
    ["officer", "mediator", "instructor", "leader", "bureau", "admin", "integration"]))
@click.option("--staff-id", help="the staff member the token belongs to (optional)")
def token_create(station: str | None, role: str, staff_id: str | None) -> None:
    """Create a token; it is printed once, alone on the last line."""
    from fengqiao.auth import STATION_ROLES

    if role in STATION_ROLES and not station:
        raise click.ClickException(f"--station is required for role {role}")
    dsn, _ = _connection_from_state(Settings())
    if not dsn:
        raise click.ClickException("set DATABASE_URL, or start `fengqiao dev` first")
    value = asyncio.run(_create_token(dsn, station, role, staff_id))
    click.echo(f"created a {role} token" + (f" for station {station}" if station else "")
               + "; services accept it within seconds (directory event). Keep it secret:", err=True)
    click.echo(value)


@main.command("keys")
def keys() -> None:
    """Print new secrets for a deployment (FENGQIAO_PII_KEYS, FENGQIAO_PII_INDEX_KEY,
    FENGQIAO_LINK_KEY) as environment lines. Keep them apart from database backups."""
    from fengqiao.pii import new_index_key_setting, new_key_setting

    click.echo(f"FENGQIAO_PII_KEYS={new_key_setting('k1')}")
    click.echo(f"FENGQIAO_PII_INDEX_KEY={new_index_key_setting()}")
    click.echo(f"FENGQIAO_LINK_KEY={new_index_key_setting()}")


# -- publish --------------------------------------------------------------------------------------


async def _publish(bootstrap: str, lines: list[str], validate: bool) -> tuple[int, list[str]]:
    from aiokafka import AIOKafkaProducer
    from tqdm import tqdm

    from fengqiao.events import CONTENT_TYPE, PoisonMessage, Topics, parse_event

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=5)
    await producer.start()
    sent, problems, futures = 0, [], []
    try:
        for number, line in enumerate(tqdm(lines, unit="event", desc="publishing"), start=1):
            raw = line.strip().encode()
            key = None
            if validate:
                try:
                    event = parse_event(raw)
                    event.payload()
                    key = (event.data.get("external_ref") or event.id).encode()
                except PoisonMessage as exc:
                    problems.append(f"line {number}: {exc}")
                    continue
            futures.append(await producer.send(Topics.SUBMISSIONS, value=raw, key=key,
                                               headers=[("content-type", CONTENT_TYPE.encode())]))
            sent += 1
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return sent, problems


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--no-validate", is_flag=True, help="send lines as they are (invalid ones end in the DLQ)")
def publish(file: Path, no_validate: bool) -> None:
    """Publish CloudEvents from a JSON-lines FILE to the ingress topic, as another bureau system would."""
    _, bootstrap = _connection_from_state(Settings())
    if not bootstrap:
        raise click.ClickException("set KAFKA_BOOTSTRAP_SERVERS, or start `fengqiao dev` first")
    lines = [line for line in file.read_text("utf-8").splitlines() if line.strip()]
    sent, problems = asyncio.run(_publish(bootstrap, lines, validate=not no_validate))
    for problem in problems:
        click.echo(problem, err=True)
    click.echo(f"published {sent} event(s); skipped {len(problems)} invalid line(s)")
    if problems:
        sys.exit(1)


# -- dev ------------------------------------------------------------------------------------------


async def _seed(dsn: str) -> list[dict]:
    import asyncpg

    from fengqiao.directory import DirectoryWriter
    from fengqiao.outbox import Outbox
    from mediation.seed import seed_demo

    conn = await asyncpg.connect(dsn, server_settings={"search_path": "mediation"})
    try:
        async with conn.transaction():
            outbox = Outbox(conn)
            credentials = await seed_demo(DirectoryWriter(conn, outbox), datetime.now(STATION_TZ).date())
            await outbox.flush()
        return credentials
    finally:
        await conn.close()


class Supervisor:
    """Runs each service as its own process and restarts one that dies, with backoff."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen] = {}
        self.restarts: dict[str, int] = {}
        self.next_start: dict[str, float] = {}

    def start(self, name: str) -> None:
        from fengqiao.devstack import start_service

        self.procs[name] = start_service(name, self.env, self.log_dir / f"{name}.log")

    def check(self) -> None:
        now = time.monotonic()
        for name, proc in list(self.procs.items()):
            if proc.poll() is None:
                continue
            if name not in self.next_start:
                count = self.restarts.get(name, 0) + 1
                self.restarts[name] = count
                delay = min(30.0, 0.5 * 2 ** (count - 1))
                self.next_start[name] = now + delay
                click.secho(f"[dev] {name} exited with code {proc.returncode}; restarting in {delay:.1f}s "
                            f"(restart #{count}; log: {self.log_dir / (name + '.log')})", fg="yellow", err=True)
            elif now >= self.next_start[name]:
                del self.next_start[name]
                self.start(name)
                click.secho(f"[dev] {name} restarted", fg="yellow", err=True)

    def stop_all(self) -> None:
        from fengqiao.devstack import stop_process

        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            stop_process(proc, signal.SIGTERM, timeout=20)


@main.command()
@click.option("--clean", is_flag=True, help="delete the embedded database first and start from nothing")
@click.option("--no-seed", is_flag=True, help="do not (re)seed the demo deployment")
def dev(clean: bool, no_seed: bool) -> None:
    """Start the whole stack locally (what `make run` runs); Ctrl-C stops everything."""
    from fengqiao.devstack import EmbeddedBroker, EmbeddedPostgres, wait_ready
    from fengqiao.events import Topics
    from fengqiao.kafka import create_topics

    from fengqiao.logging import configure_logging

    settings = Settings()
    configure_logging("dev", settings.log_level, "console")
    home = settings.fengqiao_home.resolve()
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    pg = broker = None
    supervisor: Supervisor | None = None
    outbox = None
    stopping = False

    def _stop(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        dsn = settings.database_url
        if not dsn:
            pg = EmbeddedPostgres(home / "pg", settings.embedded_pg_port, logs / "postgres.log")
            if clean:
                pg.clean()
                click.echo("[dev] removed the embedded database (--clean)")
            click.echo(f"[dev] starting embedded PostgreSQL on 127.0.0.1:{settings.embedded_pg_port} (data: {pg.data_dir})")
            dsn = pg.start()
        bootstrap = settings.kafka_bootstrap_servers
        if not bootstrap:
            broker = EmbeddedBroker(settings.broker_port, logs / "broker.log")
            click.echo(f"[dev] starting embedded Kafka broker (Tansu, memory only) on 127.0.0.1:{settings.broker_port}")
            bootstrap = broker.start()
        created = asyncio.run(create_topics(bootstrap, Topics.all(), partitions=settings.kafka_topic_partitions,
                                            replication=settings.kafka_replication_factor,
                                            compacted=frozenset({Topics.DIRECTORY})))
        click.echo(f"[dev] topics ready ({len(created)} created)")
        for name, applied in asyncio.run(_migrate_all(dsn, SERVICES)).items():
            click.echo(f"[dev] {name}: {len(applied)} migration(s) applied")
        (home / STATE_FILE).write_text(json.dumps({"database_url": dsn, "kafka_bootstrap_servers": bootstrap,
                                                   "pid": os.getpid()}))
        credentials: list[dict] = []
        if not no_seed:
            credentials = asyncio.run(_seed(dsn))
            creds_file = home / "dev-credentials.json"
            creds_file.write_text(json.dumps({"generated_at": datetime.now(STATION_TZ).isoformat(),
                                              "accounts": credentials}, ensure_ascii=False, indent=2))
            creds_file.chmod(0o600)

        env = {**os.environ, "DATABASE_URL": dsn, "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
               "FENGQIAO_PII_KEYS": _dev_secret(settings.pii_keys, home / "pii-keys", "dev1"),
               "FENGQIAO_PII_INDEX_KEY": _dev_secret(settings.pii_index_key, home / "pii-index-key", None),
               "FENGQIAO_LINK_KEY": _dev_secret(settings.link_key, home / "link-key", None)}
        if not (os.environ.get("SMS_GATEWAY_URL") or os.environ.get("NOTIFY_SMTP_HOST")):
            from fengqiao.devoutbox import DevOutbox

            outbox = DevOutbox(home / "outbox")
            env.update(outbox.start())
            click.echo(f"[dev] citizens' SMS and e-mail are written to {outbox.folder} (no real gateway)")
        supervisor = Supervisor(env, logs)
        for name in SERVICES:
            supervisor.start(name)
        urls = {name: f"http://127.0.0.1:{settings.service_port(name)}" for name in SERVICES}
        not_ready = wait_ready(urls, timeout=90)
        for name, why in not_ready.items():
            click.secho(f"[dev] {name} is not ready yet: {why[:200]} (log: {logs / (name + '.log')})", fg="red", err=True)
        _print_banner(urls, credentials, home, logs)
        while not stopping:
            supervisor.check()
            for what, proc in (("PostgreSQL", pg and pg.proc), ("Kafka broker", broker and broker.proc)):
                if proc is not None and proc.poll() is not None:
                    click.secho(f"[dev] the embedded {what} exited (code {proc.returncode}); stopping", fg="red", err=True)
                    stopping = True
            time.sleep(0.5)
        click.echo("\n[dev] stopping…")
    finally:
        if supervisor is not None:
            supervisor.stop_all()
        if outbox is not None:
            outbox.stop()
        if broker is not None:
            broker.stop()
        if pg is not None:
            pg.stop()
        (home / STATE_FILE).unlink(missing_ok=True)
        click.echo("[dev] stopped")


def _dev_secret(configured, path: Path, kid: str | None) -> str:
    """The configured key, else a development key kept in .fengqiao/ (created once; losing it makes
    the personal data of the dev database unreadable)."""
    if configured:
        return configured.get_secret_value()
    from fengqiao.pii import new_index_key_setting, new_key_setting

    if not path.exists():
        path.write_text(new_key_setting(kid) if kid else new_index_key_setting())
        path.chmod(0o600)
        click.echo(f"[dev] created a development key: {path}")
    return path.read_text().strip()


def _print_banner(urls: dict[str, str], credentials: list[dict], home: Path, logs: Path) -> None:
    width = shutil.get_terminal_size((100, 20)).columns
    click.echo("=" * min(width, 100))
    click.secho("枫桥 Fengqiao dev stack is running", bold=True)
    labels = {"intake": "public web + API", "mediation": "staff console", "triage": "triage", "notify": "notify"}
    for name, url in urls.items():
        click.echo(f"  {name:<10} {url:<28} {labels[name]}  (health {url}/readyz, metrics {url}/metrics)")
    click.echo(f"  API docs   {urls['intake']}/docs")
    if credentials:
        click.echo("Demo accounts (Authorization: Bearer <token>):")
        for c in credentials:
            click.echo(f"  {c['station'] or '-':<5} {c['role']:<11} {c['name']:<8} {c['token']}")
        click.echo(f"  (also in {home / 'dev-credentials.json'})")
    click.echo(f"Logs: {logs}")
    click.echo("Try:  curl -s -X POST " + urls["intake"] + "/api/v1/feedback -H 'content-type: application/json' "
               "-d '{\"station\":\"KZ01\",\"content\":\"楼上邻居每天深夜噪音扰民，协商无果\"}'")
    click.echo("Press Ctrl-C to stop everything.")
    click.echo("=" * min(width, 100))


def _add_service_commands() -> None:
    """Services contribute their own command groups (e.g. `fengqiao triage`) through the
    `fengqiao.commands` entry point group, so the platform never imports a service to start."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="fengqiao.commands"):
        try:
            main.add_command(ep.load(), ep.name)
        except ImportError as exc:  # a service not installed in this environment
            click.echo(f"warning: command group {ep.name!r} unavailable: {exc}", err=True)


_add_service_commands()

if __name__ == "__main__":
    main()

"""The `fengqiao` command: dev, serve, migrate, token create, publish."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from fengqiao.devrun import STATE_FILE
from fengqiao.settings import Settings

if TYPE_CHECKING:
    from fengqiao.events import Role  # the --role choices


def _installed_services(
    _ctx: click.Context, _param: click.Parameter, value: str | tuple[str, ...]
) -> str | tuple[str, ...]:
    """Checks service names against the registry when the command runs (loading every service's
    entry point at import would slow every `fengqiao` command)."""
    from fengqiao.registry import service_names

    known = service_names()
    for name in (value,) if isinstance(value, str) else value:
        if name not in known:
            raise click.BadParameter(f"{name!r} is not an installed service (one of: {', '.join(known)})")
    return value


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
@click.argument("service", callback=_installed_services)
def serve(service: str) -> None:
    """Run one installed SERVICE in the foreground (what a container runs)."""
    import uvicorn

    from fengqiao.registry import service as registered

    settings = Settings()
    settings.require_infrastructure()
    descriptor = registered(service)
    uvicorn.run(
        descriptor.create_app(settings),
        host=settings.bind_host,
        port=descriptor.port(settings),
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.handler_timeout_s) + 5,
    )


@main.command("migrate")
@click.argument("services", nargs=-1, callback=_installed_services)
def migrate_cmd(services: tuple[str, ...]) -> None:
    """Apply pending migrations (all installed services unless named)."""
    from fengqiao.admin import migrate_all

    dsn, _ = _connection_from_state(Settings())
    if not dsn:
        raise click.ClickException("set DATABASE_URL, or start `fengqiao dev` first")
    for name, applied in asyncio.run(migrate_all(dsn, services)).items():
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
    created = asyncio.run(
        create_topics(
            bootstrap,
            Topics.all(),
            partitions=settings.kafka_topic_partitions,
            replication=settings.kafka_replication_factor,
            compacted=frozenset({Topics.DIRECTORY}),
        )
    )
    click.echo(f"{len(created)} topic(s) created" + (f": {', '.join(created)}" if created else ""))


# -- token ----------------------------------------------------------------------------------------


@main.group()
def token() -> None:
    """API tokens for staff and other bureau systems."""


@token.command("create")
@click.option("--station", help="station code; required for station roles without --staff-id")
@click.option(
    "--role",
    type=click.Choice(["officer", "mediator", "instructor", "leader", "bureau", "admin", "integration"]),
    help="required unless --staff-id is given (a person's token takes their current role)",
)
@click.option(
    "--staff-id",
    help="the staff member the token belongs to: it acts as them, while they are active (a station role's "
    "token without one files items but opens no case)",
)
@click.option(
    "--expires-days",
    type=click.IntRange(1, 730),
    default=365,
    show_default=True,
    help="days until the token stops working",
)
@click.option("--label", help="what the token is for, e.g. the bureau system that uses it")
def token_create(
    station: str | None, role: Role | None, staff_id: str | None, expires_days: int, label: str | None
) -> None:
    """Create a token; it is printed once, alone on the last line."""
    from fengqiao.admin import UnknownStaff, UnknownStation, create_token
    from fengqiao.auth import STATION_ROLES

    if not staff_id and not role:
        raise click.ClickException("--role is required without --staff-id")
    if not staff_id and role in STATION_ROLES and not station:
        raise click.ClickException(f"--station is required for role {role}")
    dsn, _ = _connection_from_state(Settings())
    if not dsn:
        raise click.ClickException("set DATABASE_URL, or start `fengqiao dev` first")
    expires_at = datetime.now(UTC) + timedelta(days=expires_days)
    try:
        value = asyncio.run(create_token(dsn, station, role or "officer", staff_id, expires_at=expires_at, label=label))
    except UnknownStation:
        raise click.ClickException(f"unknown station {station!r}") from None
    except UnknownStaff:
        raise click.ClickException(f"no active staff member {staff_id!r}") from None
    click.echo(
        f"created a token, valid until {expires_at:%Y-%m-%d}"
        + (f", for {staff_id}" if staff_id else f", role {role}")
        + (f" of station {station}" if station and not staff_id else "")
        + "; services accept it within seconds (directory event). Keep it secret:",
        err=True,
    )
    if not staff_id and role in STATION_ROLES:
        # Exclusions from a case (a complaint naming an officer) are by person: a token that is
        # nobody's files items for the station but opens no case (DESIGN 4.1 keeps the command).
        click.echo("note: a station token without --staff-id files items but opens no case or item", err=True)
    click.echo(value)


@token.command("revoke")
@click.argument("token_or_id")
def token_revoke(token_or_id: str) -> None:
    """Revoke a token, given by its id (see `token list`) or its value; every service refuses it
    as soon as the directory event arrives (normally within a second)."""
    from fengqiao.admin import revoke_token

    dsn, _ = _connection_from_state(Settings())
    if not dsn:
        raise click.ClickException("set DATABASE_URL, or start `fengqiao dev` first")
    token_id = asyncio.run(revoke_token(dsn, token_or_id.strip()))
    if token_id is None:
        raise click.ClickException("no such live token (unknown, or already revoked)")
    click.echo(f"revoked {token_id}")


@token.command("list")
def token_list() -> None:
    """Tokens with their owner, expiry, revocation and last use (never the secret)."""
    from fengqiao.admin import list_tokens

    dsn, _ = _connection_from_state(Settings())
    if not dsn:
        raise click.ClickException("set DATABASE_URL, or start `fengqiao dev` first")

    def when(value: datetime | None) -> str:
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value else "-"

    for t in asyncio.run(list_tokens(dsn)):
        state = (
            "revoked"
            if t["revoked"]
            else ("expired" if t["expires_at"] and t["expires_at"] < datetime.now(UTC) else "live")
        )
        click.echo(
            f"{t['token_id']}\t{t['role']}\t{t['station'] or '-'}\t{t['staff_id'] or '-'}\t{state}\t"
            f"expires {when(t['expires_at'])}\tlast used {when(t['last_used_at'])}\t{t['label'] or ''}"
        )


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
                    event.validated_data()
                    key = (event.data.get("external_ref") or event.id).encode()
                except PoisonMessage as exc:
                    problems.append(f"line {number}: {exc}")
                    continue
            futures.append(
                await producer.send(
                    Topics.SUBMISSIONS, value=raw, key=key, headers=[("content-type", CONTENT_TYPE.encode())]
                )
            )
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


@main.command()
@click.option("--clean", is_flag=True, help="delete the embedded database first and start from nothing")
@click.option("--no-seed", is_flag=True, help="do not (re)seed the demo deployment")
def dev(clean: bool, no_seed: bool) -> None:
    """Start the whole stack locally (what `make run` runs); Ctrl-C stops everything."""
    from fengqiao.devrun import DevStack
    from fengqiao.logging import configure_logging

    settings = Settings()
    configure_logging("dev", settings.log_level, "console")
    stack = DevStack(settings, clean=clean, seed=not no_seed)
    signal.signal(signal.SIGINT, stack.request_stop)
    signal.signal(signal.SIGTERM, stack.request_stop)
    try:
        stack.start()
        stack.watch()
    finally:
        stack.stop()


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

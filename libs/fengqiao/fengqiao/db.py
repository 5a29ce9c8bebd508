"""asyncpg pool creation and the migrations runner.

Each service owns one PostgreSQL schema. Its connections run with `search_path` set to that
schema, so its SQL is written unqualified and the platform's own tables (inbox, outbox,
directory read model) are created inside every service's schema from the same files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import asyncpg
import structlog

log = structlog.get_logger(__name__)

_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_MIGRATION_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
PLATFORM_MIGRATIONS = resources.files("fengqiao") / "migrations"


def _check_schema(schema: str) -> str:
    if not _SCHEMA_RE.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    return schema


async def _no_session_state(conn: asyncpg.Connection) -> None:
    return None


async def create_pool(
    dsn: str, schema: str, *, min_size: int = 1, max_size: int = 10, application_name: str | None = None
) -> asyncpg.Pool:
    """One pool per process, created in the lifespan."""
    _check_schema(schema)
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=30,
        timeout=5,  # connecting: fail fast while the database is down
        # Our code leaves no session state behind (no SET, LISTEN or session advisory locks on
        # pooled connections), so skip asyncpg's RESET ALL round trip on every release.
        reset=_no_session_state,
        server_settings={"search_path": schema, "application_name": application_name or schema},
    )


@dataclass(frozen=True)
class Migration:
    version: str  # "platform/0001_inbox_outbox" or "service/0001_submissions"
    sql: str


def discover_migrations(service_dir: Path | None) -> list[Migration]:
    found: list[Migration] = []
    for entry in sorted(PLATFORM_MIGRATIONS.iterdir(), key=lambda p: p.name):
        if _MIGRATION_RE.match(entry.name):
            found.append(Migration(f"platform/{entry.name[:-4]}", entry.read_text("utf-8")))
    if service_dir is not None:
        for path in sorted(service_dir.glob("*.sql")):
            if not _MIGRATION_RE.match(path.name):
                raise ValueError(f"migration file {path.name} does not match NNNN_name.sql")
            found.append(Migration(f"service/{path.stem}", path.read_text("utf-8")))
    return found


async def migrate(dsn: str, schema: str, service_dir: Path | None) -> list[str]:
    """Apply pending migrations of one schema, each in its own transaction. Safe to run
    concurrently from several replicas: an advisory lock serialises them."""
    _check_schema(schema)
    conn = await asyncpg.connect(dsn)
    applied_now: list[str] = []
    try:
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await conn.execute(f"SET search_path TO {schema}")
        await conn.execute("SELECT pg_advisory_lock(hashtext('fengqiao-migrate:' || $1))", schema)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for migration in discover_migrations(service_dir):
                if migration.version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", migration.version)
                applied_now.append(migration.version)
                log.info("migration_applied", schema=schema, version=migration.version)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtext('fengqiao-migrate:' || $1))", schema)
    finally:
        await conn.close()
    return applied_now


async def ensure_database(dsn: str) -> None:
    """Create the database named in `dsn` if it does not exist (dev stack and tests)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(dsn)
    dbname = parts.path.lstrip("/") or "postgres"
    admin = urlunsplit(parts._replace(path="/postgres"))
    conn = await asyncpg.connect(admin)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", dbname)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{dbname}"')
    finally:
        await conn.close()

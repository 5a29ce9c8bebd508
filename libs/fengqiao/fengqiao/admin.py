"""Deployment operations shared by the `fengqiao` command and the test suite: apply every
service's migrations, seed the demo directory, issue an API token. Services come from the
registry (`fengqiao.registry`); the directory lives in the schema of the service that owns it."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from fengqiao.auth import TOKEN_PREFIX, hash_token
from fengqiao.db import ensure_database, migrate
from fengqiao.directory import DirectoryWriter
from fengqiao.events import Role
from fengqiao.outbox import Outbox
from fengqiao.registry import directory_owner, registered_services, service

STATION_TZ = ZoneInfo("Asia/Shanghai")  # the demo's "today", and when its credentials were made


class UnknownStation(LookupError):
    pass


async def migrate_all(dsn: str, names: Iterable[str] = ()) -> dict[str, list[str]]:
    """Apply pending migrations of the named services (all installed ones if none): name -> applied."""
    await ensure_database(dsn)
    chosen = [service(name) for name in names] or list(registered_services())
    return {d.name: await migrate(dsn, d.name, d.migrations_dir) for d in chosen}


@asynccontextmanager
async def directory_writer(dsn: str) -> AsyncIterator[DirectoryWriter]:
    """A writer on the directory owner's schema, in one transaction with its outbox."""
    conn = await asyncpg.connect(dsn, server_settings={"search_path": directory_owner().name})
    try:
        async with conn.transaction():
            outbox = Outbox(conn)
            yield DirectoryWriter(conn, outbox)
            await outbox.flush()
    finally:
        await conn.close()


async def seed_demo(dsn: str) -> list[dict[str, Any]]:
    """(Re)seed the demo deployment through the directory owner's seed; returns the accounts."""
    seed = directory_owner().demo_seed
    if seed is None:
        return []
    async with directory_writer(dsn) as writer:
        return await seed(writer, datetime.now(STATION_TZ).date())


class UnknownStaff(LookupError):
    pass


async def create_token(
    dsn: str,
    station: str | None,
    role: Role,
    staff_id: str | None,
    *,
    expires_at: datetime | None = None,
    label: str | None = None,
) -> str:
    """Issue a token (announced to every service as a directory event); returns its plaintext.
    A staff member's token takes their station and role from the directory."""
    async with directory_writer(dsn) as writer:
        if staff_id:
            person = await writer.conn.fetchrow("SELECT station, role, active FROM staff WHERE staff_id = $1", staff_id)
            if person is None or not person["active"]:
                raise UnknownStaff(staff_id)
            station, role = person["station"], person["role"]
        elif station and not await writer.conn.fetchval("SELECT true FROM stations WHERE code = $1", station):
            raise UnknownStation(station)
        return await writer.issue_token(
            token_id=f"cli:{secrets.token_hex(6)}",
            role=role,
            station=station,
            staff_id=staff_id,
            expires_at=expires_at,
            label=label,
        )


async def revoke_token(dsn: str, token_or_id: str) -> str | None:
    """Revoke a token given by its id or its plaintext; returns the id, None if there is no such live token."""
    async with directory_writer(dsn) as writer:
        token_id = token_or_id
        if token_or_id.startswith(TOKEN_PREFIX):
            token_id = await writer.conn.fetchval(
                "SELECT token_id FROM api_tokens WHERE token_hash = $1", hash_token(token_or_id)
            )
        if token_id and await writer.revoke_token(token_id):
            return str(token_id)
        return None


async def list_tokens(dsn: str) -> list[dict[str, Any]]:
    """Every token with its state (never the secret or its hash)."""
    conn = await asyncpg.connect(dsn, server_settings={"search_path": directory_owner().name})
    try:
        rows = await conn.fetch(
            "SELECT token_id, role, station, staff_id, label, issued_at, expires_at, revoked, revoked_at, last_used_at "
            "FROM api_tokens ORDER BY station NULLS FIRST, token_id"
        )
    finally:
        await conn.close()
    return [dict(r) for r in rows]

"""Helpers of the integration tests: a service's schema in the test database, fresh per test."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from fengqiao.db import create_pool, migrate


@asynccontextmanager
async def service_schema(dsn: str, prefix: str, migrations: Path) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a new schema with the service's migrations and the two demo stations; dropped after."""
    schema = f"{prefix}_{secrets.token_hex(4)}"
    await migrate(dsn, schema, migrations)
    pool = await create_pool(dsn, schema)
    await pool.execute("INSERT INTO stations (code, name) VALUES ('KZ01', '矿区派出所'), ('KZ02', '新村派出所')")
    try:
        yield pool
    finally:
        await pool.execute(f"DROP SCHEMA {schema} CASCADE")
        await pool.close()

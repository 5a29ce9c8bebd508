"""Rows stored before encryption existed are sealed by intake's startup job."""

from __future__ import annotations

import json
import secrets
from types import SimpleNamespace
from urllib.parse import urlsplit, urlunsplit

from fengqiao.db import create_pool, ensure_database, migrate
from fengqiao.pii import PiiCipher, Sealed, new_key_setting
from intake.app import MIGRATIONS, seal_legacy_rows


async def test_legacy_plaintext_rows_are_encrypted_and_still_readable(infra):
    dsn = urlunsplit(urlsplit(infra.dsn)._replace(path=f"/legacy_{secrets.token_hex(4)}"))
    await ensure_database(dsn)
    await migrate(dsn, "intake", MIGRATIONS)
    pool = await create_pool(dsn, "intake")
    try:
        for i in range(250):  # more than one batch of the job
            await pool.execute(
                "INSERT INTO submissions "
                "(tracking_no, station, channel, content, reporter, location, access_code_hash) "
                "VALUES ($1, 'KZ01', 'web', 'x', $2::jsonb, $3::jsonb, 'h')",
                f"FQLEGACY{i:03d}",
                json.dumps({"name": "王五", "phone": "+8613800138000", "anonymous": False}),
                json.dumps({"address": "矿山路 1 号"}),
            )
        cipher = PiiCipher.from_setting(new_key_setting("k9"))
        await seal_legacy_rows(cipher)(SimpleNamespace(pool=pool))

        assert (
            await pool.fetchval("SELECT count(*) FROM submissions WHERE reporter IS NOT NULL OR location IS NOT NULL")
            == 0
        )
        row = await pool.fetchrow(
            "SELECT pii_kid, reporter_enc, location_enc FROM submissions WHERE tracking_no = 'FQLEGACY007'"
        )
        assert row["pii_kid"] == "k9" and "王五".encode() not in row["reporter_enc"]
        reporter = cipher.open_json(Sealed(row["pii_kid"], row["reporter_enc"]), context="FQLEGACY007/reporter")
        assert reporter == {"name": "王五", "phone": "+8613800138000", "email": ""}
        location = cipher.open_json(Sealed(row["pii_kid"], row["location_enc"]), context="FQLEGACY007/location")
        assert location == {"address": "矿山路 1 号"}
    finally:
        await pool.close()

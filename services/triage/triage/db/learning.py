"""Triage's SQL of what it learns from: station rules, model versions and artifacts, staff corrections."""

from __future__ import annotations

import json
from datetime import datetime

import asyncpg

from triage.rules import Rule

# -- rules, models, examples --------------------------------------------------------------------


async def deployment_rules(conn: asyncpg.Connection) -> list[Rule]:
    rows = await conn.fetch(
        "SELECT rule_id, station, field, value, pattern, is_regex, weight FROM rules WHERE active ORDER BY rule_id"
    )
    return [
        Rule(r["field"], r["value"], r["pattern"], r["is_regex"], r["weight"], r["station"], str(r["rule_id"]))
        for r in rows
    ]


async def add_rule(conn: asyncpg.Connection, rule: Rule, created_by: str | None) -> int:
    return await conn.fetchval(
        "INSERT INTO rules (station, field, value, pattern, is_regex, weight, created_by) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING rule_id",
        rule.station,
        rule.field,
        rule.value,
        rule.pattern,
        rule.is_regex,
        rule.weight,
        created_by,
    )


async def rule_slot_free(conn: asyncpg.Connection, station: str | None, limit: int) -> bool:
    """Room for one more active rule of this station (None: the deployment-wide rules);
    serialised per station so two concurrent requests cannot both take the last slot."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"rules:{station or '*'}")
    n = await conn.fetchval("SELECT count(*) FROM rules WHERE active AND station IS NOT DISTINCT FROM $1", station)
    return n < limit


async def active_regex_patterns(conn: asyncpg.Connection, station: str | None) -> list[str]:
    rows = await conn.fetch(
        "SELECT pattern FROM rules WHERE active AND is_regex AND station IS NOT DISTINCT FROM $1", station
    )
    return [r["pattern"] for r in rows]


async def list_rules(conn: asyncpg.Connection, station: str | None) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT rule_id, station, field, value, pattern, is_regex, weight, created_by, created_at FROM rules "
        "WHERE active AND ($1::text IS NULL OR station IS NULL OR station = $1) ORDER BY rule_id",
        station,
    )


async def deactivate_rule(conn: asyncpg.Connection, rule_id: int, station: str | None) -> bool:
    done = await conn.execute(
        "UPDATE rules SET active = false WHERE rule_id = $1 AND active AND ($2::text IS NULL OR station = $2)",
        rule_id,
        station,
    )
    return done.endswith(" 1")


async def active_model_version(conn: asyncpg.Connection) -> str | None:
    return await conn.fetchval("SELECT version FROM models WHERE active")


async def model_artifact(conn: asyncpg.Connection, version: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT version, artifact, sha256, signature FROM models WHERE version = $1", version)


async def model_signed(conn: asyncpg.Connection, version: str) -> bool:
    return bool(await conn.fetchval("SELECT signature IS NOT NULL FROM models WHERE version = $1", version))


async def save_model(
    conn: asyncpg.Connection, version: str, artifact: bytes, sha256: str, signature: str, trained_on: dict, scores: dict
) -> bool:
    done = await conn.execute(
        "INSERT INTO models (version, artifact, sha256, signature, trained_on, scores) VALUES ($1, $2, $3, $4, $5, $6) "
        "ON CONFLICT (version) DO NOTHING",
        version,
        artifact,
        sha256,
        signature,
        json.dumps(trained_on),
        json.dumps(scores),
    )
    return done.endswith(" 1")


async def replace_artifact(
    conn: asyncpg.Connection, version: str, artifact: bytes, sha256: str, signature: str
) -> None:
    await conn.execute(
        "UPDATE models SET artifact = $2, sha256 = $3, signature = $4 WHERE version = $1",
        version,
        artifact,
        sha256,
        signature,
    )


async def activate_model(conn: asyncpg.Connection, version: str, by: str) -> None:
    await conn.execute("UPDATE models SET active = false WHERE active AND version <> $1", version)
    await conn.execute(
        "UPDATE models SET active = true, activated_at = now(), activated_by = $2 WHERE version = $1", version, by
    )


async def models(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT version, created_at, trained_on, scores, active, activated_at, activated_by FROM models "
        "ORDER BY created_at DESC"
    )


async def store_correction(
    conn: asyncpg.Connection,
    *,
    tracking_no: str,
    station: str,
    text: str,
    type_: str | None,
    category: str | None,
    urgency: str | None,
    corrected_by: str,
    reason: str | None,
    corrected_at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO examples (tracking_no, station, text, type, category, urgency, corrected_by, reason, "
        "corrected_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (tracking_no) DO UPDATE SET "
        "type = $4, category = $5, urgency = $6, corrected_by = $7, reason = $8, corrected_at = $9",
        tracking_no,
        station,
        text,
        type_,
        category,
        urgency,
        corrected_by,
        reason,
        corrected_at,
    )
    await conn.execute("UPDATE decisions SET corrected = true WHERE tracking_no = $1", tracking_no)


async def corrections(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT text, type, category, urgency FROM examples ORDER BY corrected_at")


async def model_for_report(conn: asyncpg.Connection, version: str) -> asyncpg.Record | None:
    """A model's scores with its signed artifact: what a training report compares against."""
    return await conn.fetchrow("SELECT scores, artifact, signature FROM models WHERE version = $1", version)


async def lock_seed_training(conn: asyncpg.Connection, key: int) -> None:
    """Replicas starting together train the seed model once: the others wait for the transaction."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", key)


async def review_thresholds(conn: asyncpg.Connection) -> dict[str, dict[str, float]]:
    """station ('*' = default) -> head -> the confidence below which the item goes to review."""
    rows = await conn.fetch("SELECT station, type_below, category_below FROM review_thresholds")
    return {r["station"]: {"type": float(r["type_below"]), "category": float(r["category_below"])} for r in rows}

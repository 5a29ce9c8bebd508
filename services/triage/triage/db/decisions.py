"""Triage's SQL of decisions and repeats (并单): what was decided, fingerprints, merges."""

from __future__ import annotations

import json
from datetime import datetime

import asyncpg

from triage.duplicates import Item as DupItem
from triage.duplicates import bands
from triage.engine import Classification

# -- decisions ----------------------------------------------------------------------------------


async def record_decision(
    conn: asyncpg.Connection,
    tracking_no: str,
    station: str,
    c: Classification,
    submitted_at: datetime,
    *,
    text_masked: str,
    reporter_key: str | None,
    place_key: str | None,
    confidential: bool = False,
) -> None:
    await conn.execute(
        "INSERT INTO decisions (tracking_no, station, type, category, urgency, needs_mediation, confidence, "
        "model_version, reasons, submitted_at, text_masked, sentiment, confidences, reporter_key, place_key, "
        "confidential) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        tracking_no,
        station,
        c.type,
        c.category,
        c.urgency,
        c.needs_mediation,
        c.confidence,
        c.model_version,
        c.reasons,
        submitted_at,
        text_masked,
        c.sentiment,
        json.dumps(c.confidences),
        reporter_key,
        place_key,
        confidential,
    )


async def change_exclusions(
    conn: asyncpg.Connection, tracking_no: str, excluded: list[str], restored: list[str]
) -> None:
    """Who may not open the item's decision: `excluded` added, `restored` taken out."""
    await conn.execute(
        "UPDATE decisions SET excluded_staff = ARRAY(SELECT DISTINCT x FROM unnest(excluded_staff || $2::text[]) x "
        "WHERE x <> ALL($3::text[]) ORDER BY x) WHERE tracking_no = $1",
        tracking_no,
        excluded,
        restored,
    )


async def complaints_naming(
    conn: asyncpg.Connection, station: str, staff_id: str, name: str, badge_no: str | None, since: datetime
) -> list[asyncpg.Record]:
    """The station's complaints and police-conduct items since `since` whose text holds `name` or
    `badge_no` and that do not keep `staff_id` out yet (a member of staff who just joined the
    station; the caller matches them exactly, this only narrows the search)."""
    return await conn.fetch(
        "SELECT tracking_no, type, category, urgency, text_masked, confidential FROM decisions "
        "WHERE station = $1 AND submitted_at >= $5 AND (type = 'complaint' OR category = 'police_conduct') "
        "AND text_masked IS NOT NULL AND NOT $2 = ANY(excluded_staff) "
        "AND ((length($3) >= 2 AND strpos(text_masked, $3) > 0) "
        "     OR (length(coalesce($4, '')) >= 4 AND strpos(text_masked, $4) > 0))",
        station,
        staff_id,
        name,
        badge_no,
        since,
    )


async def decision(conn: asyncpg.Connection, tracking_no: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM decisions WHERE tracking_no = $1", tracking_no)


# -- duplicates ---------------------------------------------------------------------------------


async def duplicate_candidates(conn: asyncpg.Connection, station: str, item: DupItem, since: datetime) -> list[DupItem]:
    """Open items sharing an LSH bucket with this one, or from the same reporter (index lookups only)."""
    pairs = bands(item.signature)
    rows = await conn.fetch(
        """
        SELECT f.tracking_no, f.signature, f.category, f.reporter_key, f.place_key, f.submitted_at
        FROM fingerprints f
        WHERE f.tracking_no IN (
                SELECT b.tracking_no
                FROM unnest($2::smallint[], $3::bigint[]) AS q(band, bucket)
                JOIN lsh_buckets b ON b.station = $1 AND b.band = q.band AND b.bucket = q.bucket
                UNION
                SELECT r.tracking_no FROM fingerprints r
                WHERE $5::text IS NOT NULL AND r.station = $1 AND r.reporter_key = $5 AND r.open)
          AND f.open AND f.submitted_at >= $4
        """,
        station,
        [p[0] for p in pairs],
        [p[1] for p in pairs],
        since,
        item.reporter_key,
    )
    return [
        DupItem(
            r["tracking_no"], list(r["signature"]), r["category"], r["reporter_key"], r["place_key"], r["submitted_at"]
        )
        for r in rows
    ]


async def add_fingerprint(conn: asyncpg.Connection, station: str, item: DupItem) -> None:
    """The item's signature and its LSH buckets, in one statement."""
    pairs = bands(item.signature)
    await conn.execute(
        "WITH f AS (INSERT INTO fingerprints (tracking_no, station, category, signature, reporter_key, place_key, "
        "submitted_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING tracking_no) "
        "INSERT INTO lsh_buckets (station, band, bucket, tracking_no) "
        "SELECT $2, b, k, f.tracking_no FROM f, unnest($8::smallint[], $9::bigint[]) AS t(b, k) ON CONFLICT DO NOTHING",
        item.tracking_no,
        station,
        item.category,
        item.signature,
        item.reporter_key,
        item.place_key,
        item.submitted_at,
        [p[0] for p in pairs],
        [p[1] for p in pairs],
    )


async def record_merge(conn: asyncpg.Connection, tracking_no: str, into: str, reason: str) -> None:
    await conn.execute(
        "UPDATE decisions SET merged_into = $2, merge_reason = $3 WHERE tracking_no = $1", tracking_no, into, reason
    )
    await conn.execute("UPDATE fingerprints SET duplicates = duplicates + 1 WHERE tracking_no = $1", into)

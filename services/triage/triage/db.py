"""Triage's SQL."""

from __future__ import annotations

import json
import secrets
from datetime import date, datetime, time, timedelta

import asyncpg

from fengqiao.taxonomy import DISPUTE_CATEGORIES
from triage.alerts import Draft, Thresholds
from triage.assign import Assignment, Candidate, on_shift
from triage.duplicates import Item as DupItem
from triage.duplicates import bands
from triage.engine import Classification
from triage.rules import Rule

DISPUTES = list(DISPUTE_CATEGORIES)  # an array parameter: asyncpg takes a list


# -- directory and assignment -----------------------------------------------------------------


async def candidates(conn: asyncpg.Connection, station: str, now_local: datetime) -> list[Candidate]:
    """Active staff of a station with their open load and whether a shift covers `now_local`
    (today's shifts, and yesterday's overnight shifts that run into today)."""
    today: date = now_local.date()
    rows = await conn.fetch(
        """
        SELECT s.staff_id, s.role, s.team, s.name, s.badge_no, s.confidential_handler,
               coalesce(l.open_items, 0) AS open_items,
               coalesce(array_agg(r.day) FILTER (WHERE r.day IS NOT NULL), '{}') AS days,
               coalesce(array_agg(r.starts) FILTER (WHERE r.day IS NOT NULL), '{}') AS starts,
               coalesce(array_agg(r.ends) FILTER (WHERE r.day IS NOT NULL), '{}') AS ends
        FROM staff s
        LEFT JOIN staff_load l ON l.staff_id = s.staff_id
        LEFT JOIN roster r ON r.staff_id = s.staff_id AND r.station = s.station
                          AND r.day BETWEEN $2::date - 1 AND $2::date
        WHERE s.station = $1 AND s.active
        GROUP BY s.staff_id, s.role, s.team, s.name, s.badge_no, s.confidential_handler, l.open_items
        """,
        station,
        today,
    )
    now_t = now_local.time().replace(tzinfo=None)
    result = []
    for row in rows:
        duty = any(
            _covers(day, starts, ends, today, now_t)
            for day, starts, ends in zip(row["days"], row["starts"], row["ends"], strict=False)
        )
        result.append(
            Candidate(
                row["staff_id"],
                row["role"],
                row["team"],
                row["open_items"],
                duty,
                row["name"],
                row["badge_no"],
                row["confidential_handler"],
            )
        )
    return result


def _covers(day: date, starts: time, ends: time, today: date, now: time) -> bool:
    if day == today:
        return on_shift(now, starts, ends) and (starts <= ends or now >= starts)
    return starts > ends and now < ends  # yesterday's overnight shift running into today


async def team_rules(conn: asyncpg.Connection) -> dict[str, dict[str, str]]:
    """station ('*' = default) -> category -> team."""
    out: dict[str, dict[str, str]] = {}
    for r in await conn.fetch("SELECT station, category, team FROM assignment_rules"):
        out.setdefault(r["station"], {})[r["category"]] = r["team"]
    return out


async def record_assignment(conn: asyncpg.Connection, tracking_no: str, station: str, a: Assignment) -> None:
    await conn.execute(
        "WITH a AS (INSERT INTO assignments (tracking_no, station, assignee_id, team, reason, flagged) "
        "VALUES ($1, $2, $3, $4, $5, $6) RETURNING assignee_id) "
        "INSERT INTO staff_load (staff_id, open_items) SELECT assignee_id, 1 FROM a WHERE assignee_id IS NOT NULL "
        "ON CONFLICT (staff_id) DO UPDATE SET open_items = staff_load.open_items + 1",
        tracking_no,
        station,
        a.assignee_id,
        a.team,
        a.reason,
        a.flagged,
    )


async def close_item(conn: asyncpg.Connection, tracking_no: str) -> None:
    """The case stopped being open work: release its officer's load and its fingerprint."""
    await conn.execute(
        "WITH a AS (UPDATE assignments SET open = false WHERE tracking_no = $1 AND open RETURNING assignee_id) "
        "UPDATE staff_load l SET open_items = greatest(l.open_items - 1, 0) FROM a WHERE l.staff_id = a.assignee_id",
        tracking_no,
    )
    await conn.execute("UPDATE fingerprints SET open = false WHERE tracking_no = $1", tracking_no)
    await conn.execute("DELETE FROM lsh_buckets WHERE tracking_no = $1", tracking_no)


async def move_item(conn: asyncpg.Connection, tracking_no: str, assignee_id: str | None, station: str) -> None:
    """The item changed hands: one less for the old holder, one more for the new. A transfer to
    another station moves every row of the item with it (decision, assignment, fingerprint and its
    buckets), whoever holds it and whether or not it is still open work here."""
    await conn.execute(
        "UPDATE decisions SET station = $2 WHERE tracking_no = $1 AND station <> $2", tracking_no, station
    )
    await conn.execute(
        "UPDATE assignments SET station = $2 WHERE tracking_no = $1 AND station <> $2", tracking_no, station
    )
    await conn.execute(
        "UPDATE fingerprints SET station = $2 WHERE tracking_no = $1 AND station <> $2", tracking_no, station
    )
    await conn.execute(
        "UPDATE lsh_buckets SET station = $2 WHERE tracking_no = $1 AND station <> $2", tracking_no, station
    )
    old = await conn.fetchrow(
        "SELECT assignee_id FROM assignments WHERE tracking_no = $1 AND open FOR UPDATE", tracking_no
    )
    if old is None or old["assignee_id"] == assignee_id:
        return
    await conn.execute(
        "UPDATE assignments SET assignee_id = $2, flagged = false WHERE tracking_no = $1", tracking_no, assignee_id
    )
    if old["assignee_id"]:
        await conn.execute(
            "UPDATE staff_load SET open_items = greatest(open_items - 1, 0) WHERE staff_id = $1", old["assignee_id"]
        )
    if assignee_id:
        await conn.execute(
            "INSERT INTO staff_load (staff_id, open_items) VALUES ($1, 1) ON CONFLICT (staff_id) "
            "DO UPDATE SET open_items = staff_load.open_items + 1",
            assignee_id,
        )


async def waiting_for_officer(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Open items no officer holds: unassigned or parked in the leader's queue."""
    return await conn.fetch(
        "SELECT station, count(*) AS n FROM assignments WHERE open AND (assignee_id IS NULL OR flagged) "
        "GROUP BY station"
    )


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


# -- alerts -------------------------------------------------------------------------------------


async def thresholds(conn: asyncpg.Connection) -> dict[tuple[str, str, str], Thresholds]:
    rows = await conn.fetch("SELECT station, category, kind, window_hours, yellow, orange, red FROM alert_thresholds")
    return {
        (r["station"], r["category"], r["kind"]): Thresholds(r["window_hours"], r["yellow"], r["orange"], r["red"])
        for r in rows
    }


async def cluster_members(
    conn: asyncpg.Connection, station: str, category: str, place_key: str, since: datetime, until: datetime
) -> tuple[list[str], int]:
    rows = await conn.fetch(
        "SELECT tracking_no, coalesce(reporter_key, 'item:' || tracking_no) AS who FROM decisions "
        "WHERE station = $1 AND category = $2 AND place_key = $3 AND submitted_at > $4 AND submitted_at <= $5 "
        "ORDER BY submitted_at",
        station,
        category,
        place_key,
        since,
        until,
    )
    return [r["tracking_no"] for r in rows], len({r["who"] for r in rows})


async def trend_counts(conn: asyncpg.Connection, station: str, category: str, now: datetime) -> tuple[list[str], float]:
    row = await conn.fetchrow(
        "SELECT array_agg(tracking_no ORDER BY submitted_at) "
        "FILTER (WHERE submitted_at > $3::timestamptz - interval '1 day') AS last, "
        "count(*) FILTER (WHERE submitted_at <= $3::timestamptz - interval '1 day') AS before "
        "FROM decisions WHERE station = $1 AND category = $2 AND submitted_at > $3::timestamptz - interval '8 days' "
        "AND submitted_at <= $3",
        station,
        category,
        now,
    )
    return list(row["last"] or []), row["before"] / 7.0


async def repeat_members(
    conn: asyncpg.Connection, station: str, reporter_key: str, since: datetime, until: datetime
) -> tuple[list[str], list[str]]:
    """The reporter's dispute items at this station: an alert goes to one station's leadership and
    must not list (or count) another station's items."""
    rows = await conn.fetch(
        "SELECT tracking_no, category FROM decisions WHERE reporter_key = $1 AND station = $5 "
        "AND category = ANY($2::text[]) AND merged_into IS NULL AND submitted_at > $3 AND submitted_at <= $4 "
        "ORDER BY submitted_at",
        reporter_key,
        DISPUTES,
        since,
        until,
        station,
    )
    return [r["tracking_no"] for r in rows], [r["category"] for r in rows]


async def upsert_alert(conn: asyncpg.Connection, station: str, draft: Draft, now: datetime, rank) -> tuple[str, bool]:
    """Store the alert; returns (alert_id, raised) where raised means new or a higher level.
    Serialised per (station, kind, key), so two replicas never open the same alert twice."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"alert:{station}:{draft.kind}:{draft.key}"
    )
    row = await conn.fetchrow(
        "SELECT alert_id, level FROM alerts WHERE station = $1 AND kind = $2 AND alert_key = $3 AND expires_at > $4 "
        "ORDER BY raised_at DESC LIMIT 1 FOR UPDATE",
        station,
        draft.kind,
        draft.key,
        now,
    )
    expires = now + timedelta(hours=draft.window_hours)
    if row is None:
        alert_id = "AL" + secrets.token_hex(6).upper()
        await conn.execute(
            "INSERT INTO alerts (alert_id, station, kind, alert_key, level, category, members, reporters, "
            "window_hours, explanation, raised_at, updated_at, expires_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12)",
            alert_id,
            station,
            draft.kind,
            draft.key,
            draft.level,
            draft.category,
            draft.members,
            draft.reporters,
            draft.window_hours,
            draft.explanation,
            now,
            expires,
        )
        return alert_id, True
    higher = rank(draft.level) > rank(row["level"])
    await conn.execute(
        "UPDATE alerts SET members = $2, reporters = $3, updated_at = $4, expires_at = $5, "
        "level = CASE WHEN $6 THEN $7 ELSE level END, explanation = CASE WHEN $6 THEN $8 ELSE explanation END "
        "WHERE alert_id = $1",
        row["alert_id"],
        draft.members,
        draft.reporters,
        now,
        expires,
        higher,
        draft.level,
        draft.explanation,
    )
    return row["alert_id"], higher


async def alerts(conn: asyncpg.Connection, station: str | None, limit: int = 100) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT alert_id, station, kind, level, category, members, reporters, window_hours, explanation, "
        "raised_at, updated_at, expires_at FROM alerts WHERE ($1::text IS NULL OR station = $1) "
        "ORDER BY updated_at DESC LIMIT $2",
        station,
        limit,
    )


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


# -- item lookups (the consumer and the staff API) -----------------------------------------------


async def use_custom_plans(conn: asyncpg.Connection) -> None:
    """Plan the transaction's lookups for the tables as they are now: a generic plan cached while the
    fingerprint and decision tables were small keeps scanning them as they grow (measured: 3 ms ->
    17 ms per item over the first 6,000 items; custom plans stay flat)."""
    await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")


async def assignment(conn: asyncpg.Connection, tracking_no: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT assignee_id, team, reason, flagged, open, assigned_at FROM assignments WHERE tracking_no = $1",
        tracking_no,
    )


async def is_confidential_handler(conn: asyncpg.Connection, staff_id: str, station: str) -> bool:
    """Approved by the station's leader to handle confidential tip-offs (and still active there)."""
    return bool(
        await conn.fetchval(
            "SELECT confidential_handler FROM staff WHERE staff_id = $1 AND station = $2 AND active", staff_id, station
        )
    )

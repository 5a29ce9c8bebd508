"""Intake's SQL as small typed async functions.

Over 400 lines: one small function per statement for every channel of the service (submissions,
timeline, hotline, mailbox, survey, access guard, the citizen's additions); split it into a db/ package
by topic when it grows further."""

from __future__ import annotations

import json
from datetime import datetime

import asyncpg


async def station_exists(conn: asyncpg.Connection, code: str) -> bool:
    return bool(await conn.fetchval("SELECT true FROM stations WHERE code = $1", code))


async def station_active(conn: asyncpg.Connection, code: str) -> bool | None:
    """True for a station taking items, False for a deactivated one, None for no such station."""
    active: bool | None = await conn.fetchval("SELECT active FROM stations WHERE code = $1", code)
    return active


async def insert_submission(
    conn: asyncpg.Connection,
    *,
    tracking_no: str,
    station: str,
    channel: str,
    title: str | None,
    content: str,
    pii_kid: str,
    reporter_enc: bytes,
    location_enc: bytes,
    anonymous: bool,
    confidential: bool,
    external_ref: str | None,
    ingress_source: str | None,
    ingress_id: str | None,
    access_code_hash: str,
    submitted_at: datetime,
    occurred_at: datetime | None,
    received_note: str,
) -> bool:
    """Store a submission with its first timeline entry in one round trip. False when the tracking
    number is taken or (ingress_source, ingress_id) was accepted before."""
    row = await conn.fetchval(
        "WITH s AS (INSERT INTO submissions (tracking_no, station, channel, title, content, pii_kid, reporter_enc, "
        "location_enc, anonymous, confidential, external_ref, ingress_source, ingress_id, access_code_hash, "
        "submitted_at, occurred_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) "
        "ON CONFLICT DO NOTHING RETURNING tracking_no, submitted_at) "
        "INSERT INTO timeline (tracking_no, at, status, note) SELECT tracking_no, submitted_at, 'received', $17 FROM s "
        "RETURNING true",
        tracking_no,
        station,
        channel,
        title,
        content,
        pii_kid,
        reporter_enc,
        location_enc,
        anonymous,
        confidential,
        external_ref,
        ingress_source,
        ingress_id,
        access_code_hash,
        submitted_at,
        occurred_at,
        received_note,
    )
    return bool(row)


async def unsealed_submissions(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    """Rows written before personal data was encrypted (migration 0003)."""
    return await conn.fetch(
        "SELECT tracking_no, reporter, location FROM submissions WHERE reporter IS NOT NULL OR location IS NOT NULL "
        "LIMIT $1 FOR UPDATE SKIP LOCKED",
        limit,
    )


async def seal_submission(
    conn: asyncpg.Connection, tracking_no: str, pii_kid: str, reporter_enc: bytes, location_enc: bytes
) -> None:
    await conn.execute(
        "UPDATE submissions SET pii_kid = $2, reporter_enc = $3, location_enc = $4, reporter = NULL, location = NULL "
        "WHERE tracking_no = $1",
        tracking_no,
        pii_kid,
        reporter_enc,
        location_enc,
    )


async def find_by_ingress(conn: asyncpg.Connection, source: str, event_id: str) -> str | None:
    return await conn.fetchval(
        "SELECT tracking_no FROM submissions WHERE ingress_source = $1 AND ingress_id = $2", source, event_id
    )


async def record_progress(
    conn: asyncpg.Connection, tracking_no: str, status: str, at: datetime, note: str | None, event_id: str, **fields
) -> None:
    """Set the status (and what became known) and append the timeline entry, in one statement."""
    allowed = {"type", "category", "urgency", "assignee_id", "station"}
    sets = ["status = $2", "updated_at = now()"]
    args: list = [tracking_no, status, at, note, event_id]
    for name, value in fields.items():
        if name not in allowed:
            raise ValueError(name)
        args.append(value)
        sets.append(f"{name} = ${len(args)}")
    await conn.execute(
        f"WITH u AS (UPDATE submissions SET {', '.join(sets)} WHERE tracking_no = $1 RETURNING tracking_no) "
        "INSERT INTO timeline (tracking_no, at, status, note, event_id) SELECT tracking_no, $3, $2, $4, $5 FROM u "
        "ON CONFLICT (tracking_no, event_id) DO NOTHING",
        *args,
    )


async def add_timeline_note(conn: asyncpg.Connection, tracking_no: str, at: datetime, note: str, event_id: str) -> None:
    """A timeline entry that does not change the status (e.g. a rectification the citizen asked for)."""
    await conn.execute(
        "INSERT INTO timeline (tracking_no, at, status, note, event_id) SELECT tracking_no, $2, status, $3, $4 "
        "FROM submissions WHERE tracking_no = $1 ON CONFLICT (tracking_no, event_id) DO NOTHING",
        tracking_no,
        at,
        note,
        event_id,
    )


async def get_submission(conn: asyncpg.Connection, tracking_no: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT tracking_no, station, channel, status, type, category, urgency, assignee_id, "
        "access_code_hash, submitted_at, pii_kid, reporter_enc, anonymous, confidential, "
        "title, content, location_enc, access_settled, "
        "info_requested_at, info_answered_at FROM submissions WHERE tracking_no = $1",
        tracking_no,
    )


async def get_timeline(conn: asyncpg.Connection, tracking_no: str) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT at, status, note FROM timeline WHERE tracking_no = $1 ORDER BY at, id", tracking_no)


async def staff_name(conn: asyncpg.Connection, staff_id: str) -> str | None:
    return await conn.fetchval("SELECT name FROM staff WHERE staff_id = $1", staff_id)


async def lookup_idempotent(conn: asyncpg.Connection, scope: str, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT request_hash, response FROM idempotency_keys WHERE scope = $1 AND key = $2", scope, key
    )


async def store_idempotent(conn: asyncpg.Connection, scope: str, key: str, request_hash: str, response: dict) -> bool:
    return bool(
        await conn.fetchval(
            "INSERT INTO idempotency_keys (scope, key, request_hash, response) VALUES ($1, $2, $3, $4::jsonb) "
            "ON CONFLICT DO NOTHING RETURNING true",
            scope,
            key,
            request_hash,
            json.dumps(response),
        )
    )


async def hotline_call(conn: asyncpg.Connection, call_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT c.tracking_no, c.added_to_item, s.station FROM hotline_calls c "
        "JOIN submissions s USING (tracking_no) WHERE c.call_id = $1",
        call_id,
    )


async def earlier_calls_from(
    conn: asyncpg.Connection, caller_index: str, station: str, *, include_confidential: bool, limit: int = 20
) -> list[str]:
    """Earlier calls from the same number to the same station (another station's items are not ours to
    show), confidential tip-offs only for those who may open them: anyone could otherwise type a
    suspect's number into a "call" and learn whether, and when, that number reported."""
    rows = await conn.fetch(
        "SELECT c.tracking_no FROM hotline_calls c JOIN submissions s USING (tracking_no) "
        "WHERE c.caller_index = $1 AND s.station = $2 AND ($3 OR NOT s.confidential) AND NOT c.added_to_item "
        "ORDER BY c.started_at DESC LIMIT $4",
        caller_index,
        station,
        include_confidential,
        limit,
    )
    return [r["tracking_no"] for r in rows]


async def record_hotline_call(
    conn: asyncpg.Connection,
    *,
    call_id: str,
    tracking_no: str,
    caller_index: str | None,
    line: str | None,
    operator: str | None,
    started_at: datetime,
    ended_at: datetime | None,
    recording_url: str | None,
    added_to_item: bool = False,
) -> None:
    await conn.execute(
        "INSERT INTO hotline_calls (call_id, tracking_no, caller_index, line, operator, started_at, ended_at, "
        "recording_url, added_to_item) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        call_id,
        tracking_no,
        caller_index,
        line,
        operator,
        started_at,
        ended_at,
        recording_url,
        added_to_item,
    )


async def open_item_of_caller(
    conn: asyncpg.Connection, caller_index: str, station: str, closed: list[str], *, include_confidential: bool
) -> asyncpg.Record | None:
    """The newest item of this station the same number called about that is still open (a status not
    in `closed`): a follow-up call is added to it. Confidential tip-offs only for those who may open
    them, as for `earlier_calls_from`."""
    tracking_no = await conn.fetchval(
        "SELECT c.tracking_no FROM hotline_calls c JOIN submissions s USING (tracking_no) "
        "WHERE c.caller_index = $1 AND s.station = $2 AND ($3 OR NOT s.confidential) "
        "AND s.status <> ALL($4::text[]) ORDER BY c.started_at DESC LIMIT 1",
        caller_index,
        station,
        include_confidential,
        closed,
    )
    return await get_submission(conn, tracking_no) if tracking_no else None


async def record_info_requested(conn: asyncpg.Connection, tracking_no: str, at: datetime) -> None:
    """An officer asked the citizen for more information: the tracking page offers the form."""
    await conn.execute(
        "UPDATE submissions SET info_requested_at = greatest(info_requested_at, $2) WHERE tracking_no = $1",
        tracking_no,
        at,
    )


async def additions(conn: asyncpg.Connection, tracking_no: str) -> list[asyncpg.Record]:
    """What the citizen added to the item (sealed), oldest first."""
    return await conn.fetch(
        "SELECT channel, source_key, pii_kid, text_enc, added_at FROM citizen_additions WHERE tracking_no = $1 "
        "ORDER BY added_at, id",
        tracking_no,
    )


async def insert_addition(
    conn: asyncpg.Connection,
    *,
    tracking_no: str,
    channel: str,
    source_key: str,
    pii_kid: str,
    text_enc: bytes,
    added_at: datetime,
    answers_request: bool,
) -> bool:
    """Store what the citizen added (sealed); False if this (channel, source key) was added before.
    An answer closes the pending request for information."""
    added = await conn.fetchval(
        "INSERT INTO citizen_additions (tracking_no, channel, source_key, pii_kid, text_enc, added_at) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (channel, source_key) DO NOTHING RETURNING true",
        tracking_no,
        channel,
        source_key,
        pii_kid,
        text_enc,
        added_at,
    )
    if added and answers_request:
        await conn.execute(
            "UPDATE submissions SET info_answered_at = $2, updated_at = now() WHERE tracking_no = $1",
            tracking_no,
            added_at,
        )
    return bool(added)


async def link_submissions(conn: asyncpg.Connection, tracking_no: str, related: list[str], reason: str) -> None:
    await conn.executemany(
        "INSERT INTO submission_links (tracking_no, related_tracking_no, reason) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING",
        [(tracking_no, other, reason) for other in related],
    )


async def record_mailbox_item(
    conn: asyncpg.Connection,
    *,
    tracking_no: str,
    kind: str,
    opened_at: datetime,
    opened_by: str,
    entered_by: str | None,
    scan_url: str | None,
) -> None:
    await conn.execute(
        "INSERT INTO mailbox_items (tracking_no, kind, opened_at, opened_by, entered_by, scan_url) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        tracking_no,
        kind,
        opened_at,
        opened_by,
        entered_by,
        scan_url,
    )


async def stations(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT code, name FROM stations WHERE active ORDER BY code")


async def station_for_address(conn: asyncpg.Connection, address: str) -> str | None:
    """The station whose jurisdiction names appear in the address (the longest name wins)."""
    return await conn.fetchval(
        "SELECT s.code FROM stations s, unnest(s.jurisdiction) AS j(name) "
        "WHERE s.active AND length(j.name) > 0 AND strpos($1, j.name) > 0 ORDER BY length(j.name) DESC, s.code LIMIT 1",
        address,
    )


async def station_name(conn: asyncpg.Connection, code: str) -> str:
    return await conn.fetchval("SELECT name FROM stations WHERE code = $1", code) or code


async def open311_requests(
    conn: asyncpg.Connection,
    station: str,
    ids: list[str] | None,
    categories: list[str] | None,
    *,
    hidden_categories: list[str] | None = None,
    limit: int = 50,
) -> list[asyncpg.Record]:
    """Non-personal fields of a station's submissions, newest first (Open311 reads). With
    `hidden_categories` (anonymous reads), confidential items (tip-offs whose reporter asked for
    protection) and those categories are left out altogether, and a listing (no `ids`) leaves out
    items not yet classified too: an item listed before triage and gone after it would say what
    triage found. Asked for by its number (an app following its own request), an unclassified item
    is shown."""
    return await conn.fetch(
        "SELECT tracking_no, status, category, submitted_at, updated_at FROM submissions "
        "WHERE station = $1 AND ($2::text[] IS NULL OR tracking_no = any($2::text[])) "
        "AND ($3::text[] IS NULL OR category = any($3::text[])) "
        "AND ($5::text[] IS NULL OR (NOT confidential AND NOT coalesce(category = any($5::text[]), false) "
        "     AND ($2::text[] IS NOT NULL OR category IS NOT NULL))) "
        "AND submitted_at > now() - interval '90 days' ORDER BY submitted_at DESC LIMIT $4",
        station,
        ids,
        categories,
        limit,
        hidden_categories,
    )


async def log_personal_data_access(
    conn: asyncpg.Connection,
    tracking_no: str,
    token_id: str,
    staff_id: str | None,
    role: str,
    *,
    station: str,
    action: str,
    reason: str | None = None,
) -> None:
    """One line of the station's disclosure log: a reveal (with its reason), a scan viewed, a refusal."""
    await conn.execute(
        "INSERT INTO personal_data_access (tracking_no, token_id, staff_id, role, station, action, reason) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        tracking_no,
        token_id,
        staff_id,
        role,
        station,
        action,
        reason,
    )


async def disclosures(
    conn: asyncpg.Connection, station: str | None, tracking_no: str | None, limit: int, *, reader: str | None
) -> list[asyncpg.Record]:
    """The disclosure log of a station (None: every station), newest first, without the items the
    `reader` (a staff id) is kept out of: who looked at a complaint and why is part of it."""
    return await conn.fetch(
        "SELECT at, tracking_no, station, staff_id, role, action, reason FROM personal_data_access a "
        "WHERE ($1::text IS NULL OR station = $1) AND ($2::text IS NULL OR tracking_no = $2) "
        "AND NOT EXISTS (SELECT 1 FROM access_exclusions e WHERE e.tracking_no = a.tracking_no "
        "AND e.staff_id = $4) ORDER BY at DESC, id DESC LIMIT $3",
        station,
        tracking_no,
        limit,
        reader or "",
    )


async def is_excluded(conn: asyncpg.Connection, tracking_no: str, staff_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT true FROM access_exclusions WHERE tracking_no = $1 AND staff_id = $2", tracking_no, staff_id
        )
    )


async def change_exclusions(
    conn: asyncpg.Connection,
    tracking_no: str,
    origin: str,
    excluded: list[str],
    restored: list[str],
    *,
    settle: str | None,
) -> None:
    """Staff kept out of an item (`excluded`) or let in again (`restored`); `settle`: the station
    whose staff triage has matched the item against, so they may open it while it is there (a
    transfer moves it to a station not yet checked: closed to its staff until triage says)."""
    await conn.executemany(
        "INSERT INTO access_exclusions (tracking_no, staff_id, origin) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        [(tracking_no, staff_id, origin) for staff_id in excluded],
    )
    if restored:
        await conn.execute(
            "DELETE FROM access_exclusions WHERE tracking_no = $1 AND staff_id = any($2::text[])", tracking_no, restored
        )
    if settle:
        await conn.execute(
            "UPDATE submissions SET settled_stations = array_append(settled_stations, $2) "
            "WHERE tracking_no = $1 AND NOT $2 = ANY(settled_stations)",
            tracking_no,
            settle,
        )


async def record_survey_answer(
    conn: asyncpg.Connection, tracking_no: str, resolution: int, result: str, reason: str | None
) -> bool:
    """False if this resolution of the item was already answered (the first answer stands)."""
    return bool(
        await conn.fetchval(
            "INSERT INTO survey_answers (tracking_no, resolution, result, reason) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (tracking_no, resolution) DO NOTHING RETURNING true",
            tracking_no,
            resolution,
            result,
            reason,
        )
    )


async def store_scan(
    conn: asyncpg.Connection, tracking_no: str, content_type: str, pii_kid: str, image_enc: bytes
) -> None:
    await conn.execute(
        "INSERT INTO mailbox_scans (tracking_no, content_type, pii_kid, image_enc) VALUES ($1, $2, $3, $4)",
        tracking_no,
        content_type,
        pii_kid,
        image_enc,
    )


async def scan(conn: asyncpg.Connection, tracking_no: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT m.content_type, m.pii_kid, m.image_enc, s.station, s.confidential FROM mailbox_scans m "
        "JOIN submissions s USING (tracking_no) WHERE m.tracking_no = $1",
        tracking_no,
    )


async def access_locked_until(conn: asyncpg.Connection, tracking_no: str) -> datetime | None:
    return await conn.fetchval(
        "SELECT locked_until FROM access_code_misses WHERE tracking_no = $1 AND locked_until > now()", tracking_no
    )


async def record_access_miss(
    conn: asyncpg.Connection, tracking_no: str, *, max_misses: int, window_s: float, lock_s: float
) -> datetime | None:
    """Count a wrong access code; the count restarts after `window_s`, and reaching `max_misses`
    locks the number for `lock_s`. Returns the end of the lock, if locked now."""
    return await conn.fetchval(
        "INSERT INTO access_code_misses AS m (tracking_no, misses, window_started) VALUES ($1, 1, now()) "
        "ON CONFLICT (tracking_no) DO UPDATE SET "
        " misses = CASE WHEN m.window_started < now() - make_interval(secs => $2) THEN 1 ELSE m.misses + 1 END, "
        " window_started = CASE WHEN m.window_started < now() - make_interval(secs => $2) "
        "                  THEN now() ELSE m.window_started END "
        "RETURNING CASE WHEN misses >= $3 THEN now() + make_interval(secs => $4) END",
        tracking_no,
        window_s,
        max_misses,
        lock_s,
    )


async def lock_access(conn: asyncpg.Connection, tracking_no: str, until: datetime) -> None:
    await conn.execute(
        "UPDATE access_code_misses SET locked_until = $2, misses = 0, window_started = now() WHERE tracking_no = $1",
        tracking_no,
        until,
    )


async def is_confidential_handler(conn: asyncpg.Connection, staff_id: str | None, station: str) -> bool:
    if staff_id is None:
        return False
    return bool(
        await conn.fetchval(
            "SELECT confidential_handler FROM staff WHERE staff_id = $1 AND station = $2 AND active", staff_id, station
        )
    )


async def staff_of_station(conn: asyncpg.Connection, staff_id: str, station: str) -> bool:
    """Whether the directory's read table (kept from directory events) lists this staff member at
    this station."""
    return bool(await conn.fetchval("SELECT true FROM staff WHERE staff_id = $1 AND station = $2", staff_id, station))

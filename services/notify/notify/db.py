"""Notify's SQL, one small typed function per statement. About 450 lines, most of it the
delivery queue's claims and outcomes, which read best side by side."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def add_console_notification(
    conn: asyncpg.Connection,
    *,
    event_source: str,
    event_id: str,
    recipient_id: str,
    station: str | None,
    kind: str,
    tracking_no: str | None,
    title: str,
    body: str,
    event_time: datetime | None = None,
) -> bool:
    """A new notice; already withdrawn if the case was taken from its reader after the step it is
    about (a notice that arrives late, on another topic, than the step that withdrew it)."""
    return bool(
        await conn.fetchval(
            "INSERT INTO console_notifications (event_source, event_id, recipient_id, station, kind, tracking_no, "
            "title, body, event_time, withdrawn_at, withdrawn_reason) "
            "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, w.at, w.reason FROM (SELECT 1) AS one "
            "LEFT JOIN LATERAL (SELECT at, reason FROM case_withdrawals WHERE tracking_no = $6 "
            "AND recipient_id = $3 AND at > $9 AND $5 <> 'withdrawn' ORDER BY at LIMIT 1) AS w ON true "
            "ON CONFLICT DO NOTHING RETURNING true",
            event_source,
            event_id,
            recipient_id,
            station,
            kind,
            tracking_no,
            title,
            body,
            event_time,
        )
    )


async def withdraw(conn: asyncpg.Connection, tracking_no: str, recipient_id: str, *, at: datetime, reason: str) -> None:
    """The case was taken from `recipient_id` at `at`: their notices of it about earlier steps are
    marked withdrawn, and so are those that arrive later about earlier steps."""
    await conn.execute(
        "INSERT INTO case_withdrawals (tracking_no, recipient_id, at, reason) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT DO NOTHING",
        tracking_no,
        recipient_id,
        at,
        reason,
    )
    await conn.execute(
        "UPDATE console_notifications SET withdrawn_at = $3, withdrawn_reason = $4 WHERE tracking_no = $1 "
        "AND recipient_id = $2 AND withdrawn_at IS NULL AND kind <> 'withdrawn' "
        "AND coalesce(event_time, created_at) < $3",
        tracking_no,
        recipient_id,
        at,
        reason,
    )


async def station_name(conn: asyncpg.Connection, code: str) -> str:
    return await conn.fetchval("SELECT name FROM stations WHERE code = $1", code) or code


async def station_phone(conn: asyncpg.Connection, code: str) -> str | None:
    """The station's own phone from the directory (None: the templates fall back to 110)."""
    return await conn.fetchval("SELECT phone FROM stations WHERE code = $1", code) or None


async def known_station_name(conn: asyncpg.Connection, code: str) -> str | None:
    """The name of a station in the directory, None if there is no such station."""
    return await conn.fetchval("SELECT name FROM stations WHERE code = $1", code)


async def station_leaders(conn: asyncpg.Connection, station: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT staff_id FROM staff WHERE station = $1 AND role IN ('leader', 'instructor') AND active "
        "ORDER BY role DESC, staff_id",
        station,
    )
    return [r["staff_id"] for r in rows]


async def change_exclusions(
    conn: asyncpg.Connection, tracking_no: str, excluded: list[str], restored: list[str]
) -> None:
    """Staff kept out of a case (`excluded`), or let in again (`restored`)."""
    await conn.executemany(
        "INSERT INTO case_exclusions (tracking_no, staff_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        [(tracking_no, s) for s in excluded],
    )
    if restored:
        await conn.execute(
            "DELETE FROM case_exclusions WHERE tracking_no = $1 AND staff_id = any($2::text[])", tracking_no, restored
        )


async def excluded_from(conn: asyncpg.Connection, tracking_no: str) -> frozenset[str]:
    rows = await conn.fetch("SELECT staff_id FROM case_exclusions WHERE tracking_no = $1", tracking_no)
    return frozenset(r["staff_id"] for r in rows)


async def staff_name(conn: asyncpg.Connection, staff_id: str) -> str:
    return await conn.fetchval("SELECT name FROM staff WHERE staff_id = $1", staff_id) or ""


async def bureau_supervisors(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch("SELECT staff_id FROM staff WHERE role = 'bureau' AND active ORDER BY staff_id")
    return [r["staff_id"] for r in rows]


async def inbox(
    conn: asyncpg.Connection, recipient_id: str | None, *, unread_only: bool = False, limit: int = 50
) -> tuple[list[asyncpg.Record], int]:
    """A recipient's console notifications; None (a staff token without a staff id) matches none."""
    rows = await conn.fetch(
        "SELECT id, kind, tracking_no, title, body, created_at, read_at, withdrawn_at, withdrawn_reason "
        "FROM console_notifications "
        "WHERE recipient_id = $1 AND (NOT $2 OR read_at IS NULL) ORDER BY created_at DESC, id DESC LIMIT $3",
        recipient_id,
        unread_only,
        limit,
    )
    unread = await conn.fetchval(
        "SELECT count(*) FROM console_notifications WHERE recipient_id = $1 AND read_at IS NULL", recipient_id
    )
    return rows, unread


async def mark_read(conn: asyncpg.Connection, recipient_id: str | None, ids: list[int] | None) -> int:
    """Mark the given notifications (or all, if None) of this recipient read; how many changed.
    A recipient_id of None (a staff token without a staff id) matches none."""
    result = await conn.execute(
        "UPDATE console_notifications SET read_at = now() WHERE recipient_id = $1 AND read_at IS NULL "
        "AND ($2::bigint[] IS NULL OR id = ANY($2))",
        recipient_id,
        ids,
    )
    return int(result.rsplit(" ", 1)[1])


DELIVERY_COLUMNS = (
    "id, channel, audience, template, tracking_no, station, status, attempts, last_error, "
    "created_at, sent_at, failed_at, next_attempt_at, held_reason, resends, resent_by, "
    "payload_kid, payload_enc, event_source, event_id, recipient_key"
)


async def deliveries(
    conn: asyncpg.Connection, *, all_stations: bool, station: str | None, status: str, limit: int = 100
) -> list:
    """Every station's only when asked for by name: a missing station means none, never all."""
    return await conn.fetch(
        f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE status = $1 AND ($2 OR station = $3::text) "
        "ORDER BY coalesce(failed_at, created_at) DESC, id DESC LIMIT $4",
        status,
        all_stations,
        station,
        limit,
    )


async def delivery(conn: asyncpg.Connection, delivery_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1", delivery_id)


async def resend(conn: asyncpg.Connection, delivery_id: int, staff_id: str) -> bool:
    """A failed delivery goes again, with a fresh set of attempts (decided by a person)."""
    return bool(
        await conn.fetchval(
            "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(), failed_at = NULL, "
            "held_reason = NULL, resends = resends + 1, resent_by = $2 "
            "WHERE id = $1 AND status = 'failed' RETURNING true",
            delivery_id,
            staff_id,
        )
    )


async def dismiss(conn: asyncpg.Connection, delivery_id: int, staff_id: str) -> bool:
    """The citizen was told another way: the failure needs no resend."""
    return bool(
        await conn.fetchval(
            "UPDATE deliveries SET status = 'dismissed', resent_by = $2 WHERE id = $1 AND status = 'failed' "
            "RETURNING true",
            delivery_id,
            staff_id,
        )
    )


async def staff_phones(conn: asyncpg.Connection, staff_ids: list[str]) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT c.staff_id, c.phone_kid, c.phone_enc, s.station FROM staff_contacts c "
        "JOIN staff s USING (staff_id) WHERE c.staff_id = ANY($1) AND s.active",
        staff_ids,
    )


async def staff_station(conn: asyncpg.Connection, staff_id: str) -> str | None:
    """The station of an active member of staff, None if there is no such person."""
    return await conn.fetchval("SELECT station FROM staff WHERE staff_id = $1 AND active", staff_id)


async def set_staff_phone(
    conn: asyncpg.Connection, staff_id: str, *, phone_kid: str, phone_enc: bytes, updated_by: str | None
) -> None:
    await conn.execute(
        "INSERT INTO staff_contacts (staff_id, phone_kid, phone_enc, updated_by) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (staff_id) DO UPDATE SET phone_kid = excluded.phone_kid, phone_enc = excluded.phone_enc, "
        "updated_by = excluded.updated_by, updated_at = now()",
        staff_id,
        phone_kid,
        phone_enc,
        updated_by,
    )


async def remove_staff_phone(conn: asyncpg.Connection, staff_id: str) -> None:
    await conn.execute("DELETE FROM staff_contacts WHERE staff_id = $1", staff_id)


async def station_codes(conn: asyncpg.Connection) -> set[str]:
    return {r["code"] for r in await conn.fetch("SELECT code FROM stations")}


# -- case urgency (citizen SMS of urgent cases skip quiet hours) -------------------------------------


async def remember_urgency(conn: asyncpg.Connection, tracking_no: str, urgency: str) -> None:
    await conn.execute(
        "INSERT INTO case_urgency (tracking_no, urgency) VALUES ($1, $2) "
        "ON CONFLICT (tracking_no) DO UPDATE SET urgency = excluded.urgency",
        tracking_no,
        urgency,
    )


async def release_quiet_holds(conn: asyncpg.Connection, tracking_no: str) -> None:
    await conn.execute(
        "UPDATE deliveries SET next_attempt_at = now(), held_reason = NULL WHERE tracking_no = $1 "
        "AND status = 'deferred' AND held_reason = 'quiet_hours'",
        tracking_no,
    )


# -- webhook subscriptions ---------------------------------------------------------------------------


async def active_subscriptions(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT id, url, event_types, stations FROM webhook_subscriptions WHERE active")


async def subscription_secret(conn: asyncpg.Connection, sub_id: str) -> asyncpg.Record | None:
    """The sealed signing secret of an active subscription, None once it is removed."""
    return await conn.fetchrow(
        "SELECT id, secret_kid, secret_enc FROM webhook_subscriptions WHERE id = $1 AND active", sub_id
    )


async def add_subscription(
    conn: asyncpg.Connection,
    *,
    sub_id: str,
    name: str,
    url: str,
    event_types: list[str],
    stations: list[str],
    secret_kid: str,
    secret_enc: bytes,
    owner_id: str | None,
) -> asyncpg.Record:
    return await conn.fetchrow(
        "INSERT INTO webhook_subscriptions (id, name, url, event_types, stations, secret_kid, secret_enc, "
        "owner_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *",
        sub_id,
        name,
        url,
        event_types,
        stations,
        secret_kid,
        secret_enc,
        owner_id,
    )


async def subscriptions(conn: asyncpg.Connection, owner_id: str | None, *, every_owner: bool) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT * FROM webhook_subscriptions WHERE active AND (owner_id = $1 OR $2) ORDER BY created_at",
        owner_id,
        every_owner,
    )


async def deactivate_subscription(
    conn: asyncpg.Connection, sub_id: str, owner_id: str | None, *, any_owner: bool
) -> bool:
    return bool(
        await conn.fetchval(
            "UPDATE webhook_subscriptions SET active = false WHERE id = $1 AND active AND (owner_id = $2 OR $3) "
            "RETURNING true",
            sub_id,
            owner_id,
            any_owner,
        )
    )


# -- the delivery queue (notify.deliveries) ------------------------------------------------------------


async def add_delivery(
    conn: asyncpg.Connection,
    *,
    event_source: str,
    event_id: str,
    recipient_key: str,
    channel: str,
    audience: str,
    template: str,
    tracking_no: str | None,
    station: str | None,
    payload_kid: str,
    payload_enc: bytes,
    urgent: bool,
    not_before: datetime | None,
) -> bool:
    """Queued once per (event, recipient, channel): False when a redelivered event adds nothing."""
    return bool(
        await conn.fetchval(
            "INSERT INTO deliveries (event_source, event_id, recipient_key, channel, audience, template, tracking_no, "
            "station, payload_kid, payload_enc, urgent, next_attempt_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, coalesce($12, now())) "
            "ON CONFLICT (event_source, event_id, recipient_key, channel) DO NOTHING RETURNING true",
            event_source,
            event_id,
            recipient_key,
            channel,
            audience,
            template,
            tracking_no,
            station,
            payload_kid,
            payload_enc,
            urgent,
            not_before,
        )
    )


async def claim_due(conn: asyncpg.Connection, channel: str, now: datetime, limit: int) -> list[asyncpg.Record]:
    """Due rows of a channel (and rows whose lease ran out), locked for this worker; urgent first."""
    return await conn.fetch(
        "SELECT d.*, coalesce(u.urgency = 'urgent', false) AS case_urgent FROM deliveries d "
        "LEFT JOIN case_urgency u ON u.tracking_no = d.tracking_no "
        "WHERE d.channel = $1 AND d.payload_enc IS NOT NULL "
        "AND ((d.status IN ('pending', 'deferred') AND d.next_attempt_at <= $2) "
        "OR (d.status = 'sending' AND d.lease_until < $2)) "
        "ORDER BY d.urgent DESC, d.next_attempt_at LIMIT $3 FOR UPDATE OF d SKIP LOCKED",
        channel,
        now,
        limit,
    )


async def defer(conn: asyncpg.Connection, holds: list[tuple[int, str, datetime]]) -> None:
    """(id, held_reason, next_attempt_at) rows held back by quiet hours or rate limits."""
    await conn.executemany(
        "UPDATE deliveries SET status = 'deferred', held_reason = $2, next_attempt_at = $3, "
        "lease_until = NULL WHERE id = $1",
        holds,
    )


async def lease(conn: asyncpg.Connection, sending: list[tuple[int, datetime]]) -> None:
    """(id, lease_until) rows about to be sent: one more attempt each."""
    await conn.executemany(
        "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, lease_until = $2, "
        "held_reason = NULL WHERE id = $1",
        sending,
    )


async def sent_since(
    conn: asyncpg.Connection, channel: str, recipient_keys: list[str], since: datetime
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT recipient_key, sent_at FROM deliveries WHERE channel = $1 AND recipient_key = ANY($2) AND sent_at > $3",
        channel,
        recipient_keys,
        since,
    )


async def mark_sent(conn: asyncpg.Connection, sent: list[tuple[int, int, datetime]]) -> None:
    """(id, attempts, sent_at): only rows still leased to this attempt."""
    await conn.executemany(
        "UPDATE deliveries SET status = 'sent', sent_at = $3, lease_until = NULL, last_error = NULL "
        "WHERE id = $1 AND status = 'sending' AND attempts = $2",
        sent,
    )


async def retry_later(conn: asyncpg.Connection, delivery_id: int, attempts: int, at: datetime, error: str) -> None:
    await conn.execute(
        "UPDATE deliveries SET status = 'pending', next_attempt_at = $3, lease_until = NULL, "
        "last_error = $4 WHERE id = $1 AND status = 'sending' AND attempts = $2",
        delivery_id,
        attempts,
        at,
        error,
    )


async def mark_cancelled(conn: asyncpg.Connection, delivery_id: int, attempts: int, error: str) -> None:
    await conn.execute(
        "UPDATE deliveries SET status = 'cancelled', lease_until = NULL, last_error = $3 "
        "WHERE id = $1 AND status = 'sending' AND attempts = $2",
        delivery_id,
        attempts,
        error,
    )


async def mark_failed(
    conn: asyncpg.Connection, delivery_id: int, attempts: int, failed_at: datetime, error: str
) -> bool:
    """True if this attempt still held the row (so the failure is told once)."""
    done = await conn.execute(
        "UPDATE deliveries SET status = 'failed', failed_at = $3, lease_until = NULL, last_error = $4 "
        "WHERE id = $1 AND status = 'sending' AND attempts = $2",
        delivery_id,
        attempts,
        failed_at,
        error,
    )
    return done.endswith(" 1")


async def unsealed_deliveries(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Rows from before the queue sealed the address and text."""
    return await conn.fetch(
        "SELECT id, event_source, event_id, channel, recipient, body FROM deliveries WHERE recipient IS NOT NULL"
    )


async def seal_delivery(
    conn: asyncpg.Connection, row: asyncpg.Record, *, recipient_key: str, payload_kid: str, payload_enc: bytes
) -> int:
    """1 if sealed; 0 if a sealed twin of the row exists already (the unique key would clash)."""
    return (
        await conn.fetchval(
            "UPDATE deliveries SET recipient_key = $2, payload_kid = $3, payload_enc = $4, "
            "recipient = NULL, body = NULL WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE "
            "o.event_source = $5 AND o.event_id = $6 AND o.channel = $7 AND o.recipient_key = $2) "
            "RETURNING 1",
            row["id"],
            recipient_key,
            payload_kid,
            payload_enc,
            row["event_source"],
            row["event_id"],
            row["channel"],
        )
        or 0
    )


async def queue_counts(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """(channel, status, n) of the rows not yet done, for the queue gauges."""
    return await conn.fetch(
        "SELECT channel, status, count(*) AS n FROM deliveries "
        "WHERE status IN ('pending', 'deferred', 'sending', 'failed') GROUP BY 1, 2"
    )

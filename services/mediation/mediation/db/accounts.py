"""Accounts, sessions and failed sign-ins (migration 0014). Sessions are looked up by the hash of
the cookie value and are valid only while the person is active in the directory."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def account_by_username(conn: asyncpg.Connection, username: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT a.staff_id, a.username, a.password_hash, a.must_change, s.active, s.role, s.station, s.name "
        "FROM accounts a JOIN staff s USING (staff_id) WHERE lower(a.username) = lower($1)",
        username,
    )


async def account_of(conn: asyncpg.Connection, staff_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT staff_id, username, must_change FROM accounts WHERE staff_id = $1", staff_id)


async def username_taken(conn: asyncpg.Connection, username: str, staff_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT true FROM accounts WHERE lower(username) = lower($1) AND staff_id <> $2", username, staff_id
        )
    )


async def set_password(
    conn: asyncpg.Connection, staff_id: str, username: str, password_hash: str, *, must_change: bool
) -> None:
    await conn.execute(
        "INSERT INTO accounts (staff_id, username, password_hash, must_change) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (staff_id) DO UPDATE SET username = $2, password_hash = $3, must_change = $4, "
        "password_changed_at = now()",
        staff_id,
        username,
        password_hash,
        must_change,
    )


async def rehash(conn: asyncpg.Connection, staff_id: str, password_hash: str) -> None:
    await conn.execute("UPDATE accounts SET password_hash = $2 WHERE staff_id = $1", staff_id, password_hash)


async def reserve_attempt(conn: asyncpg.Connection, username: str, *, now: datetime, window_s: int) -> asyncpg.Record:
    """Count a sign-in attempt *before* its password is checked (a count older than the window
    starts again): concurrent guesses are serialised on the row, so no more than the limit are
    ever checked. Returns the count and any lock in force."""
    return await conn.fetchrow(
        "INSERT INTO signin_failures (username, attempts, last_at) VALUES (lower($1), 1, $2) "
        "ON CONFLICT (username) DO UPDATE SET "
        # while locked nothing is counted (the lock is not extended by knocking on it)
        "attempts = CASE WHEN signin_failures.locked_until > $2 THEN signin_failures.attempts "
        "WHEN signin_failures.last_at < $2 - make_interval(secs => $3) THEN 1 "
        "ELSE signin_failures.attempts + 1 END, "
        "last_at = CASE WHEN signin_failures.locked_until > $2 THEN signin_failures.last_at ELSE $2 END "
        "RETURNING attempts, locked_until",
        username,
        now,
        window_s,
    )


async def lock(conn: asyncpg.Connection, username: str, *, now: datetime, lock_s: int) -> None:
    await conn.execute(
        "UPDATE signin_failures SET locked_until = $2::timestamptz + make_interval(secs => $3), attempts = 0 "
        "WHERE username = lower($1)",
        username,
        now,
        lock_s,
    )


async def clear_failures(conn: asyncpg.Connection, username: str) -> None:
    await conn.execute("DELETE FROM signin_failures WHERE username = lower($1)", username)


async def create_session(
    conn: asyncpg.Connection, session_hash: str, staff_id: str, csrf_token: str, method: str = "password"
) -> None:
    await conn.execute(
        "INSERT INTO sessions (session_hash, staff_id, csrf_token, method) VALUES ($1, $2, $3, $4)",
        session_hash,
        staff_id,
        csrf_token,
        method,
    )


async def session(conn: asyncpg.Connection, session_hash: str) -> asyncpg.Record | None:
    """The session and its person as the directory has them now (inactive people have none)."""
    return await conn.fetchrow(
        "SELECT x.session_hash, x.staff_id, x.csrf_token, x.created_at, x.last_seen_at, "
        "s.role, s.station, s.name, (a.must_change AND x.method = 'password') AS must_change "
        "FROM sessions x JOIN staff s USING (staff_id) JOIN accounts a USING (staff_id) "
        "WHERE x.session_hash = $1 AND s.active",
        session_hash,
    )


async def touch_session(conn: asyncpg.Connection, session_hash: str, now: datetime) -> None:
    await conn.execute("UPDATE sessions SET last_seen_at = $2 WHERE session_hash = $1", session_hash, now)


async def end_session(conn: asyncpg.Connection, session_hash: str) -> list[str]:
    """Delete a session; returns the hashes of the sessions deleted (for their console tokens)."""
    rows = await conn.fetch("DELETE FROM sessions WHERE session_hash = $1 RETURNING session_hash", session_hash)
    return [r["session_hash"] for r in rows]


async def end_sessions_of(conn: asyncpg.Connection, staff_id: str) -> list[str]:
    rows = await conn.fetch("DELETE FROM sessions WHERE staff_id = $1 RETURNING session_hash", staff_id)
    return [r["session_hash"] for r in rows]


async def end_other_sessions(conn: asyncpg.Connection, staff_id: str, keep_hash: str) -> list[str]:
    rows = await conn.fetch(
        "DELETE FROM sessions WHERE staff_id = $1 AND session_hash <> $2 RETURNING session_hash", staff_id, keep_hash
    )
    return [r["session_hash"] for r in rows]


async def end_expired_sessions(
    conn: asyncpg.Connection, now: datetime, idle_s: float, absolute_s: float, limit: int = 500
) -> list[str]:
    """Delete sessions past their idle or absolute timeout (oldest first, `limit` at a time)."""
    rows = await conn.fetch(
        "DELETE FROM sessions WHERE session_hash IN (SELECT session_hash FROM sessions "
        "WHERE last_seen_at < $1::timestamptz - make_interval(secs => $2) "
        "OR created_at < $1::timestamptz - make_interval(secs => $3) "
        "ORDER BY last_seen_at LIMIT $4 FOR UPDATE SKIP LOCKED) RETURNING session_hash",
        now,
        idle_s,
        absolute_s,
        limit,
    )
    return [r["session_hash"] for r in rows]

"""Who may read an item with its access code: the one check behind the tracking API and page.

A wrong code counts against the tracking number itself (security review finding 5): after
MAX_MISSES within MISS_WINDOW_S the number answers "not found" to every code, the right one
included, for LOCK_S, whoever asks and from wherever. The per-address limit alone let a token
holder, or a script spread over many addresses, try all 10^8 codes of one item."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import structlog

from fengqiao.pii import BlindIndex
from intake import db
from intake.domain import access_code_matches

log = structlog.get_logger(__name__)

# 10 misses per 15 minutes: 10^8 codes would take some 140 years to search. The lock is short, because
# anyone who knows a tracking number (Open311 lists a station's newest) can set it off: the citizen
# is told it is locked and when to try again, and their SMS updates are not affected.
MAX_MISSES = 10
MISS_WINDOW_S = 15 * 60
LOCK_S = 15 * 60


class AccessLocked(Exception):
    """The tracking number is locked after too many wrong codes; try again after `retry_after_s`."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"locked for {retry_after_s} s")
        self.retry_after_s = retry_after_s


async def code_opens(conn: asyncpg.Connection, index: BlindIndex, row: asyncpg.Record, code: str | None) -> bool:
    """True if `code` opens the submission `row`; a wrong code is counted. A locked number opens for
    nobody: AccessLocked, whatever the code. A missing code is not a guess and is not counted."""
    tracking_no = row["tracking_no"]
    if not code:
        return False
    locked_until = await db.access_locked_until(conn, tracking_no)
    if locked_until is not None:
        raise AccessLocked(max(1, int((locked_until - datetime.now(UTC)).total_seconds())))
    if access_code_matches(index, tracking_no, code, row["access_code_hash"]):
        return True
    locked_until = await db.record_access_miss(
        conn, tracking_no, max_misses=MAX_MISSES, window_s=MISS_WINDOW_S, lock_s=LOCK_S
    )
    if locked_until is not None:
        await db.lock_access(conn, tracking_no, locked_until)
        log.warning("access_code_locked", station=row["station"], minutes=LOCK_S // 60)
    return False

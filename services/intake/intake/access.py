"""Who may read an item with its access code: the one check behind the tracking API and page.

A wrong code counts against the tracking number itself (security review finding 5): after
MAX_MISSES within MISS_WINDOW_S the number answers "not found" to every code, the right one
included, for LOCK_S, whoever asks and from wherever. The per-address limit alone let a token
holder, or a script spread over many addresses, try all 10^8 codes of one item."""

from __future__ import annotations

import asyncpg
import structlog

from fengqiao.pii import BlindIndex
from intake import db
from intake.domain import access_code_matches

log = structlog.get_logger(__name__)

MAX_MISSES = 5
MISS_WINDOW_S = 15 * 60
LOCK_S = 30 * 60


async def code_opens(conn: asyncpg.Connection, index: BlindIndex, row: asyncpg.Record, code: str | None) -> bool:
    """True if `code` opens the submission `row`; a wrong code is counted, and a locked number opens
    for nobody. A missing code is not a guess and is not counted."""
    tracking_no = row["tracking_no"]
    if not code:
        return False
    if await db.access_locked_until(conn, tracking_no) is not None:
        return False
    if access_code_matches(index, tracking_no, code, row["access_code_hash"]):
        return True
    locked_until = await db.record_access_miss(conn, tracking_no, max_misses=MAX_MISSES, window_s=MISS_WINDOW_S,
                                               lock_s=LOCK_S)
    if locked_until is not None:
        await db.lock_access(conn, tracking_no, locked_until)
        log.warning("access_code_locked", station=row["station"], minutes=LOCK_S // 60)
    return False

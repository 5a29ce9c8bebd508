"""Which resolution (办结) of a case is the current one: the return-visit survey is asked, and
answered, once per resolution."""

from __future__ import annotations

import asyncpg


async def count_resolutions(conn: asyncpg.Connection, tracking_no: str) -> int:
    """How often the case has been resolved (the latest resolution's number; 0 for none)."""
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM case_history WHERE tracking_no = $1 AND event = 'resolved'", tracking_no
        )
    )

"""A staff request's transaction (row-level security set for the principal) and its audit entry."""

from __future__ import annotations

import asyncpg

from fengqiao.auth import Principal
from fengqiao.outbox import Outbox, unit_of_work
from mediation import db

# Who sees confidential tip-offs (举报人保密) of their station besides the approved handlers.
SEES_CONFIDENTIAL = frozenset({"leader", "instructor", "bureau"})


class staff_unit(unit_of_work):
    """A staff request's transaction: run as the restricted role with the principal's station, and
    whether they may see confidential tip-offs, so PostgreSQL's row-level security enforces what the
    API already checks (and what a route forgot to)."""

    def __init__(self, pool: asyncpg.Pool, principal: Principal) -> None:
        super().__init__(pool)
        self.principal = principal
        self.station = "*" if principal.sees_all_stations else (principal.station or "-")

    async def __aenter__(self) -> tuple[asyncpg.Connection, Outbox]:
        conn, outbox = await super().__aenter__()
        try:
            p = self.principal
            confidential = p.role in SEES_CONFIDENTIAL or (
                p.staff_id is not None and await db.cases.is_confidential_handler(conn, p.staff_id, p.station)
            )
            await db.cases.enter_staff_scope(conn, self.station, confidential, p.staff_id or "")
        except BaseException as exc:
            await self.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return conn, outbox


async def audit(
    conn: asyncpg.Connection,
    principal: Principal,
    action: str,
    tracking_no: str | None,
    station: str | None,
    detail: str | None = None,
) -> None:
    """Who viewed or changed what: every case view and change is written to the audit log."""
    await db.cases.insert_audit(
        conn,
        staff_id=principal.staff_id or principal.token_id,
        role=principal.role,
        station=station,
        action=action,
        tracking_no=tracking_no,
        detail=detail,
    )


async def audit_refusal(pool: asyncpg.Pool, principal: Principal, tracking_no: str) -> None:
    """A case the caller was answered "not found" for: if that is because they are kept out of it
    (named in the complaint, or by the leader), the refusal goes to the audit log the leader reads.
    Its own transaction: the refused request's was rolled back."""
    if not principal.staff_id:
        return
    async with staff_unit(pool, principal) as (conn, _):
        excluded = await db.access.is_excluded(conn, tracking_no, principal.staff_id)
        if excluded is not None:
            await audit(conn, principal, "refused_excluded", tracking_no, excluded["station"])

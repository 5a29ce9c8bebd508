"""Mediation's staff JSON API (the console's backend). The skeleton lists cases; the full
lifecycle API comes with the case handling issue."""

from __future__ import annotations

from fastapi import APIRouter

from fengqiao.http import StaffPrincipal
from fengqiao.runtime import RuntimeDep
from mediation import db

router = APIRouter(prefix="/api/v1", tags=["cases"])


@router.get("/cases")
async def list_cases(rt: RuntimeDep, principal: StaffPrincipal, limit: int = 100) -> dict:
    station = None if principal.sees_all_stations else principal.station
    async with rt.pool.acquire() as conn:
        rows = await db.list_cases(conn, station, min(max(limit, 1), 500))
    return {"cases": [
        {**dict(r), "submitted_at": r["submitted_at"].isoformat(), "assigned_at": r["assigned_at"].isoformat(),
         "accept_due_at": r["accept_due_at"].isoformat()} for r in rows]}

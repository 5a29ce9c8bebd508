"""Mediation's staff JSON API (the console's backend). The skeleton lists cases; the full
lifecycle API comes with the case handling issue."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException

from fengqiao.auth import Principal, authenticate, bearer_token
from fengqiao.runtime import RuntimeDep
from mediation import db

router = APIRouter(prefix="/api/v1", tags=["cases"])


async def staff_principal(rt: RuntimeDep, authorization: Annotated[str | None, Header()] = None) -> Principal:
    async with rt.pool.acquire() as conn:
        principal = await authenticate(conn, bearer_token(authorization))
    if principal is None or not principal.is_staff:
        raise HTTPException(401, detail={"error": "unauthorized", "message": "需要工作人员令牌。"})
    return principal


StaffDep = Annotated[Principal, Depends(staff_principal)]


@router.get("/cases")
async def list_cases(rt: RuntimeDep, principal: StaffDep, limit: int = 100) -> dict:
    station = None if principal.sees_all_stations else principal.station
    async with rt.pool.acquire() as conn:
        rows = await db.list_cases(conn, station, min(max(limit, 1), 500))
    return {"cases": [
        {**dict(r), "submitted_at": r["submitted_at"].isoformat(), "assigned_at": r["assigned_at"].isoformat(),
         "accept_due_at": r["accept_due_at"].isoformat()} for r in rows]}

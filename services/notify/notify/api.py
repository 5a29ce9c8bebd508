"""Notify's staff API: the console inbox."""

from __future__ import annotations

from fastapi import APIRouter

from fengqiao.http import StaffPrincipal
from fengqiao.runtime import RuntimeDep
from notify import db

router = APIRouter(prefix="/api/v1", tags=["inbox"])


@router.get("/inbox")
async def my_inbox(rt: RuntimeDep, principal: StaffPrincipal) -> dict:
    async with rt.pool.acquire() as conn:
        rows = await db.inbox(conn, principal.staff_id)
    return {"notifications": [
        {**dict(r), "created_at": r["created_at"].isoformat(),
         "read_at": r["read_at"].isoformat() if r["read_at"] else None} for r in rows]}

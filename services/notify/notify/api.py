"""Notify's staff API: the console inbox."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException

from fengqiao.auth import Principal, authenticate, bearer_token
from fengqiao.runtime import RuntimeDep
from notify import db

router = APIRouter(prefix="/api/v1", tags=["inbox"])


async def staff_principal(rt: RuntimeDep, authorization: Annotated[str | None, Header()] = None) -> Principal:
    async with rt.pool.acquire() as conn:
        principal = await authenticate(conn, bearer_token(authorization))
    if principal is None or principal.staff_id is None:
        raise HTTPException(401, detail={"error": "unauthorized", "message": "需要工作人员令牌。"})
    return principal


@router.get("/inbox")
async def my_inbox(rt: RuntimeDep, principal: Annotated[Principal, Depends(staff_principal)]) -> dict:
    async with rt.pool.acquire() as conn:
        rows = await db.inbox(conn, principal.staff_id)
    return {"notifications": [
        {**dict(r), "created_at": r["created_at"].isoformat(),
         "read_at": r["read_at"].isoformat() if r["read_at"] else None} for r in rows]}

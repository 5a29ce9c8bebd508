"""FastAPI pieces every service's API shares: JSON errors and token-based principals.

Routes read like prose: `async def route(rt: RuntimeDep, staff: StaffPrincipal)`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, HTTPException

from fengqiao.auth import Principal, authenticate, bearer_token
from fengqiao.runtime import RuntimeDep


def api_error(status: int, code: str, message: str, field: str | None = None) -> HTTPException:
    """A JSON error: a stable machine code, a message for people (zh-CN), and the field at fault."""
    detail = {"error": code, "message": message}
    if field:
        detail["field"] = field
    return HTTPException(status_code=status, detail=detail)


async def optional_principal(rt: RuntimeDep, authorization: Annotated[str | None, Header()] = None) -> Principal | None:
    """None without an Authorization header; 401 for a token that is wrong or revoked."""
    token = bearer_token(authorization)
    if token is None:
        return None
    async with rt.pool.acquire() as conn:
        principal = await authenticate(conn, token)
    if principal is None:
        raise api_error(401, "invalid_token", "令牌无效或已吊销。")
    return principal


async def staff_principal(principal: Annotated[Principal | None, Depends(optional_principal)]) -> Principal:
    if principal is None or not principal.is_staff:
        raise api_error(401, "unauthorized", "需要工作人员令牌。")
    return principal


OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]
StaffPrincipal = Annotated[Principal, Depends(staff_principal)]

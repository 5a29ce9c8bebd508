"""The JSON error every API answers with: a stable code, a message for people (zh-CN), the field."""

from __future__ import annotations

from fastapi import HTTPException

_REQUEST_PARTS = ("body", "query", "path", "header")


def api_error(status: int, code: str, message: str, field: str | None = None) -> HTTPException:
    detail = {"error": code, "message": message}
    if field:
        detail["field"] = field
    return HTTPException(status_code=status, detail=detail)


def invalid_field(errors: list[dict]) -> HTTPException:
    """A 422 naming the first invalid field of a pydantic validation error list."""
    err = errors[0] if errors else {}
    loc = [str(x) for x in err.get("loc", ())]
    field = ".".join(loc[1:] if loc and loc[0] in _REQUEST_PARTS else loc) or "body"
    return api_error(422, "invalid_field", f"字段 {field} 无效：{err.get('msg', '')}", field=field)

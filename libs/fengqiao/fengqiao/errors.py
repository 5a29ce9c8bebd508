"""The JSON error every API answers with: a stable code, a message for people (zh-CN), the field."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import HTTPException
from pydantic import BaseModel, Field

_REQUEST_PARTS = ("body", "query", "path", "header")


def api_error(status: int, code: str, message: str, field: str | None = None) -> HTTPException:
    detail = {"error": code, "message": message}
    if field:
        detail["field"] = field
    return HTTPException(status_code=status, detail=detail)


def invalid_field(errors: Sequence[Mapping[str, Any]]) -> HTTPException:
    """A 422 naming the first invalid field of a pydantic validation error list."""
    err = errors[0] if errors else {}
    loc = [str(x) for x in err.get("loc", ())]
    field = ".".join(loc[1:] if loc and loc[0] in _REQUEST_PARTS else loc) or "body"
    return api_error(422, "invalid_field", f"字段 {field} 无效：{err.get('msg', '')}", field=field)


class ErrorDetail(BaseModel):
    error: str = Field(description="a stable code, e.g. invalid_field, not_found, body_too_large")
    message: str = Field(description="what went wrong, for people (zh-CN)")
    field: str | None = Field(default=None, description="the field at fault, if one is")


class ErrorResponse(BaseModel):
    """Every 4xx of the JSON APIs (`api_error`), validation errors included."""

    detail: ErrorDetail


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Make an OpenAPI document say what the services answer on a 4xx: the ErrorResponse above, in
    place of FastAPI's HTTPValidationError, which no route sends (every service turns validation
    errors into `invalid_field`). On the JSON APIs (/api/) every 4xx has that shape; Open311 keeps
    GeoReport's own errors for the rest."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    error_schema = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(error_schema.pop("$defs"))
    components["ErrorResponse"] = error_schema
    documented = {
        "description": "refused: the error code, a message, the field at fault",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }
    for path, item in schema.get("paths", {}).items():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            if path.startswith("/api/"):
                responses.pop("422", None)
                responses["4XX"] = documented
            elif "422" in responses:
                responses["422"] = documented
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema

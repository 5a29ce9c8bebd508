"""The JSON error every API answers with: a stable code, a message for people (zh-CN), the field."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import HTTPException
from pydantic import BaseModel, Field

_REQUEST_PARTS = ("body", "query", "path", "header", "cookie")

# Labels pydantic puts into `loc` for a member of a plain union (`int | str` -> "int"); not fields.
_TYPE_LABELS = frozenset({"str", "int", "float", "bool", "bytes", "none", "list", "dict", "set", "tuple"})

# Our own validators raise ValueError in English (they serve logs and events too); what people read.
_VALUE_ERRORS: tuple[tuple[str, str], ...] = (
    ("phone number", "不是有效的电话号码"),
    ("e-mail", "不是有效的电子邮箱地址"),
    ("nul", "不能包含 NUL 字符"),
    ("timezone", "须为带时区的 RFC 3339 时间"),
    ("must not be blank", "不能为空"),
    ("base64", "不是有效的 base64 编码"),
    ("png, jpeg or pdf", "须为 PNG、JPEG 或 PDF 文件"),
    ("http, https or file", "须为 http、https 或 file 地址"),
    ("is before", "早于开始时间"),
    ("must be one of", "取值不在允许范围内"),
    ("in the future", "不能晚于当前时间"),
)


def _values(expected: object) -> str:
    """pydantic's "'a', 'b' or 'c'" as 「a、b、c」 (the values stay as the client must send them)."""
    parts = re.split(r",\s*|\s+or\s+", str(expected))
    return "、".join(p.strip().strip("'\"") for p in parts if p.strip())


def _value_error(ctx: Mapping[str, Any]) -> str:
    text = str(ctx.get("error", "")).lower()
    return next((zh for en, zh in _VALUE_ERRORS if en in text), "取值无效")


_REASONS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "missing": lambda c: "为必填项",
    "missing_argument": lambda c: "为必填项",
    "union_tag_not_found": lambda c: "为必填项",
    "string_too_long": lambda c: f"不能超过 {c.get('max_length')} 个字符",
    "string_too_short": lambda c: "不能为空" if c.get("min_length") == 1 else f"不能少于 {c.get('min_length')} 个字符",
    "too_long": lambda c: f"最多 {c.get('max_length')} 项",
    "too_short": lambda c: "不能为空" if c.get("min_length") == 1 else f"至少 {c.get('min_length')} 项",
    "string_pattern_mismatch": lambda c: "格式不正确",
    "string_type": lambda c: "须为文本",
    "int_parsing": lambda c: "须为数字",
    "float_parsing": lambda c: "须为数字",
    "decimal_parsing": lambda c: "须为数字",
    "int_type": lambda c: "须为整数",
    "int_from_float": lambda c: "须为整数",
    "float_type": lambda c: "须为数字",
    "finite_number": lambda c: "须为有限的数字",
    "greater_than_equal": lambda c: f"不能小于 {c.get('ge')}",
    "greater_than": lambda c: f"须大于 {c.get('gt')}",
    "less_than_equal": lambda c: f"不能大于 {c.get('le')}",
    "less_than": lambda c: f"须小于 {c.get('lt')}",
    "literal_error": lambda c: f"须为以下之一：{_values(c.get('expected', ''))}",
    "enum": lambda c: f"须为以下之一：{_values(c.get('expected', ''))}",
    "union_tag_invalid": lambda c: f"须为以下之一：{_values(c.get('expected_tags', ''))}",
    "extra_forbidden": lambda c: "为不支持的字段",
    "datetime_parsing": lambda c: "须为 RFC 3339 时间",
    "datetime_from_date_parsing": lambda c: "须为 RFC 3339 时间",
    "datetime_type": lambda c: "须为 RFC 3339 时间",
    "timezone_aware": lambda c: "须为带时区的 RFC 3339 时间",
    "date_parsing": lambda c: "须为日期（YYYY-MM-DD）",
    "date_from_datetime_parsing": lambda c: "须为日期（YYYY-MM-DD）",
    "date_type": lambda c: "须为日期（YYYY-MM-DD）",
    "bool_parsing": lambda c: "须为 true 或 false",
    "bool_type": lambda c: "须为 true 或 false",
    "url_parsing": lambda c: "不是有效的网址",
    "url_type": lambda c: "不是有效的网址",
    "url_scheme": lambda c: "的网址协议不受支持",
    "uuid_parsing": lambda c: "不是有效的 UUID",
    "list_type": lambda c: "须为列表",
    "dict_type": lambda c: "须为对象",
    "model_type": lambda c: "须为对象",
    "model_attributes_type": lambda c: "须为对象",
    "value_error": _value_error,
    "assertion_error": _value_error,
}


def _field(loc: Sequence[Any], body: object = None) -> str:
    """The field a person would fix, from pydantic's `loc`: without the request part, without the
    discriminated union's tag or a plain union's member label, list positions as `items[0]`. With the
    body the location is walked through it, so a tag is told from a field by what was sent."""
    parts = list(loc)
    in_body = bool(parts) and parts[0] == "body"
    if parts and parts[0] in _REQUEST_PARTS:
        parts = parts[1:]
    node: object = body if in_body or (bool(loc) and loc[0] not in _REQUEST_PARTS) else None
    names: list[str] = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(part, int):
            if names:
                names[-1] += f"[{part}]"
            else:
                names.append(f"[{part}]")
            node = node[part] if isinstance(node, list) and -len(node) <= part < len(node) else None
            continue
        text = str(part)
        if isinstance(node, dict) and text in node:
            node = node[text]  # what was sent: a field
        elif "[" in text or (text in _TYPE_LABELS and last and len(parts) > 1):
            continue  # a union member's label, e.g. "function-after[...]" or "int"
        elif isinstance(node, dict) and not last:
            continue  # not sent, and not the end: a discriminated union's tag
        else:
            node = None
        names.append(text)
    return ".".join(names)


def _describe(err: Mapping[str, Any], body: object = None) -> tuple[str, str]:
    """The field at fault and a zh-CN sentence naming it."""
    kind = str(err.get("type", ""))
    ctx: Mapping[str, Any] = err.get("ctx") or {}
    if kind == "json_invalid":
        return "body", "请求体不是有效的 JSON。"
    field = _field(err.get("loc", ()), body)
    if kind.startswith("union_tag"):
        field = ".".join(p for p in (field, str(ctx.get("discriminator", "")).strip("'\"")) if p)
    if not field:
        if kind in ("model_attributes_type", "model_type", "dict_type"):
            return "body", "请求体必须是 JSON 对象。"
        field = "body"
    reason = _REASONS.get(kind)
    return field, f"字段 {field} {reason(ctx)}。" if reason else f"字段 {field} 的取值无效，请检查后重试。"


def api_error(status: int, code: str, message: str, field: str | None = None) -> HTTPException:
    detail = {"error": code, "message": message}
    if field:
        detail["field"] = field
    return HTTPException(status_code=status, detail=detail)


def invalid_field(errors: Sequence[Mapping[str, Any]], body: object = None) -> HTTPException:
    """A 422 naming the first invalid field of a pydantic validation error list, in zh-CN. `body` is
    what was validated (FastAPI's `RequestValidationError.body`), to tell a union's tag from a field."""
    field, message = _describe(errors[0] if errors else {}, body)
    return api_error(422, "invalid_field", message, field=field)


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

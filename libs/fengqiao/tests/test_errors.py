"""Unit tests of the 422 every JSON API answers: a zh-CN message from pydantic's error type, and the
field a person would fix."""

from __future__ import annotations

import enum
import re
from datetime import datetime
from typing import Annotated, Any, Literal

import pytest
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, TypeAdapter, ValidationError

from fengqiao.errors import invalid_field
from fengqiao.events import FeedbackSubmitted


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


def _no_base64(value: str) -> str:
    if value == "!":
        raise ValueError("not valid base64")
    if value == "?":
        raise ValueError("something nobody mapped")
    return value


class Thing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    command: Literal["thing"] = "thing"
    name: Annotated[str, Field(min_length=2, max_length=5, pattern="^[a-z]+$")]
    count: Annotated[int, Field(ge=1, le=9)] = 1
    ratio: float = 0.5
    at: datetime | None = None
    flag: bool = False
    url: HttpUrl | None = None
    colour: Colour = Colour.RED
    kind: Literal["a", "b", "c"] = "a"
    scan: Annotated[str, AfterValidator(_no_base64)] = "x"
    either: int | bool = 1


class Other(BaseModel):
    command: Literal["other"] = "other"


Command = Annotated[Thing | Other, Field(discriminator="command")]


class Batch(BaseModel):
    items: list[Thing]


def _refusal(doc: object, target: Any = Command, *, with_body: bool = True) -> tuple[str, str]:
    with pytest.raises(ValidationError) as caught:
        TypeAdapter(target).validate_python(doc)
    detail = invalid_field(caught.value.errors(), doc if with_body else None).detail
    assert detail["error"] == "invalid_field"
    return detail["field"], detail["message"]


def _is_chinese(message: str, *allowed: str) -> bool:
    """No ASCII letters but those of the field name and the values the client may send."""
    for word in sorted(allowed, key=len, reverse=True):
        message = message.replace(word, "")
    return re.search(r"[A-Za-z]", message) is None


OK = {"command": "thing", "name": "abc"}


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"name": None}, "name", "必填"),
        ({"name": "abcdefg"}, "name", "不能超过 5 个字符"),
        ({"name": "a"}, "name", "不能少于 2 个字符"),
        ({"name": "ABC"}, "name", "格式不正确"),
        ({"count": "x"}, "count", "须为数字"),
        ({"ratio": "x"}, "ratio", "须为数字"),
        ({"count": 0}, "count", "不能小于 1"),
        ({"count": 10}, "count", "不能大于 9"),
        ({"at": "yesterday"}, "at", "RFC 3339"),
        ({"flag": "maybe"}, "flag", "true 或 false"),
        ({"url": "nope"}, "url", "网址"),
        ({"colour": "green"}, "colour", "red、blue"),
        ({"kind": "z"}, "kind", "a、b、c"),
        ({"scan": "!"}, "scan", "base64"),
        ({"scan": "?"}, "scan", "取值无效"),
        ({"surplus": 1}, "surplus", "不支持的字段"),
        ({"either": [1]}, "either", "须为"),
    ],
)
def test_each_refusal_is_chinese_and_names_the_field(change: dict[str, Any], field: str, says: str) -> None:
    doc = {**OK, **change}
    if change.get("name", "") is None:
        del doc["name"]
    got_field, message = _refusal(doc)
    assert got_field == field
    assert says in message
    assert _is_chinese(message, field, "RFC", "true", "false", "red", "blue", "a", "b", "c", "base64")


def test_a_discriminated_command_names_its_field_not_its_tag() -> None:
    assert _refusal({"command": "thing"}) == ("name", "字段 name 为必填项。")
    field, message = _refusal({"command": "nonsense"})
    assert field == "command"
    assert "thing、other" in message and _is_chinese(message, "command", "thing", "other")
    assert _refusal({}) == ("command", "字段 command 为必填项。")


def test_a_list_names_the_item() -> None:
    field, message = _refusal({"items": [OK, {"name": 1}]}, Batch)
    assert field == "items[1].name"
    assert _is_chinese(message, "items", "name")
    assert _refusal([OK, {"command": "thing"}], list[Command])[0] == "[1].name"


def test_without_the_body_a_union_label_is_still_not_a_field() -> None:
    assert _refusal({**OK, "either": [1]}, Thing, with_body=False)[0] == "either"


def test_an_english_validator_message_becomes_chinese() -> None:
    with pytest.raises(ValidationError) as caught:
        FeedbackSubmitted.model_validate(
            {"station": "X", "channel": "web", "content": "  ", "reporter": {"phone": "abc"}, "location": {}}
        )
    for err in caught.value.errors():
        message = invalid_field([err]).detail["message"]
        assert _is_chinese(message, *(str(p) for p in err["loc"])), message


def test_the_request_part_is_not_part_of_the_field() -> None:
    app = FastAPI()

    @app.exception_handler(RequestValidationError)
    async def refuse(request: Any, exc: RequestValidationError) -> JSONResponse:
        error = invalid_field(exc.errors(), exc.body)
        return JSONResponse({"detail": error.detail}, status_code=error.status_code)

    @app.post("/commands")
    async def command(body: Command, days: int = 1) -> dict[str, str]:
        return {}

    client = TestClient(app)
    answer = client.post("/commands", json={"command": "thing"})
    assert answer.status_code == 422
    assert answer.json()["detail"] == {"error": "invalid_field", "message": "字段 name 为必填项。", "field": "name"}
    assert client.post("/commands?days=x", json=OK).json()["detail"]["field"] == "days"
    broken = client.post("/commands", content=b'{"command": ', headers={"Content-Type": "application/json"})
    assert broken.json()["detail"]["field"] == "body"
    assert _is_chinese(broken.json()["detail"]["message"], "JSON")

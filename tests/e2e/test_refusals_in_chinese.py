"""Every refusal of the JSON APIs in Chinese, naming the field a person would fix (issue 13): bad bodies
posted to intake's feedback API and to mediation's case commands through the running services."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.e2e.helpers import staff_get, submit, token

pytestmark = pytest.mark.e2e


def refusal(r: httpx.Response) -> dict:
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail["error"] == "invalid_field"
    return detail


def is_chinese(message: str, *allowed: str) -> bool:
    """No ASCII letters but the field's name and the values the client may send."""
    for word in sorted(allowed, key=len, reverse=True):
        message = message.replace(word, "")
    return re.search(r"[A-Za-z]", message) is None and re.search(r"[\u4e00-\u9fff]", message) is not None


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"station": "KZ01"}, "content", "必填"),
        ({"station": "KZ01", "content": "路" * 5001}, "content", "不能超过 5000 个字符"),
        ({"station": "KZ01", "content": "   "}, "content", "不能为空"),
        ({"station": "KZ01", "content": "路灯坏了", "reporter": {"phone": "call me"}}, "reporter.phone", "电话"),
        ({"station": "KZ01", "content": "路灯坏了", "occurred_at": "昨天晚上"}, "occurred_at", "RFC 3339"),
        ({"station": "KZ01", "content": "路灯坏了", "channel": "pigeon"}, "channel", "须为以下之一"),
    ],
)
def test_intake_refuses_a_bad_feedback_body_in_chinese_naming_the_field(stack, body, field, says):
    detail = refusal(httpx.post(f"{stack['urls']['intake']}/api/v1/feedback", json=body, timeout=10))
    assert detail["field"] == field
    assert says in detail["message"]
    # the allowed channels are named as the client must send them
    allowed = re.findall(r"[a-z_0-9]+", detail["message"].split("：", 1)[1]) if field == "channel" else []
    assert is_chinese(detail["message"], field, "RFC", *allowed), detail["message"]


def test_mediation_refuses_a_command_with_a_missing_field_naming_that_field_not_the_command(stack):
    no = submit(stack, "KZ01", "矿区东门路灯坏了三盏，晚上很黑")["tracking_no"]
    cases = f"{stack['urls']['mediation']}/api/v1/cases/{no}"
    staff = token(stack, "KZ01-LD")
    assert staff_get(cases, staff).status_code == 200  # assigned: the case is there to be refused on
    for url, body in ((f"{cases}/commands", {"command": "resolve"}), (f"{cases}/resolve", {})):
        detail = refusal(httpx.post(url, json=body, headers=staff, timeout=10))
        assert detail["field"] == "summary"  # not "resolve.summary": the command's tag is no field
        assert detail["message"] == "字段 summary 为必填项。"
    detail = refusal(httpx.post(f"{cases}/commands", json={"command": "fly"}, headers=staff, timeout=10))
    assert detail["field"] == "command"
    allowed = re.findall(r"[a-z_]+", detail["message"].split("：", 1)[1])
    assert "resolve" in allowed and is_chinese(detail["message"], "command", *allowed)
    detail = refusal(httpx.post(f"{cases}/reassign", json={"assignee_id": "x" * 65}, headers=staff, timeout=10))
    assert detail["field"] == "assignee_id" and detail["message"] == "字段 assignee_id 不能超过 64 个字符。"

"""Unit tests: personal data never reaches the logs; tokens are checked by hash."""

from __future__ import annotations

import io
import json

import pytest
import structlog

from fengqiao.auth import Principal, bearer_token, hash_token, new_token, principal_from_row
from fengqiao.logging import configure_logging, redact_text


def test_phone_id_and_email_patterns_are_masked():
    text = "来电 13800138000，身份证 11010519491231002X，邮箱 a.b@example.cn"
    masked = redact_text(text)
    assert "13800138000" not in masked and "11010519491231002X" not in masked and "example.cn" not in masked
    assert masked.count("[redacted]") == 3


@pytest.fixture
def log_lines():
    stream = io.StringIO()
    configure_logging("test", stream=stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def test_personal_keys_are_dropped_from_log_lines(log_lines):
    structlog.get_logger("t").info(
        "submission_accepted",
        tracking_no="FQ23456789",
        phone="13800138000",
        content="张三打人",
        detail="call 13912345678",
    )
    line = log_lines()[-1]
    assert line["tracking_no"] == "FQ23456789"
    assert line["phone"] == "[redacted]" and line["content"] == "[redacted]"
    assert "13912345678" not in line["detail"]


def test_tokens_are_random_and_only_their_hash_is_compared():
    a, b = new_token(), new_token()
    assert a != b and a.startswith("fq_") and len(a) > 40
    assert hash_token(a) != hash_token(b) and len(hash_token(a)) == 64


def test_bearer_header_parsing():
    assert bearer_token("Bearer fq_abc") == "fq_abc"
    assert bearer_token("bearer  fq_abc ") == "fq_abc"
    assert bearer_token("Basic xyz") is None and bearer_token(None) is None and bearer_token("Bearer ") is None


def test_station_visibility():
    officer = Principal("t1", "officer", "KZ01", "KZ01-P1")
    bureau = Principal("t2", "bureau", None, "BUREAU-01")
    assert officer.can_see_station("KZ01") and not officer.can_see_station("KZ02")
    assert bureau.can_see_station("KZ02")
    integration = Principal("t3", "integration", None, None)
    assert officer.may_file_for("KZ01") and not officer.may_file_for("KZ02")
    assert integration.may_file_for("KZ02") and bureau.may_file_for("KZ01")


def test_a_station_role_without_a_station_or_an_unknown_role_is_no_principal():
    def row(role, station):
        return {"token_id": "t", "role": role, "station": station, "staff_id": None}

    assert principal_from_row(row("leader", None)) is None  # would have seen every station in triage and notify
    assert principal_from_row(row("officer", "")) is None
    assert principal_from_row(row("superuser", None)) is None
    assert principal_from_row(row("leader", "KZ01")) == Principal("t", "leader", "KZ01", None)
    assert principal_from_row(row("bureau", None)).sees_all_stations
    assert principal_from_row(row("integration", None)) is not None


def test_an_email_after_a_long_chinese_sentence_is_masked():
    text = (
        "我在矿区派出所附近住了很多年了一直没有遇到这样的问题"
        "但是最近楼上邻居每天晚上都很吵实在受不了我的邮箱是zhangsan.work@qq.com"
    )
    assert "zhangsan" not in redact_text(text) and "qq.com" not in redact_text(text)

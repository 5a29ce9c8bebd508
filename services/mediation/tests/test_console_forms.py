"""Small pure parts of the console's forms: ids read from forms, the reception form's own time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mediation.console_common import row_id
from mediation.console_reception import new_request_id, request_time

NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)


def test_a_form_id_is_ascii_digits_within_bigint() -> None:
    assert row_id("42") == 42
    assert row_id("²") is None  # a digit to str.isdigit, not to int
    assert row_id("0") is None and row_id("-1") is None and row_id("1" * 19) is None
    assert row_id(None) is None


def test_a_reloaded_reception_form_sends_the_time_it_was_opened() -> None:
    opened = NOW - timedelta(minutes=3)
    request_id = new_request_id(opened)
    assert request_time(request_id, NOW) == opened.replace(microsecond=0)
    assert request_time(request_id, NOW + timedelta(hours=1)) == opened.replace(microsecond=0)
    # an id without a time, a forged future or an old one: now
    assert request_time("abc", NOW) == NOW
    assert request_time("abc-99999999999", NOW) == NOW
    assert request_time(new_request_id(NOW - timedelta(days=3)), NOW) == NOW

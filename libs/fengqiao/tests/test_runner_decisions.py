"""Unit tests of the consumer runner's decision logic."""

from __future__ import annotations

import asyncpg
import pytest

from fengqiao.events import PoisonMessage
from fengqiao.kafka import backoff_delay, decide


def test_poison_is_dead_lettered_at_once():
    d = decide(PoisonMessage("bad_json"), attempt=1, max_attempts=5, dead_letter_after=3)
    assert d.action == "dead_letter" and d.reason == "bad_json"


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(),
        TimeoutError(),
        asyncpg.CannotConnectNowError("starting"),
        asyncpg.exceptions.ConnectionDoesNotExistError("gone"),
        asyncpg.SerializationError("retry"),
    ],
)
def test_infrastructure_failures_are_retried_then_sought_back_never_dead_lettered(exc):
    actions = [decide(exc, attempt=a, max_attempts=5, dead_letter_after=3).action for a in range(1, 6)]
    assert actions == ["retry"] * 4 + ["seek_back"]


def test_unexplained_errors_are_retried_a_few_times_then_dead_lettered():
    exc = KeyError("bug")
    actions = [decide(exc, attempt=a, max_attempts=5, dead_letter_after=3).action for a in range(1, 4)]
    assert actions == ["retry", "retry", "dead_letter"]
    assert decide(exc, attempt=3, max_attempts=5, dead_letter_after=3).reason == "handler_error:KeyError"


def test_backoff_grows_and_is_capped():
    delays = [backoff_delay(a, base=0.2, cap=5.0, jitter=0) for a in range(1, 10)]
    assert delays[:4] == [0.2, 0.4, 0.8, 1.6]
    assert max(delays) == 5.0
    assert all(0.18 <= backoff_delay(1, jitter=0.1) <= 0.22 for _ in range(50))


def test_data_postgresql_refuses_is_dead_lettered_at_once_not_retried():
    """A NUL or an out-of-range value never succeeds: retrying it three times with backoff let a
    hostile publisher slow a consumer to about 1.5 records a second (review of the hardening)."""
    d = decide(
        asyncpg.CharacterNotInRepertoireError("invalid byte sequence for encoding UTF8: 0x00"),
        attempt=1,
        max_attempts=5,
        dead_letter_after=3,
    )
    assert d.action == "dead_letter" and d.reason == "invalid_data:CharacterNotInRepertoireError"

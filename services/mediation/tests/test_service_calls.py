"""The console's calls to intake and notify fail in words, never with a 500 (issue 16)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from mediation.service_calls import NotYetSynced, Services, Unreachable, inbox, submit_feedback


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_service_that_is_down_is_named_in_chinese():
    down = Services(f"http://127.0.0.1:{closed_port()}", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(Unreachable, match="通知服务暂时无法连接"):
        asyncio.run(inbox(down, "fq_x"))
    with pytest.raises(Unreachable, match="受理服务暂时无法连接"):
        asyncio.run(submit_feedback(down, "fq_x", {"content": "x"}))


def test_no_token_yet_means_syncing_not_an_error():
    with pytest.raises(NotYetSynced, match="正在同步"):
        asyncio.run(inbox(Services("http://127.0.0.1:9", "http://127.0.0.1:9"), ""))

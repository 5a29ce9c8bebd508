"""Unit tests of the client address used for rate limits."""

from __future__ import annotations

from starlette.requests import Request

from fengqiao.ratelimit import RateLimits


def request(peer: str, forwarded: str | None = None) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return Request({"type": "http", "client": (peer, 1234), "headers": headers, "method": "GET", "path": "/"})


def test_forwarded_for_is_trusted_only_from_a_trusted_proxy():
    limits = RateLimits({"x": "2/minute"}, trusted_proxies=frozenset({"10.0.0.2"}))
    assert limits.client_address(request("10.0.0.2", "203.0.113.7")) == "203.0.113.7"
    assert limits.client_address(request("203.0.113.8", "1.2.3.4")) == "203.0.113.8"  # spoofing ignored
    assert limits.client_address(request("10.0.0.2", "1.2.3.4, 203.0.113.7, 10.0.0.2")) == "203.0.113.7"


def test_limit_counts_per_address():
    limits = RateLimits({"x": "2/minute"})
    a, b = request("203.0.113.1"), request("203.0.113.2")
    assert [limits.allow("x", a)[0] for _ in range(3)] == [True, True, False]
    assert limits.allow("x", b)[0] is True

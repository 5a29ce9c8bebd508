"""Per-client-address rate limits for public endpoints (moving window, `limits` library).

In-process: each replica counts on its own, which bounds abuse per replica; the limits are set
so that a person never meets them and a script soon does. Behind a reverse proxy, list its
addresses in TRUSTED_PROXIES so the client's address is taken from X-Forwarded-For."""

from __future__ import annotations

import time

from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.requests import Request


class RateLimits:
    def __init__(self, rules: dict[str, str], trusted_proxies: frozenset[str] = frozenset()) -> None:
        self._rules = {name: parse_many(spec) for name, spec in rules.items()}
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self.trusted_proxies = trusted_proxies

    def client_address(self, request: Request) -> str:
        peer = request.client.host if request.client else "unknown"
        if peer in self.trusted_proxies:
            forwarded = request.headers.get("x-forwarded-for", "")
            hops = [h.strip() for h in forwarded.split(",") if h.strip()]
            for hop in reversed(hops):  # the nearest hop that is not one of our proxies
                if hop not in self.trusted_proxies:
                    return hop
        return peer

    def allow(self, name: str, request: Request) -> tuple[bool, int]:
        """Counts one hit; (allowed, seconds to wait when not)."""
        key = self.client_address(request)
        for item in self._rules[name]:
            if not self._limiter.hit(item, name, key):
                reset_at, _ = self._limiter.get_window_stats(item, name, key)
                return False, max(1, int(reset_at - time.time()))
        return True, 0

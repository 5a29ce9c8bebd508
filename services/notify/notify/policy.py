"""The delivery rules as pure functions of a given time: retry backoff, quiet hours for citizen
SMS, per-recipient rate limits. The worker passes its clock in, so tests control time."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo

import limits

from fengqiao.constants import STATION_TZ


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with a cap and an attempt limit. `attempts` counts the attempts made
    so far, the failed one included."""

    base_s: float = 30.0
    cap_s: float = 3600.0
    max_attempts: int = 8
    jitter: float = 0.1  # +-10%, so a recovered gateway is not hit by every retry at once

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts

    def delay(self, attempts: int, rand: random.Random | None = None) -> timedelta:
        seconds = min(self.cap_s, self.base_s * 2 ** max(0, attempts - 1))
        spread = (rand or random).uniform(-self.jitter, self.jitter) if self.jitter else 0.0
        return timedelta(seconds=seconds * (1 + spread))


@dataclass(frozen=True)
class QuietHours:
    """A nightly window (local station time) in which citizen SMS wait, e.g. 21:00-08:00."""

    start: time
    end: time
    tz: tzinfo = STATION_TZ

    @classmethod
    def parse(cls, text: str, tz: tzinfo = STATION_TZ) -> QuietHours | None:
        """ "21:00-08:00"; empty or "off" means no quiet hours."""
        text = (text or "").strip()
        if text.lower() in ("", "off", "none"):
            return None
        try:
            a, b = (part.strip() for part in text.split("-"))
            start, end = time.fromisoformat(a), time.fromisoformat(b)
        except ValueError as exc:
            raise ValueError(f"QUIET_HOURS must look like 21:00-08:00, got {text!r}") from exc
        if start == end:
            raise ValueError("QUIET_HOURS start and end must differ")
        return cls(start, end, tz)

    def contains(self, now: datetime) -> bool:
        t = now.astimezone(self.tz).time()
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end  # over midnight

    def release_at(self, now: datetime) -> datetime | None:
        """When a message held at `now` may go, or None if it may go now."""
        if not self.contains(now):
            return None
        local = now.astimezone(self.tz)
        release = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if release <= local:
            release += timedelta(days=1)
        return release


def rate_limits(text: str) -> list[tuple[int, timedelta]]:
    """Per-recipient limits in the `limits` notation ("3 per 10 minutes;10/day") as
    (amount, window) pairs; empty means none."""
    text = (text or "").strip()
    if not text:
        return []
    return [(item.amount, timedelta(seconds=item.get_expiry())) for item in limits.parse_many(text)]


def rate_limited_until(
    recent_sent: list[datetime], now: datetime, windows: list[tuple[int, timedelta]]
) -> datetime | None:
    """`recent_sent`: when earlier messages to this recipient on this channel went (any order).
    None if one more may go now, else the earliest time it may."""
    until = None
    for amount, window in windows:
        inside = sorted((t for t in recent_sent if t > now - window), reverse=True)
        if len(inside) >= amount:
            free_at = inside[amount - 1] + window  # when the amount-th newest leaves the window
            until = free_at if until is None else max(until, free_at)
    return until

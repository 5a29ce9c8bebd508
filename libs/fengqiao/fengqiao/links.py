"""Signed, expiring links (the return-visit survey link notify sends and intake opens).

A token is `<subject>.<expiry unix seconds>.<base64url HMAC-SHA256>` over purpose, subject and
expiry, under FENGQIAO_LINK_KEY, which both services share. The survey link's subject names the resolution
it asks about (`<tracking no>-<n>`): a case resolved again after a reopening gets a new link, and
its answer is a new one."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time


class LinkInvalid(ValueError):
    pass


class LinkExpired(ValueError):
    pass


def _mac(key: bytes, purpose: str, subject: str, expires: int) -> str:
    digest = hmac.new(key, f"{purpose}|{subject}|{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def key_from_setting(value: str | None) -> bytes:
    if not value:
        raise LinkInvalid("FENGQIAO_LINK_KEY is not set (base64 of 32 random bytes)")
    key = base64.b64decode(value.strip())
    if len(key) < 32:
        raise LinkInvalid("FENGQIAO_LINK_KEY must be at least 32 bytes")
    return key


def sign(key: bytes, purpose: str, subject: str, *, valid_for_s: int, now: float | None = None) -> str:
    if "." in subject:
        raise ValueError("subject must not contain '.'")
    expires = int((now if now is not None else time.time()) + valid_for_s)
    return f"{subject}.{expires}.{_mac(key, purpose, subject, expires)}"


def verify(key: bytes, purpose: str, token: str, *, now: float | None = None) -> str:
    """The subject of a valid token; LinkInvalid if forged or malformed, LinkExpired if late."""
    try:
        subject, expires_text, mac = token.strip().split(".")
        expires = int(expires_text)
    except ValueError as exc:
        raise LinkInvalid("malformed link") from exc
    # Bytes, not str: compare_digest raises TypeError on a non-ASCII str (a 500 for a pasted link).
    if not hmac.compare_digest(mac.encode(), _mac(key, purpose, subject, expires).encode()):
        raise LinkInvalid("bad signature")
    if (now if now is not None else time.time()) > expires:
        raise LinkExpired("link expired")
    return subject


def survey_subject(tracking_no: str, resolution: int | None) -> str:
    """The subject of the survey link for one resolution of a case (none given: the tracking number)."""
    return f"{tracking_no}-{resolution}" if resolution else tracking_no


def parse_survey_subject(subject: str) -> tuple[str, int]:
    """(tracking no, resolution) of a survey link's subject; a link naming no resolution is the first's."""
    tracking_no, sep, n = subject.partition("-")
    if not sep:
        return tracking_no, 1
    if not (n.isascii() and n.isdigit()) or int(n) < 1:
        raise LinkInvalid("malformed survey subject")
    return tracking_no, int(n)

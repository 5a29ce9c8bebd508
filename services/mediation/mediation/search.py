"""Finding cases in the console by tracking number, by the reporter's phone (the blind index
intake computes) or by words (keyed character pairs: migration 0025). Pure functions; the SQL is in
db/search.py."""

from __future__ import annotations

import re
import unicodedata

from fengqiao.pii import BlindIndex, normalise_phone

MAX_PAIRS = 600  # a long message keeps the pairs of its first characters only
_DROP = re.compile(r"[\s\W_]+", re.UNICODE)  # spaces and punctuation do not separate words in Chinese
TRACKING_NO = re.compile(r"^FQ[0-9A-Z]{4,62}$")  # intake's numbers: FQ and eight letters or digits


def tracking_no(typed: str) -> str | None:
    """The tracking number typed, as intake writes it (upper case, no spaces or dashes), or None."""
    plain = typed.strip().upper().replace("-", "").replace(" ", "")
    return plain if TRACKING_NO.match(plain) else None


def normalise(text: str) -> str:
    """Full-width to half-width, lower case, without spaces and punctuation."""
    return _DROP.sub("", unicodedata.normalize("NFKC", text).lower())


def pairs(text: str) -> list[str]:
    """The distinct character pairs of `text`, in order of first appearance."""
    plain = normalise(text)
    seen: dict[str, None] = {}
    for i in range(len(plain) - 1):
        seen.setdefault(plain[i : i + 2], None)
        if len(seen) >= MAX_PAIRS:
            break
    return list(seen)


def pair_key(index: BlindIndex, pair: str) -> int:
    """A signed 32-bit keyed hash of one pair (PostgreSQL `integer`)."""
    value = int(index.of(pair, purpose="words")[:8], 16)
    return value - 2**32 if value >= 2**31 else value


def word_keys(index: BlindIndex, *texts: str | None) -> list[int]:
    keys: dict[int, None] = {}
    for text in texts:
        for pair in pairs(text or ""):
            keys.setdefault(pair_key(index, pair), None)
    return list(keys)


def phone_key(index: BlindIndex, typed: str) -> str | None:
    """The reporter key of a typed phone number (as intake keys it), None if it is not one."""
    try:
        return index.of(normalise_phone(typed), purpose="phone")
    except ValueError:
        return None


def looks_like_phone(typed: str) -> bool:
    digits = re.sub(r"[\s+()-]", "", typed)
    return digits.isdigit() and 7 <= len(digits) <= 15


def contains(haystack: dict[str, str | None] | None, typed: str) -> bool:
    """Whether the opened words really contain what was typed (the pairs only narrow the search)."""
    if not haystack:
        return False
    needle = normalise(typed)
    return any(needle in normalise(v) for v in haystack.values() if isinstance(v, str))

"""Near-duplicate detection (并单). Pure.

MinHash (datasketch, 64 permutations) over character 3-grams of the text; locality-sensitive
hashing with 16 bands of 4 rows finds candidates whose similarity is likely above ~0.5 without
comparing against every open item. A candidate is merged when:

- the texts are near-identical (estimated Jaccard >= 0.8), or
- they are similar (>= 0.5) and come from the same reporter, or from the same place in the same
  category, or
- the same reporter reports the same category again, at the same place or in similar words (>= 0.3).

All of it within the window the caller gives (7 days) and only against open cases.

Short texts (fewer than 8 shingles) never merge on similarity alone: "噪音扰民" twice is not the
same case."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from datasketch import MinHash

from triage.text import shingles

NUM_PERM = 64
BANDS = 16
ROWS = NUM_PERM // BANDS
MIN_SHINGLES = 8
SCHEME = "affine32"  # stored signatures depend on it: changing it means recomputing fingerprints


@lru_cache(maxsize=1)
def _template() -> MinHash:
    return MinHash(num_perm=NUM_PERM, seed=20261128, scheme=SCHEME)


def signature(text: str, grams: set[str] | None = None) -> list[int]:
    grams = shingles(text) if grams is None else grams
    m = MinHash(num_perm=NUM_PERM, seed=20261128, permutations=_template().permutations, scheme=SCHEME)
    if grams:
        m.update_batch([g.encode("utf-8") for g in grams])
    return [int(v) for v in m.hashvalues]  # 32-bit values: fit PostgreSQL bigint


def bands(sig: list[int]) -> list[tuple[int, int]]:
    """(band, bucket) pairs; the bucket is a signed 64-bit hash of the band's rows."""
    out = []
    for b in range(BANDS):
        rows = sig[b * ROWS : (b + 1) * ROWS]
        digest = hashlib.blake2b(struct.pack(f"<{ROWS}Q", *rows), digest_size=8).digest()
        out.append((b, struct.unpack("<q", digest)[0]))
    return out


def similarity(a: list[int], b: list[int]) -> float:
    return sum(1 for x, y in zip(a, b, strict=False) if x == y) / NUM_PERM


@dataclass(frozen=True)
class Item:
    tracking_no: str
    signature: list[int]
    category: str
    reporter_key: str | None
    place_key: str | None
    submitted_at: datetime
    shingle_count: int = MIN_SHINGLES


@dataclass(frozen=True)
class Merge:
    into: str
    similarity: float
    reason: str


def find_primary(item: Item, candidates: list[Item]) -> Merge | None:
    """The open case this item repeats, if any (the strongest rule, then the most similar)."""
    best: tuple[int, float, Item, str] | None = None
    for c in candidates:
        if c.tracking_no == item.tracking_no:
            continue
        sim = similarity(item.signature, c.signature)
        same_reporter = item.reporter_key is not None and item.reporter_key == c.reporter_key
        same_place = item.place_key is not None and item.place_key == c.place_key
        long_enough = item.shingle_count >= MIN_SHINGLES
        if sim >= 0.8 and long_enough:
            rank, reason = 3, "near_identical"
        elif sim >= 0.5 and same_reporter:
            rank, reason = 2, "same_reporter_similar"
        elif sim >= 0.5 and same_place and item.category == c.category and long_enough:
            rank, reason = 2, "same_place_similar"
        elif same_reporter and same_place and item.category == c.category:
            rank, reason = 1, "same_reporter_place_category"
        elif sim >= 0.3 and same_reporter and item.category == c.category:
            rank, reason = 1, "same_reporter_category_similar"
        else:
            continue
        if best is None or (rank, sim) > (best[0], best[1]):
            best = (rank, sim, c, reason)
    if best is None:
        return None
    return Merge(into=best[2].tracking_no, similarity=round(best[1], 3), reason=best[3])

"""Chinese text preparation shared by rules, the model and duplicate detection. Pure functions.

Segmentation uses rjieba (the jieba-rs binding: jieba's dictionary and algorithm, ~20x faster)
with the police and dispute vocabulary in `data/vocabulary.txt` added, so terms such as 噪音扰民
or 拖欠工资 stay whole."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from importlib import resources

import rjieba

_PHONE = re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d[- ]?\d{4}[- ]?\d{4}(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)0\d{2,3}-?\d{7,8}(?!\d)")
_ID_CARD = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
# Bounded (RFC 5321 lengths) and ASCII: an unbounded local part scanned to the end of the text from
# every position (126 ms per 5,000 letters without an "@", per item, in the shared consumer), and
# \w would take Chinese characters before an address as part of it.
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8}")
_MASK_RUN = re.compile(r"\*{2,}")
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """NFKC (full-width letters and digits to half-width), collapse whitespace and masking runs."""
    text = unicodedata.normalize("NFKC", text)
    text = _MASK_RUN.sub("*", text)
    return _SPACE.sub(" ", text).strip()


def mask_personal_data(text: str) -> str:
    """Replace phone numbers, ID card numbers and e-mail addresses with placeholders, so stored
    training examples and explanations never hold them."""
    text = _EMAIL.sub("<邮箱>", text)
    text = _ID_CARD.sub("<证件号>", text)
    text = _PHONE.sub("<电话>", text)
    return _LANDLINE.sub("<电话>", text)


@lru_cache(maxsize=1)
def vocabulary() -> tuple[str, ...]:
    lines = resources.files("triage").joinpath("data/vocabulary.txt").read_text(encoding="utf-8").splitlines()
    return tuple(w.strip() for w in lines if w.strip() and not w.startswith("#"))


@lru_cache(maxsize=1)
def _segmenter() -> rjieba.Jieba:
    jieba = rjieba.Jieba()
    for word in vocabulary():
        jieba.add_word(word, None, None)
    return jieba


_PUNCT_ONLY = re.compile(r"^[\W_]+$")  # \w covers CJK characters, letters and digits


def words(text: str) -> list[str]:
    """Segmented words without whitespace and punctuation-only tokens."""
    match = _PUNCT_ONLY.match
    return [w for w in _segmenter().cut(text) if not match(w)]


_NOT_WORD = re.compile(r"[\W_]+")


def shingles(text: str, k: int = 3) -> set[str]:
    """Character k-grams of the text without whitespace and punctuation (for near-duplicates)."""
    compact = _NOT_WORD.sub("", normalise(text))
    if len(compact) <= k:
        return {compact} if compact else set()
    return {compact[i : i + k] for i in range(len(compact) - k + 1)}


_PLACE_SUFFIX = re.compile(
    r"^(.{2,20}?(?:小区|社区|新村|花园|家园|公寓|大厦|广场|市场|工地|工业园|园区|开发区|项目部|工厂|厂|公司|车站|学校|医院|公园|村|路|街|巷|道|镇|矿))"
)


def place_key(address: str | None, lat: float | None = None, lon: float | None = None) -> str | None:
    """A coarse place for clustering: a ~500 m grid cell from coordinates, else the address up to
    its first place word (小区, 村, 路, 市场 ...), without house numbers. None when unknown."""
    if lat is not None and lon is not None:
        return f"grid:{round(lat / 0.005)}:{round(lon / 0.005)}"
    if not address:
        return None
    compact = normalise(address).replace(" ", "")
    match = _PLACE_SUFFIX.match(compact)
    if match:
        return f"addr:{match.group(1)}"
    stripped = re.sub(r"\d+.*$", "", compact)
    return f"addr:{stripped[:12]}" if len(stripped) >= 2 else None

"""Unit tests of intake's pure rules."""

from __future__ import annotations

import hashlib
import os

from fengqiao.pii import BlindIndex
from intake.domain import (
    TRACKING_ALPHABET,
    access_code_matches,
    hash_access_code,
    new_access_code,
    new_tracking_no,
    normalise_tracking_no,
)

INDEX = BlindIndex(os.urandom(32))


def test_tracking_numbers_are_short_random_and_unambiguous():
    numbers = {new_tracking_no() for _ in range(2000)}
    assert len(numbers) == 2000
    for n in numbers:
        assert len(n) == 10 and n.startswith("FQ")
        assert set(n[2:]) <= set(TRACKING_ALPHABET)
        assert not set(n[2:]) & set("01OIL")


def test_tracking_numbers_typed_by_hand_are_normalised():
    assert normalise_tracking_no(" fq-23ab cd78 ") == "FQ23ABCD78"


def test_access_codes_match_only_their_tracking_number():
    code = new_access_code()
    stored = hash_access_code(INDEX, "FQ23456789", code)
    assert access_code_matches(INDEX, "FQ23456789", code, stored)
    assert not access_code_matches(INDEX, "FQ98765432", code, stored)
    assert not access_code_matches(INDEX, "FQ23456789", None, stored)
    assert not access_code_matches(INDEX, "FQ23456789", "00000000" if code != "00000000" else "1", stored)


def test_access_codes_are_stored_under_a_keyed_hash_that_a_table_reader_cannot_brute_force():
    """Review, low: an unkeyed SHA-256 of 8 digits is cracked by trying all 10^8 codes."""
    code = "12345678"
    stored = hash_access_code(INDEX, "FQ23456789", code)
    assert stored != hashlib.sha256(b"FQ23456789:12345678").hexdigest()
    assert code not in stored
    other_deployment = BlindIndex(os.urandom(32))
    assert not access_code_matches(other_deployment, "FQ23456789", code, stored)  # the key is needed


def test_codes_stored_before_the_keyed_hash_still_open_their_item():
    legacy = hashlib.sha256(b"FQ23456789:12345678").hexdigest()
    assert access_code_matches(INDEX, "FQ23456789", "12345678", legacy)
    assert not access_code_matches(INDEX, "FQ23456789", "12345679", legacy)


def test_a_reply_keeps_what_the_citizen_wrote_above_the_quote_and_names_its_tracking_numbers():
    from intake.domain import reply_text, tracking_numbers_in

    body = "是5号楼\n\n在 2026年11月28日，派出所 写道：\n> 需要您补充：几号楼（编号 FQ23456789）"
    assert reply_text(body) == "是5号楼"
    assert reply_text("> 只有引用") == "> 只有引用"  # nothing of the citizen's is dropped
    assert tracking_numbers_in("回复：编号 fq23456789", body, "FQ2345678O FQ23456789A") == ["FQ23456789"]

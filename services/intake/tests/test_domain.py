"""Unit tests of intake's pure rules."""

from __future__ import annotations

from intake.domain import (
    TRACKING_ALPHABET, access_code_matches, hash_access_code, new_access_code, new_tracking_no, normalise_tracking_no,
)


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
    stored = hash_access_code("FQ23456789", code)
    assert access_code_matches("FQ23456789", code, stored)
    assert not access_code_matches("FQ98765432", code, stored)
    assert not access_code_matches("FQ23456789", None, stored)
    assert not access_code_matches("FQ23456789", "00000000" if code != "00000000" else "1", stored)

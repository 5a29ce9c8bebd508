"""The console search's pure parts: what counts as a tracking number or a phone, and the keyed
character pairs of the words search."""

from __future__ import annotations

import os

from fengqiao.pii import BlindIndex
from mediation import search

INDEX = BlindIndex(os.urandom(32))


def test_pairs_ignore_spaces_punctuation_width_and_case() -> None:
    assert search.pairs("噪音 扰民！") == ["噪音", "音扰", "扰民"]
    assert search.pairs("ＫＴＶ吵") == search.pairs("ktv吵") == ["kt", "tv", "v吵"]
    assert search.pairs("一") == []


def test_a_search_finds_the_pairs_of_its_words_among_the_cases_keys() -> None:
    case = set(search.word_keys(INDEX, "小区楼下烧烤店夜里噪音很大", None, "东风路 12 号"))
    assert set(search.word_keys(INDEX, "噪音很大")) <= case
    assert set(search.word_keys(INDEX, "东风路12")) <= case
    assert not set(search.word_keys(INDEX, "盗窃")) <= case


def test_keys_are_signed_32_bit_and_depend_on_the_key() -> None:
    keys = search.word_keys(INDEX, "电动车在楼道充电")
    assert all(-(2**31) <= k < 2**31 for k in keys)
    assert keys != search.word_keys(BlindIndex(os.urandom(32)), "电动车在楼道充电")


def test_a_long_message_keeps_a_bounded_number_of_pairs() -> None:
    text = "".join(chr(0x4E00 + i) for i in range(5000))
    assert len(search.pairs(text)) == search.MAX_PAIRS


def test_what_is_typed_is_read_as_a_number_a_phone_or_words() -> None:
    assert search.tracking_no(" fq7k2m-9qxp ") == "FQ7K2M9QXP"
    assert search.tracking_no("噪音") is None
    assert search.looks_like_phone("138 0013 8000")
    assert not search.looks_like_phone("12")
    assert search.phone_key(INDEX, "138 0013 8000") == INDEX.of("+8613800138000", purpose="phone")
    assert search.phone_key(INDEX, "12345678901234") is None


def test_a_candidate_is_kept_only_if_its_words_really_contain_the_search() -> None:
    words = {"title": None, "content": "楼下烧烤店噪音很大", "address": "东风路"}
    assert search.contains(words, "噪音 很大")
    assert not search.contains(words, "很大噪音")  # the same pairs in another order
    assert not search.contains(None, "噪音")

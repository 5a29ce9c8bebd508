"""Unit tests of personal-data encryption and phone normalisation."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag

from fengqiao.pii import PiiCipher, PiiKeyError, Sealed, new_key_setting, normalise_phone


def test_round_trip_and_the_ciphertext_hides_the_value():
    cipher = PiiCipher.from_setting(new_key_setting())
    sealed = cipher.seal_json({"name": "张三", "phone": "+8613800138000"}, context="FQ23456789/reporter")
    assert b"13800138000" not in sealed.blob and "张三".encode() not in sealed.blob
    assert cipher.open_json(sealed, context="FQ23456789/reporter") == {"name": "张三", "phone": "+8613800138000"}


def test_a_value_moved_to_another_row_does_not_decrypt():
    cipher = PiiCipher.from_setting(new_key_setting())
    sealed = cipher.seal(b"secret", context="FQ23456789/reporter")
    with pytest.raises(InvalidTag):
        cipher.open(sealed, context="FQ98765432/reporter")


def test_rotation_old_values_still_open_new_ones_use_the_new_key():
    old = new_key_setting("k1")
    sealed_before = PiiCipher.from_setting(old).seal(b"x", context="c")
    rotated = PiiCipher.from_setting(f"{new_key_setting('k2')},{old}")
    assert rotated.active == "k2" and rotated.seal(b"y", context="c").kid == "k2"
    assert rotated.open(sealed_before, context="c") == b"x"
    with pytest.raises(PiiKeyError):
        PiiCipher.from_setting(new_key_setting("k3")).open(sealed_before, context="c")


@pytest.mark.parametrize("setting", [None, "", "nokey", "k1:not-base64!", "k1:c2hvcnQ="])
def test_bad_key_settings_are_refused_clearly(setting):
    with pytest.raises(PiiKeyError):
        PiiCipher.from_setting(setting)


@pytest.mark.parametrize(
    "raw, e164",
    [
        ("13800138000", "+8613800138000"),
        ("138 0013 8000", "+8613800138000"),
        ("+86 138-0013-8000", "+8613800138000"),
        ("010 6552 9988", "+861065529988"),
    ],
)
def test_phones_are_normalised_to_e164(raw, e164):
    assert normalise_phone(raw) == e164


@pytest.mark.parametrize("raw", ["12345", "abc", "1380013800", ""])
def test_impossible_phones_are_rejected(raw):
    with pytest.raises(ValueError):
        normalise_phone(raw)


def test_sealed_is_plain_data():
    assert Sealed("k1", b"\x00" * 30) == Sealed("k1", b"\x00" * 30)


def test_blind_index_matches_equal_values_only_and_depends_on_the_key():
    from fengqiao.pii import BlindIndex, new_index_key_setting

    index = BlindIndex.from_setting(new_index_key_setting())
    assert index.of("+8613800138000", purpose="phone") == index.of("+8613800138000", purpose="phone")
    assert index.of("+8613800138000", purpose="phone") != index.of("+8613800138001", purpose="phone")
    assert index.of("+8613800138000", purpose="phone") != index.of("+8613800138000", purpose="email")
    other = BlindIndex.from_setting(new_index_key_setting())
    assert other.of("+8613800138000", purpose="phone") != index.of("+8613800138000", purpose="phone")
    with pytest.raises(PiiKeyError):
        BlindIndex.from_setting(None)


def test_the_keys_command_prints_usable_secrets():
    from click.testing import CliRunner

    from fengqiao.cli import main
    from fengqiao.links import key_from_setting
    from fengqiao.pii import BlindIndex

    result = CliRunner().invoke(main, ["keys"])
    assert result.exit_code == 0
    env = dict(line.split("=", 1) for line in result.output.splitlines())
    assert PiiCipher.from_setting(env["FENGQIAO_PII_KEYS"]).active == "k1"
    BlindIndex.from_setting(env["FENGQIAO_PII_INDEX_KEY"])
    assert len(key_from_setting(env["FENGQIAO_LINK_KEY"])) == 32


def test_masking_keeps_enough_to_recognise_and_hides_the_rest():
    from fengqiao.pii import mask_phone, mask_reporter, mask_text

    text = (
        "我叫赵六，电话13800005678，另一个 +86 139-1234-5678，座机010-12345678，"
        "身份证110101199001011234，邮箱zhao6@example.com"
    )
    masked = mask_text(text, names=("赵六",))
    assert masked == (
        "我叫赵*，电话138****5678，另一个 139****5678，座机010-****5678，身份证110101********1234，邮箱z***@example.com"
    )
    assert mask_phone("+8613800005678") == "138****5678"
    assert mask_reporter({"name": "赵六", "phone": "+8613800005678", "email": "", "anonymous": False}) == {
        "name": "赵*",
        "phone": "138****5678",
        "email": "",
        "anonymous": False,
    }

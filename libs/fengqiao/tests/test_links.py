"""Unit tests of signed, expiring links."""

from __future__ import annotations

import os

import pytest

from fengqiao.links import LinkExpired, LinkInvalid, parse_survey_subject, sign, survey_subject, verify

KEY = os.urandom(32)


def test_a_signed_link_verifies_until_it_expires():
    token = sign(KEY, "survey", "FQ23456789", valid_for_s=3600, now=1_000_000)
    assert verify(KEY, "survey", token, now=1_000_000 + 3599) == "FQ23456789"
    with pytest.raises(LinkExpired):
        verify(KEY, "survey", token, now=1_000_000 + 3601)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t.replace("FQ23456789", "FQ98765432"),
        lambda t: t.rsplit(".", 2)[0] + ".9999999999." + t.rsplit(".", 1)[1],
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
        lambda t: "garbage",
        lambda t: t[:-2] + "签名",  # a non-ASCII signature answered 500 (review, low)
        lambda t: "FQ签.1.签",
    ],
)
def test_tampered_links_are_refused(tamper):
    token = sign(KEY, "survey", "FQ23456789", valid_for_s=3600)
    with pytest.raises(LinkInvalid):
        verify(KEY, "survey", tamper(token))


def test_a_link_for_one_purpose_does_not_open_another():
    token = sign(KEY, "survey", "FQ23456789", valid_for_s=3600)
    with pytest.raises(LinkInvalid):
        verify(KEY, "unsubscribe", token)
    with pytest.raises(LinkInvalid):
        verify(os.urandom(32), "survey", token)


def test_a_survey_link_names_its_resolution_and_an_older_link_is_the_first():
    token = sign(KEY, "survey", survey_subject("FQ23456789", 2), valid_for_s=3600)
    assert parse_survey_subject(verify(KEY, "survey", token)) == ("FQ23456789", 2)
    assert parse_survey_subject(survey_subject("FQ23456789", None)) == ("FQ23456789", 1)
    for bad in ("FQ23456789-", "FQ23456789-0", "FQ23456789-x", "FQ23456789-²"):
        with pytest.raises(LinkInvalid):
            parse_survey_subject(bad)

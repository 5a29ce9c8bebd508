"""Citizen templates (issue 13): the e-mail's survey link is a real, escaped link; the hotline is
the station's own phone, 110 only when the station has none; emergencies always say 110."""

from __future__ import annotations

from notify.templates import Templates


def test_the_email_survey_link_is_an_escaped_anchor():
    url = 'https://fq.example/survey?t=FQ1.2.abc&x="><script>'
    page = Templates().render(
        "email.html", station="KZ01", station_name="矿区派出所", subject="s", body="b", survey_url=url, track_url=""
    )
    assert '<a href="https://fq.example/survey?t=FQ1.2.abc&amp;x=&#34;&gt;&lt;script&gt;">' in page
    assert "<script>" not in page


def test_the_hotline_is_the_station_phone_and_110_only_without_one():
    t = Templates()
    params = dict(tracking_no="FQ1", access_code="1", track_url="u")
    own = t.render("citizen/acknowledgement.txt", station="KZ01", station_name="矿区", station_phone="0516-1", **params)
    none = t.render("citizen/acknowledgement.txt", station="KZ09", station_name="某所", station_phone=None, **params)
    assert "咨询电话 0516-1" in own and "紧急情况请拨打110" in own
    assert "咨询电话 110" in none

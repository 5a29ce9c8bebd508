"""The delivery rules and the templates, as pure functions of a given time."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from notify.api import mask
from notify.channels import sign_webhook
from notify.policy import STATION_TZ, Backoff, QuietHours, rate_limited_until, rate_limits
from notify.templates import BUILTIN, TemplateConfigError, Templates


def local(*args) -> datetime:
    return datetime(*args, tzinfo=STATION_TZ)


def test_backoff_doubles_up_to_the_cap_and_stops_after_the_last_attempt():
    b = Backoff(base_s=30, cap_s=300, max_attempts=6, jitter=0)
    assert [b.delay(n).total_seconds() for n in range(1, 7)] == [30, 60, 120, 240, 300, 300]
    assert not b.exhausted(5) and b.exhausted(6)
    jittered = Backoff(base_s=100, cap_s=1000, jitter=0.1)
    rand = random.Random(7)
    assert all(90 <= jittered.delay(1, rand).total_seconds() <= 110 for _ in range(100))


@pytest.mark.parametrize(
    "at, release",
    [
        (local(2026, 11, 29, 20, 59), None),
        (local(2026, 11, 29, 21, 0), local(2026, 11, 30, 8, 0)),
        (local(2026, 11, 29, 23, 30), local(2026, 11, 30, 8, 0)),
        (local(2026, 11, 30, 0, 10), local(2026, 11, 30, 8, 0)),
        (local(2026, 11, 30, 7, 59), local(2026, 11, 30, 8, 0)),
        (local(2026, 11, 30, 8, 0), None),
    ],
)
def test_quiet_hours_over_midnight_release_at_their_end(at, release):
    quiet = QuietHours.parse("21:00-08:00")
    assert quiet.release_at(at) == release
    assert quiet.release_at(at.astimezone(STATION_TZ).replace(tzinfo=STATION_TZ)) == release


def test_quiet_hours_within_a_day_and_disabled_and_malformed():
    lunch = QuietHours.parse("12:00-13:30")
    assert lunch.release_at(local(2026, 11, 29, 12, 45)) == local(2026, 11, 29, 13, 30)
    assert lunch.release_at(local(2026, 11, 29, 14, 0)) is None
    assert QuietHours.parse("off") is None and QuietHours.parse("") is None
    with pytest.raises(ValueError, match="21:00-08:00"):
        QuietHours.parse("9pm to 8am")


def test_rate_limits_defer_until_the_oldest_message_leaves_the_window():
    windows = rate_limits("3 per 10 minutes;5/day")
    assert windows == [(3, timedelta(minutes=10)), (5, timedelta(days=1))]
    now = local(2026, 11, 29, 10, 0)
    sent = [now - timedelta(minutes=m) for m in (1, 4, 8)]
    assert rate_limited_until(sent[:2], now, windows) is None
    assert rate_limited_until(sent, now, windows) == now - timedelta(minutes=8) + timedelta(minutes=10)
    # the daily window binds once five went today, however spread out
    day = [now - timedelta(hours=h) for h in (1, 2, 3, 4, 5)]
    assert rate_limited_until(day, now, windows) == now - timedelta(hours=5) + timedelta(days=1)
    assert rate_limits("") == []


def test_every_template_renders_for_the_deployment_and_each_station():
    t = Templates()
    t.check(["KZ01", "KZ02"])
    sms = t.preview("citizen/acknowledgement.txt", "KZ01", "矿区派出所")
    assert sms.startswith("【矿区派出所】") and "FQ7K3M9QXA" in sms and "482913" in sms and "110" in sms


def test_station_overrides_win_over_the_deployment_which_wins_over_the_builtins(tmp_path):
    (tmp_path / "profile.toml").write_text(
        'signature = "某市公安局"\nhotline = "0000-1111111"\n[stations.KZ01]\nsignature = "矿区派出所"\n'
        'hotline = "0000-2222222"\n',
        encoding="utf-8",
    )
    (tmp_path / "citizen").mkdir()
    (tmp_path / "citizen" / "rectified.txt").write_text("【{{ signature }}】整改：{{ text }}", encoding="utf-8")
    (tmp_path / "stations" / "KZ02" / "citizen").mkdir(parents=True)
    (tmp_path / "stations" / "KZ02" / "citizen" / "rectified.txt").write_text(
        "【{{ signature }}】新村所已整改：{{ text }} 电话{{ hotline }}", encoding="utf-8"
    )
    t = Templates(tmp_path)
    t.check(["KZ01", "KZ02"])
    kw = dict(tracking_no="FQ1", text="已加装路灯")
    assert (
        t.render("citizen/rectified.txt", station="KZ01", station_name="矿区派出所", **kw)
        == "【矿区派出所】整改：已加装路灯"
    )
    assert (
        t.render("citizen/rectified.txt", station="KZ02", station_name="新村派出所", **kw)
        == "【某市公安局】新村所已整改：已加装路灯 电话0000-1111111"
    )
    assert "0000-2222222" in t.render(
        "citizen/more_info.txt", station="KZ01", station_name="矿区派出所", track_url="u", **kw
    )


def test_a_broken_override_stops_the_service_with_its_name(tmp_path):
    (tmp_path / "citizen").mkdir()
    (tmp_path / "citizen" / "result.txt").write_text("{{ no_such_value }}", encoding="utf-8")
    with pytest.raises(TemplateConfigError, match=r"citizen/result\.txt"):
        Templates(tmp_path).check([])
    (tmp_path / "citizen" / "result.txt").write_text("{% if %}", encoding="utf-8")
    with pytest.raises(TemplateConfigError, match=r"citizen/result\.txt"):
        Templates(tmp_path).check([])


def test_email_html_escapes_what_people_typed_and_text_templates_do_not():
    t = Templates()
    html = t.render(
        "email.html", station="KZ01", station_name="矿区派出所", subject="主题", body="<script>alert(1)</script> & 噪声"
    )
    assert "<script>" not in html and "&lt;script&gt;" in html and "&amp; 噪声" in html
    sms = t.render(
        "citizen/more_info.txt",
        station="KZ01",
        station_name="矿区派出所",
        tracking_no="FQ1",
        text="A & B <门牌号>",
        track_url="u",
    )
    assert "A & B <门牌号>" in sms  # an SMS is not HTML


def test_masked_contacts_identify_without_disclosing():
    assert mask("sms", "+8613812345678") == "+86138****5678"
    assert mask("email", "zhangsan@example.com") == "z***@example.com"


def test_webhook_signature_matches_the_standard_webhooks_reference():
    from standardwebhooks import Webhook

    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    now = datetime.now().astimezone()
    sig = sign_webhook(secret, "msg_1", int(now.timestamp()), '{"a":1}')
    assert Webhook(secret).sign("msg_1", now, '{"a":1}') == sig


def test_all_console_kinds_have_a_title_and_a_body():
    kinds = {name.split("/")[1].split(".")[0] for name in BUILTIN if name.startswith("console/")}
    for kind in kinds:
        assert f"console/{kind}.title.txt" in BUILTIN and f"console/{kind}.body.txt" in BUILTIN


def test_the_example_template_folder_of_the_deployment_is_valid():
    from pathlib import Path

    folder = Path(__file__).resolve().parents[3] / "deploy" / "notify-templates"
    t = Templates(folder)
    t.check(["KZ01", "KZ02"])
    assert "值班电话 0000-7654321" in t.preview("citizen/result.txt", "KZ02", "新村派出所")
    assert t.preview("citizen/result.txt", "KZ01", "矿区派出所").startswith("【矿区派出所】")

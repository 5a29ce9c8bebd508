"""Near-duplicates and the alert thresholds (pure parts)."""

from __future__ import annotations

from datetime import UTC, datetime

from triage import alerts
from triage.duplicates import Item, bands, find_primary, signature, similarity
from triage.text import shingles

NOW = datetime(2026, 11, 29, 10, tzinfo=UTC)
TEXT = "幸福小区3号楼楼下的烧烤店每天半夜喝酒划拳吵闹，已经持续一个多月了，严重影响休息，希望派出所管一管。"


def item(no, text, category="noise", reporter=None, place="addr:幸福小区"):
    return Item(no, signature(text), category, reporter, place, NOW, len(shingles(text)))


def test_near_identical_texts_merge_and_different_ones_do_not():
    a = item("A", TEXT)
    b = item("B", TEXT.replace("一个多月", "两个月") + "谢谢")
    other = item("C", "我家电动车昨晚在矿山路被偷了，监控拍到一个人推走了，请帮忙查一下。", "theft")
    assert similarity(a.signature, b.signature) >= 0.5
    merge = find_primary(b, [a, other])
    assert merge is not None and merge.into == "A"
    assert find_primary(other, [a]) is None


def test_the_same_reporter_repeating_is_merged_at_lower_similarity():
    a = item("A", TEXT, reporter="r1")
    b = item("B", "烧烤店又在半夜吵闹，上次反映了还没处理，幸福小区3号楼。", reporter="r1")
    stranger = item("C", "烧烤店又在半夜吵闹，上次反映了还没处理，幸福小区3号楼。", reporter="r2", place=None)
    assert find_primary(b, [a]) is not None
    assert find_primary(stranger, [a]) is None


def test_short_texts_never_merge_on_similarity_alone():
    assert find_primary(item("B", "噪音扰民"), [item("A", "噪音扰民")]) is None


def test_lsh_bands_are_stable_and_shared_by_identical_texts():
    assert bands(signature(TEXT)) == bands(signature(TEXT))
    assert len(bands(signature(TEXT))) == 16


def test_cluster_thresholds():
    t = alerts.Thresholds(24, 3, 5, 10)
    assert alerts.cluster("labor_dispute", "addr:x", "x", ["A", "B"], 2, t) is None
    d = alerts.cluster("labor_dispute", "addr:新村市场", "新村市场", ["A", "B", "C"], 3, t)
    assert d.level == "yellow" and "新村市场" in d.explanation and "3名不同群众" in d.explanation
    assert alerts.cluster("labor_dispute", "addr:x", "x", list("ABCDE"), 5, t).level == "orange"
    assert alerts.cluster("labor_dispute", "addr:x", "x", list("ABCDEFGHIJ"), 10, t).level == "red"


def test_trend_needs_volume_and_a_multiple_of_the_baseline():
    t = alerts.Thresholds(24, 3, 4, 6)
    assert alerts.trend("fraud", 4, 0.0, list("ABCD"), t) is None  # below the minimum volume
    assert alerts.trend("fraud", 6, 2.0, list("ABCDEF"), t).level == "yellow"
    assert alerts.trend("fraud", 6, 3.0, list("ABCDEF"), t) is None  # only twice the usual


def test_repeat_dispute_levels():
    t = alerts.Thresholds(2160, 3, 4, 6)
    assert alerts.repeat_dispute("r", ["A", "B"], ["neighbor_dispute"] * 2, t) is None
    d = alerts.repeat_dispute("r", ["A", "B", "C"], ["neighbor_dispute"] * 3, t)
    assert d.level == "yellow" and "90天内第3次" in d.explanation

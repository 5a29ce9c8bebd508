"""The urgent-signal layer: recall 1.0 on the contrast pairs, context handling, data hygiene, and
linear time on a hostile item. False alarms are a figure (`fengqiao triage bench-urgent`), not an
assert."""

from __future__ import annotations

import time

import pytest

from triage.engine import classify, public_reasons
from triage.model import TextModel, seed_examples
from triage.rules import RuleSet
from triage.signals import default_signals
from triage.text import normalise
from triage.urgent_bench import read_pairs

SIGNALS = default_signals()
PAIRS = read_pairs()


@pytest.fixture(scope="module")
def model() -> TextModel:
    return TextModel().fit(seed_examples())


def test_the_contrast_set_has_at_least_300_pairs_apart_from_the_signals_own_examples():
    assert len(PAIRS) >= 300 and len({p.id for p in PAIRS}) == len(PAIRS)
    in_data = {normalise(e) for s in SIGNALS.signals for e in s.examples + s.counter_examples}
    in_pairs = {normalise(t) for p in PAIRS for t in (p.urgent, p.not_urgent)}
    assert not in_data & in_pairs


def test_every_urgent_item_of_the_contrast_set_is_urgent_and_names_its_signal(model):
    missed = []
    for pair in PAIRS:
        c = classify(None, pair.urgent, station="KZ01", rules=RuleSet(), model=model, model_version="m1")
        named = [r for r in public_reasons(c.reasons) if r.startswith("rule:urgency=urgent:")]
        if c.urgency != "urgent" or not named:
            missed.append((pair.id, pair.urgent, c.urgency))
    assert not missed, missed


def test_the_signals_own_examples_are_urgent_and_their_counter_examples_are_not():
    for signal in SIGNALS.signals:
        assert signal.examples and signal.counter_examples, signal.id
        for text in signal.examples:
            assert any(h.signal == signal.id for h in SIGNALS.urgent(normalise(text))), text
        for text in signal.counter_examples:
            assert not SIGNALS.urgent(normalise(text)), text


@pytest.mark.parametrize(
    "calm, why",
    [
        ("上个月被冒充公检法的骗到安全账户三万块，想问问案子有进展吗", "past"),
        ("刚才两辆车追尾了，没有人受伤，在等保险公司", "negation"),
        ("建议加强防火宣传，冬天用电炉子的多", "suggestion"),
        ("感谢民警上周把落水的孩子救了上来", "praise"),
        ("请问孩子走失以后多久可以报警", "inquiry"),
    ],
)
def test_a_counter_signal_lowers_a_cue_and_the_reason_stays_internal(calm, why):
    hits = SIGNALS.hits(normalise(calm))
    c = classify(None, calm, station="KZ01", rules=RuleSet())
    assert c.urgency != "urgent" and not SIGNALS.urgent(normalise(calm))
    if hits:  # 建议加强防火宣传 carries no cue at all: nothing to lower
        assert any(r.startswith("signal:") and ":countered:" in r for r in c.reasons), c.reasons
    assert not any(r.startswith("signal:") for r in public_reasons(c.reasons))


@pytest.mark.parametrize(
    "text",
    [
        "上个月被骗过一次，今天又有人说是公安局的，让我把钱转到安全账户",  # past, then present
        "我爸有老年痴呆，昨天下午出门，到现在还没回来",  # a state that lasts
        "感谢民警上次帮忙。我前夫又来了，拿着刀在门口踹门",  # a thank-you, then danger now
        "请问是派出所吗？我家着火了",  # an inquiry's wording in another sentence
        "请问我家老人走丢了怎么办",  # the writer's own emergency, asked as a question
    ],
)
def test_a_present_danger_cue_keeps_the_item_urgent_whatever_else_is_said(text):
    c = classify(None, text, station="KZ01", rules=RuleSet())
    assert c.urgency == "urgent", c.reasons


def test_the_model_alone_says_at_most_high(model):
    # The seed model leans to `urgent` on words such as 持刀; without a live signal that is `high`.
    calm = "请问网购的水果刀算不算管制刀具，持刀上地铁会被拦吗"
    c = classify(None, calm, station="KZ01", rules=RuleSet(), model=model)
    assert c.urgency in ("high", "normal", "low")


def test_signal_reasons_are_public_by_id_only():
    c = classify(None, "对方说是公安局的，让我把钱转到安全账户，现在还在通话", station="KZ01", rules=RuleSet())
    assert "rule:urgency=urgent:安全账户(fraud_in_progress#1)" in c.reasons
    public = public_reasons(c.reasons)
    assert "rule:urgency=urgent:fraud_in_progress#1" in public
    assert "安全账户" not in " ".join(public) and "公安局" not in " ".join(public)


def test_signal_ids_are_public_id_shaped_and_unique():
    ids = [s.id for s in SIGNALS.signals]
    assert len(ids) == len(set(ids)) and all(i.replace("_", "").isalpha() and i.islower() for i in ids)


@pytest.mark.parametrize(
    "hostile",
    [
        "着火" * 2500,  # a cue at every position: each cue stops at its first live match
        "上个月" + "被骗安全账户" * 830,  # countered matches everywhere: context once per sentence
        "没" * 4999 + "枪",
        ("我" + "。" * 2) * 1666,  # thousands of sentences
        "a" * 5000,
    ],
)
def test_a_hostile_5000_character_item_is_matched_in_linear_time(hostile):
    text = normalise(hostile)[:5000]
    started = time.perf_counter()
    SIGNALS.hits(text)
    classify(None, text, station="KZ01", rules=RuleSet())
    assert time.perf_counter() - started < 1.0  # about 10-30 ms measured; quadratic would be seconds

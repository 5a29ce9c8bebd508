"""Classification: rules and the statistical model combined, every decision with its reasons. Pure.

- Urgency: a live urgent signal (triage/signals.py: a cue whose context does not say the danger
  is past, denied, asked about, suggested or thanked for) or a station's urgent rule makes the
  item urgent, whatever the model says, and names itself in the reasons. The model alone says
  at most `high`: a model that gives `urgent` a probability of 0.25 or more (or its top label)
  lifts the item to `high` (recall first, without the false alarms of a model trained on a few
  hundred words).
- Type and category: the model's probabilities plus a boost for each matching rule
  (`RULE_BOOST` times the rule's weight for a deployment's own rule, `DEFAULT_RULE_BOOST` for the
  shipped keyword rules); the highest combined score wins, and the confidence is that score's
  share of the total (triage/review.py sends a low one to the leader's review queue).
- needs_mediation: a dispute category, or a rule that says so.
- Sentiment: a lexicon score in [-1, 1] (negative: anger, distress; positive: thanks)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import get_args

from fengqiao.events import Category, RequestType
from fengqiao.taxonomy import DISPUTE_CATEGORIES
from triage.model import Prediction, TextModel
from triage.rules import Hit, RuleSet
from triage.signals import SignalHit, SignalSet, default_signals
from triage.text import normalise

RULES_ONLY = "rules-1"
RULE_BOOST = 0.6
# The shipped keyword rules were written to help a model trained on 128 rows. Beside the model
# trained on the corpus they cost more than they give: 5-fold CV on the corpus's train split, engine
# category accuracy 0.829 at 0.6, 0.856 at 0.3, 0.870 at 0.1, 0.868 at 0 (type 0.887 -> 0.890).
# A station's own rule keeps RULE_BOOST: it is the station telling triage what it wants.
DEFAULT_RULE_BOOST = 0.1
URGENCY_ORDER = ("low", "normal", "high", "urgent")
DISPUTES = frozenset(DISPUTE_CATEGORIES)
TYPES: tuple[str, ...] = get_args(RequestType)
CATEGORIES: tuple[str, ...] = get_args(Category)

_NEGATIVE = (
    "愤怒",
    "气愤",
    "不满",
    "投诉",
    "恶劣",
    "太差",
    "非常差",
    "骂",
    "威胁",
    "害怕",
    "失望",
    "无奈",
    "忍无可忍",
    "过分",
    "欺负",
    "没人管",
    "不作为",
    "推诿",
    "救命",
    "绝望",
    "受不了",
    "睡不着",
    "严重影响",
)
_POSITIVE = ("感谢", "谢谢", "表扬", "满意", "辛苦", "点赞", "锦旗", "耐心", "及时", "热情", "负责")


@dataclass(frozen=True)
class Classification:
    type: str
    category: str
    urgency: str
    needs_mediation: bool
    confidence: float  # the category's confidence, the headline figure
    confidences: dict[str, float] = field(default_factory=dict)
    sentiment: float = 0.0
    reasons: list[str] = field(default_factory=list)
    model_version: str = RULES_ONLY


_PUBLIC_RULE = re.compile(r"rule:[a-z_]+=[a-z_]+:(?:[a-z_]+#\d+|#\d+|default)")
_PUBLIC_MODEL = re.compile(r"model:[a-z_]+(?:=[a-z_]+:p=\d\.\d\d|:urgent_p=\d\.\d\d:lifted_to_high)")


def public_reason(reason: str) -> str | None:
    """A reason as the public stream may carry it: a rule's id and label, or a model's label and
    probability; None for anything else. Never the rule's pattern (the matched words), never the
    model's top features (n-grams of the citizen's own words, which may include a name or place).
    Built by keeping known shapes, not by removing known text, so a new kind of reason stays
    internal until it is given a public form here."""
    if reason.startswith("rule:"):
        head, sep, origin = reason.rpartition("(")  # rule:<field>=<value>:<pattern>(<public id>)
        parts = head.split(":", 2)
        if sep and origin.endswith(")") and len(parts) == 3:
            candidate = f"rule:{parts[1]}:{origin[:-1]}"
            if _PUBLIC_RULE.fullmatch(candidate):
                return candidate
        return None
    if reason.startswith("model:"):
        m = _PUBLIC_MODEL.match(reason)
        if m and (m.end() == len(reason) or reason[m.end()] == ":"):
            return m.group(0)
    return None


def public_reasons(reasons: list[str]) -> list[str]:
    """Reasons for the public stream (see `public_reason`); the full ones stay in triage."""
    return [p for p in map(public_reason, reasons) if p is not None]


def sentiment(text: str) -> float:
    neg = sum(text.count(w) for w in _NEGATIVE)
    pos = sum(text.count(w) for w in _POSITIVE)
    return round((pos - neg) / (pos + neg + 1), 2)


def _combine(
    head: str, labels: tuple[str, ...], prediction: Prediction | None, hits: list[Hit], default: str, reasons: list[str]
) -> tuple[str, float]:
    scores = dict.fromkeys(labels, 0.0)
    if prediction is not None:
        for label, p in prediction.scores.items():
            if label in scores:
                scores[label] += p
    matched = [h for h in hits if h.rule.field == head and h.rule.value in scores]
    for h in matched:
        scores[h.rule.value] += (RULE_BOOST if h.rule.rule_id else DEFAULT_RULE_BOOST) * h.rule.weight
    total = sum(scores.values())
    if total <= 0:
        return default, 0.3
    best = max(scores, key=lambda k: (scores[k], k == default))
    reasons.extend(h.reason for h in matched if h.rule.value == best)
    if prediction is not None and prediction.label == best:
        features = "、".join(prediction.top_features)
        reasons.append(f"model:{head}={best}:p={prediction.probability:.2f}" + (f":{features}" if features else ""))
    return best, round(scores[best] / total, 3)


def classify(
    title: str | None,
    content: str,
    *,
    station: str | None,
    rules: RuleSet,
    model: TextModel | None = None,
    model_version: str = RULES_ONLY,
    signals: SignalSet | None = None,
) -> Classification:
    text = normalise(f"{title or ''} {content}")
    hits = rules.hits(text, station)
    signal_hits = (signals or default_signals()).hits(text)
    predicted = model.predict([text], explain=3)[0] if model is not None else {}
    reasons: list[str] = []

    category, cat_conf = _combine("category", CATEGORIES, predicted.get("category"), hits, "other", reasons)
    type_, type_conf = _combine("type", TYPES, predicted.get("type"), hits, "other", reasons)
    if type_ == "other" and category == "police_conduct":
        type_ = "complaint"

    urgency, urg_conf = _urgency(predicted.get("urgency"), hits, signal_hits, reasons)
    if type_ == "other" and urgency in ("urgent", "high"):
        type_ = "help"
    mediation_hits = [h for h in hits if h.rule.field == "needs_mediation" and h.rule.value == "true"]
    reasons.extend(h.reason for h in mediation_hits)
    needs_mediation = category in DISPUTES or bool(mediation_hits)
    return Classification(
        type=type_,
        category=category,
        urgency=urgency,
        needs_mediation=needs_mediation,
        confidence=cat_conf,
        confidences={"type": type_conf, "category": cat_conf, "urgency": urg_conf},
        sentiment=sentiment(text),
        reasons=reasons,
        model_version=model_version,
    )


def _urgency(
    prediction: Prediction | None, hits: list[Hit], signal_hits: list[SignalHit], reasons: list[str]
) -> tuple[str, float]:
    rule_levels = [h for h in hits if h.rule.field == "urgency" and h.rule.value in URGENCY_ORDER]
    live = [h for h in signal_hits if h.countered is None]
    level = "normal"
    confidence = 0.5
    if prediction is not None:
        level = prediction.label if prediction.label in URGENCY_ORDER else "normal"
        confidence = prediction.probability
        urgent_p = prediction.scores.get("urgent", 0.0)
        if level == "urgent" or (urgent_p >= 0.25 and _rank(level) < _rank("high")):
            level = "high"  # the model alone never says urgent: a signal or a station rule must
            reasons.append(f"model:urgency:urgent_p={urgent_p:.2f}:lifted_to_high")
        elif prediction.label == level:
            reasons.append(f"model:urgency={level}:p={prediction.probability:.2f}")
    if live:
        confidence = max(confidence, 0.9) if level != "urgent" else confidence
        level = "urgent"
        reasons.extend(h.reason for h in live)
    if rule_levels:
        top = max(rule_levels, key=lambda h: _rank(h.rule.value))
        if _rank(top.rule.value) >= _rank(level):
            if _rank(top.rule.value) > _rank(level):
                confidence = 0.9
            level = top.rule.value
            reasons.extend(h.reason for h in rule_levels if h.rule.value == level)
    reasons.extend(h.reason for h in signal_hits if h.countered is not None)  # staff see what was lowered
    return level, round(confidence, 3)


def _rank(level: str) -> int:
    return URGENCY_ORDER.index(level)

"""When a person should check the classification (请核对分类). Pure.

The engine's confidence in a label is that label's share of the combined scores (triage/engine.py).
The thresholds were read off the reliability curve of out-of-fold decisions (5-fold CV of the
whole engine, shipped rules and model, on the corpus's train split): below them the labels are
about as often wrong as right, above them right nine times in ten.

| confidence band (CV on train) | items | label right |
|---|---|---|
| type < 0.40 | 69 of 1,520 | 0.45 |
| type 0.40-0.50 | 119 | 0.65 |
| category < 0.30 | 170 | 0.47 |
| category 0.30-0.40 | 175 | 0.75 |

With type < 0.40 or category < 0.30 (the bands above: right less than half the time), the whole
engine (`fengqiao triage bench --only corpus_cv`) sends 12.6 % of the train items to review, and
the labels of the others are right for type 0.907 and category 0.904 (docs/triage.md).

An urgent item is never held for review: it goes to the officer on duty at once (assign.py)."""

from __future__ import annotations

from collections.abc import Mapping

REVIEW_BELOW: dict[str, float] = {"type": 0.40, "category": 0.30}
REVIEW_REASON = "review:low_confidence"


def low_confidence_heads(
    urgency: str, confidences: Mapping[str, float], below: Mapping[str, float] = REVIEW_BELOW
) -> tuple[str, ...]:
    """The heads (type, category) whose confidence is below its threshold (`below`: a station's
    own, from triage's `review_thresholds` table); none for an urgent item, and none for a head
    without a confidence (nothing to judge by)."""
    if urgency == "urgent":
        return ()
    return tuple(h for h, t in below.items() if h in confidences and confidences[h] < t)


def needs_review(urgency: str, confidences: Mapping[str, float], below: Mapping[str, float] = REVIEW_BELOW) -> bool:
    return bool(low_confidence_heads(urgency, confidences, below))

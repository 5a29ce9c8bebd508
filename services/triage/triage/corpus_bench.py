"""The corpus part of `fengqiao triage bench`: the engine as deployed (shipped keyword rules, urgent
signals and the model trained on `shipped_examples`) on the police corpus.

- `cv`: 5-fold cross-validation on the train split (the seed rows join every training fold);
- `test`: trained on the train split, predicted on the test split;
- `late`: the same on the split written last (read once after the model was frozen: docs/triage.md).

For each: type and category accuracy and macro-F1, how many items the review rule sends to the
leader (triage/review.py) and how often the labels of the others are right, and messages per
second on one core (classification only, one message at a time as the service does it)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from triage.engine import Classification, classify
from triage.model import Example, TextModel, corpus_examples, score, seed_examples
from triage.review import needs_review
from triage.rules import RuleSet


def _classify_all(model: TextModel, items: Sequence[Example]) -> tuple[list[Classification], float]:
    rules = RuleSet()
    started = time.perf_counter()
    out = [classify(None, e.text, station="bench", rules=rules, model=model, model_version="bench") for e in items]
    return out, time.perf_counter() - started


def figures(name: str, items: Sequence[Example], got: Sequence[Classification], seconds: float) -> dict:
    result: dict = {"split": name, "items": len(items)}
    for head in ("type", "category"):
        s = score([e.labels[head] for e in items], [getattr(c, head) for c in got])
        result[f"{head}_accuracy"] = round(s.accuracy, 3)
        result[f"{head}_macro_f1"] = round(s.macro_f1, 3)
    review = [needs_review(c.urgency, c.confidences) for c in got]
    kept = [(e, c) for e, c, r in zip(items, got, review, strict=True) if not r]
    result["review_share"] = round(sum(review) / len(items), 3)
    result["review_items"] = sum(review)
    for head in ("type", "category"):
        right = sum(e.labels[head] == getattr(c, head) for e, c in kept)
        result[f"not_reviewed_{head}_accuracy"] = round(right / len(kept), 3) if kept else None
    result["messages_per_second"] = round(len(items) / seconds) if seconds else None
    return result


def cross_validated(folds: int = 5) -> dict:
    train = corpus_examples("train")
    seed = seed_examples()
    labels = np.array([e.labels["category"] for e in train])
    got: list[Classification | None] = [None] * len(train)
    seconds = 0.0
    for fit_rows, test_rows in StratifiedKFold(folds, shuffle=True, random_state=0).split(train, labels):
        model = TextModel().fit([train[i] for i in fit_rows] + seed)
        predicted, spent = _classify_all(model, [train[i] for i in test_rows])
        seconds += spent
        for i, c in zip(test_rows, predicted, strict=True):
            got[i] = c
    assert all(c is not None for c in got)
    return figures(f"cv{folds}(train)", train, [c for c in got if c is not None], seconds)


def held_out(split: str) -> dict:
    model = TextModel().fit(corpus_examples("train") + seed_examples())
    items = corpus_examples(split)
    got, seconds = _classify_all(model, items)
    return figures(split, items, got, seconds)


def run(splits: Sequence[str] = ("cv", "test", "late")) -> list[dict]:
    with threadpool_limits(1):  # one core
        return [cross_validated() if s == "cv" else held_out(s) for s in splits]


def render(results: list[dict]) -> str:
    lines = [
        "| corpus | items | type acc / macro-F1 | category acc / macro-F1 | to review | "
        "not reviewed: type / category acc | msg/s (1 core) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['split']} | {r['items']} | {r['type_accuracy']:.3f} / {r['type_macro_f1']:.3f} | "
            f"{r['category_accuracy']:.3f} / {r['category_macro_f1']:.3f} | "
            f"{r['review_items']} ({r['review_share']:.1%}) | "
            f"{r['not_reviewed_type_accuracy']:.3f} / {r['not_reviewed_category_accuracy']:.3f} | "
            f"{r['messages_per_second']:,} |"
        )
    return "\n".join(lines)

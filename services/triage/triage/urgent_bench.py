"""`fengqiao triage bench-urgent`: urgent recall and false alarms of the urgent-signal layer.

Measured on the contrast set `data/signals/contrast_pairs.tsv` (urgent / not-urgent pairs written
from the 110 rules, separately from the signals' own examples, which the layer never reads) and on
the held-in examples and counter-examples of `data/signals/urgent.toml`, three ways: the signal
layer alone, the engine with the default rules, and the engine with the shipped model as deployed."""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass
from importlib import resources

from triage.engine import classify
from triage.model import TextModel, shipped_examples
from triage.rules import RuleSet
from triage.signals import SignalSet, default_signals
from triage.text import normalise

PAIRS_FILE = "data/signals/contrast_pairs.tsv"


@dataclass(frozen=True)
class Pair:
    id: str
    signal: str
    counter: str  # what makes the other text not urgent: past, negation, praise, inquiry...
    urgent: str
    not_urgent: str


def read_pairs() -> list[Pair]:
    text = resources.files("triage").joinpath(PAIRS_FILE).read_text(encoding="utf-8")
    rows = csv.DictReader(io.StringIO(text), delimiter="\t")
    return [Pair(r["id"], r["signal"], r["counter"], r["urgent"], r["not_urgent"]) for r in rows]


def held_in(signals: SignalSet) -> tuple[list[str], list[str]]:
    urgent = [e for s in signals.signals for e in s.examples]
    calm = [e for s in signals.signals for e in s.counter_examples]
    return urgent, calm


def _levels(texts: list[str], how: str, model: TextModel | None) -> list[str]:
    if how == "signals":
        signals = default_signals()
        return ["urgent" if signals.urgent(normalise(t)) else "-" for t in texts]
    rules = RuleSet()
    return [classify(None, t, station="KZ01", rules=rules, model=model).urgency for t in texts]


def evaluate(urgent: list[str], calm: list[str], how: str, model: TextModel | None = None) -> dict[str, object]:
    u = _levels(urgent, how, model)
    c = _levels(calm, how, model)
    missed = [t for t, level in zip(urgent, u, strict=True) if level != "urgent"]
    return {
        "urgent": len(urgent),
        "not_urgent": len(calm),
        "recall": round(1 - len(missed) / len(urgent), 3),
        "below_high": sum(level not in ("urgent", "high") for level in u) if how != "signals" else None,
        "false_alarms": round(sum(level == "urgent" for level in c) / len(calm), 3),
        "missed": missed,
        "alarms": [t for t, level in zip(calm, c, strict=True) if level == "urgent"],
    }


def run() -> list[tuple[str, str, dict[str, object]]]:
    pairs = read_pairs()
    urgent, calm = [p.urgent for p in pairs], [p.not_urgent for p in pairs]
    inside_urgent, inside_calm = held_in(default_signals())
    model = TextModel().fit(shipped_examples())
    results = []
    for how, m in (("signals", None), ("engine, rules only", None), ("engine, shipped model", model)):
        results.append(("contrast pairs", how, evaluate(urgent, calm, how, m)))
    results.append(("signal examples (held-in)", "signals", evaluate(inside_urgent, inside_calm, "signals")))
    return results


def render(results: list[tuple[str, str, dict[str, object]]]) -> str:
    lines = [
        "| set | classified by | urgent / not urgent | urgent recall | urgent below high | false alarms |",
        "|---|---|---|---|---|---|",
    ]
    for name, how, r in results:
        below = "-" if r["below_high"] is None else str(r["below_high"])
        lines.append(
            f"| {name} | {how} | {r['urgent']} / {r['not_urgent']} | {r['recall']:.3f} | {below} | "
            f"{float(str(r['false_alarms'])):.1%} |"
        )
    for name, how, r in results:
        for t in r["missed"]:  # type: ignore[attr-defined]
            lines.append(f"missed ({name}, {how}): {t}")
        for t in r["alarms"]:  # type: ignore[attr-defined]
            lines.append(f"false alarm ({name}, {how}): {t}")
    kinds = Counter(p.counter for p in read_pairs())
    lines.append("not-urgent sides by counter-signal: " + ", ".join(f"{k} {n}" for k, n in kinds.most_common()))
    return "\n".join(lines)


def main() -> list[tuple[str, str, dict[str, object]]]:
    results = run()
    print(render(results))
    return results

"""Counts of the triage corpus per label and split, as Markdown tables (pasted into README.md).

Run from anywhere: `python services/triage/corpus/stats.py`. Standard library only.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPLITS = ("train", "test", "late")


def load(folder: Path = HERE) -> list[dict[str, str]]:
    """Every item of every items-*.jsonl file, in file order."""
    items = []
    for path in sorted(folder.glob("items-*.jsonl")):
        with path.open(encoding="utf-8") as lines:
            items.extend(json.loads(line) for line in lines if line.strip())
    return items


def table(items: list[dict[str, str]], field: str) -> str:
    """One row per value of `field`, one column per split, and the total."""
    counts = Counter((item[field], item["split"]) for item in items)
    values = sorted({item[field] for item in items}, key=lambda v: (-sum(counts[v, s] for s in SPLITS), v))
    rows = [f"| {field} | " + " | ".join(SPLITS) + " | total |", "|---" * (len(SPLITS) + 2) + "|"]
    for value in values:
        per_split = [counts[value, s] for s in SPLITS]
        rows.append(f"| {value} | " + " | ".join(map(str, per_split)) + f" | {sum(per_split)} |")
    totals = [sum(counts[v, s] for v in values) for s in SPLITS]
    rows.append("| **all** | " + " | ".join(map(str, totals)) + f" | {sum(totals)} |")
    return "\n".join(rows)


def report(items: list[dict[str, str]]) -> str:
    """The tables README.md shows, plus text lengths."""
    lengths = sorted(len(item["text"]) for item in items)
    median = lengths[len(lengths) // 2]
    parts = [table(items, field) for field in ("type", "category", "urgency", "channel", "style")]
    parts.append(f"Text length: min {lengths[0]}, median {median}, max {lengths[-1]} characters.")
    return "\n\n".join(parts)


if __name__ == "__main__":
    print(report(load()))

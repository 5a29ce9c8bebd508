"""`fengqiao triage bench`: train the engine on the public labelled sets' training splits and
report macro-F1, per-class F1, accuracy and throughput on their test splits; then the engine as
deployed on the police corpus (cross-validated on train, test split, late split:
triage/corpus_bench.py).

The data (DESIGN: ../shared/data) is read where it lies and never copied into the repository.
Test splits are only ever predicted, never used to choose anything."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from threadpoolctl import threadpool_limits

from triage.model import Example, TextModel, read_tsv, score

TARGETS = {"teddycup_details": 0.90, "msgabench_type": 0.86, "teddycup_titles": 0.92}
CORPUS_PARTS = {"corpus_cv": "cv", "corpus_test": "test", "corpus_late": "late"}


@dataclass(frozen=True)
class Task:
    name: str
    train: tuple[str, ...]
    test: str
    label: str
    note: str


TASKS = (
    Task(
        "teddycup_details",
        ("teddycup2020/details_train.tsv",),
        "teddycup2020/details_test.tsv",
        "label",
        "Teddy Cup 2020 message details, 7 first-level classes",
    ),
    Task(
        "msgabench_type",
        ("msgabench/messages_train.tsv",),
        "msgabench/messages_test.tsv",
        "type",
        "MSGABench government messages, type (咨询/建言/投诉求助)",
    ),
    Task(
        "teddycup_titles",
        ("teddycup2020/titles_train.tsv", "teddycup2020/titles_dev.tsv"),
        "teddycup2020/titles_test.tsv",
        "label",
        "Teddy Cup 2020 message titles, 7 classes (extra)",
    ),
)


def run_task(data: Path, task: Task) -> dict:
    texts: list[str] = []
    labels: list[str] = []
    for name in task.train:
        t, y = read_tsv(data / name, task.label)
        texts += t
        labels += y
    test_texts, test_labels = read_tsv(data / task.test, task.label)
    with threadpool_limits(1):  # one core
        started = time.perf_counter()
        examples = [Example(t, {"category": y}) for t, y in zip(texts, labels, strict=True)]
        model = TextModel().fit(examples, heads=("category",))
        train_seconds = time.perf_counter() - started

        started = time.perf_counter()
        predicted = model.predict_labels(test_texts, "category").tolist()
        batch_seconds = time.perf_counter() - started

        started = time.perf_counter()  # the service's path: one message at a time, compiled
        single = [model.predict([text])[0]["category"].label for text in test_texts]
        single_seconds = time.perf_counter() - started
    assert single == predicted, "the compiled path must agree with sklearn"
    s = score(test_labels, predicted)
    return {
        "task": task.name,
        "note": task.note,
        "train_examples": len(texts),
        "test_examples": len(test_texts),
        **s.as_dict(),
        "target_macro_f1": TARGETS.get(task.name),
        "train_seconds": round(train_seconds, 2),
        "batch_messages_per_second": round(len(test_texts) / batch_seconds),
        "single_messages_per_second": round(len(test_texts) / single_seconds),
        "mean_characters": round(sum(map(len, test_texts)) / len(test_texts)),
    }


def run(data: Path, only: tuple[str, ...] = ()) -> list[dict]:
    if only and not any(t.name in only for t in TASKS):
        return []
    missing = [str(data / t.test) for t in TASKS if not (data / t.test).exists()]
    if missing:
        raise FileNotFoundError(
            f"benchmark data not found: {', '.join(missing)} (pass --data pointing at the shared data folder)"
        )
    return [run_task(data, t) for t in TASKS if not only or t.name in only]


def render(results: list[dict]) -> str:
    lines = [
        "| task | train / test | macro-F1 (target) | accuracy | batch msg/s | one-by-one msg/s | train s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        target = r["target_macro_f1"]
        verdict = "" if target is None else (f" ({target:.2f} {'met' if r['macro_f1'] >= target else 'NOT met'})")
        lines.append(
            f"| {r['task']} | {r['train_examples']} / {r['test_examples']} | {r['macro_f1']:.3f}{verdict} | "
            f"{r['accuracy']:.3f} | {r['batch_messages_per_second']:,} | "
            f"{r['single_messages_per_second']:,} | {r['train_seconds']} |"
        )
    lines.append("")
    for r in results:
        per_class = ", ".join(f"{k} {v:.3f}" for k, v in sorted(r["per_class"].items()))
        lines.append(f"{r['task']} per-class F1: {per_class}")
    return "\n".join(lines)


def main(data: str | None, out: str | None, only: tuple[str, ...]) -> list[dict]:
    from triage import corpus_bench

    unknown = set(only) - {t.name for t in TASKS} - set(CORPUS_PARTS)
    if unknown:
        raise FileNotFoundError(f"unknown task(s): {', '.join(sorted(unknown))}")
    path = Path(data or os.environ.get("FENGQIAO_BENCH_DATA", "../shared/data")).resolve()
    results = run(path, only)
    if results:
        print(render(results), flush=True)
    parts = [split for name, split in CORPUS_PARTS.items() if not only or name in only]
    corpus = corpus_bench.run(parts) if parts else []
    if corpus:
        print("\nPolice corpus (engine as deployed: shipped rules, signals, model on train + seed):")
        print(corpus_bench.render(corpus))
    if out:
        payload = {"public": results, "corpus": corpus}
        Path(out).write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
    return results + corpus

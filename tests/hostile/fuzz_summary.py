"""Summary of a `make fuzz` run: python tests/hostile/fuzz_summary.py REPORT.jsonl SECONDS"""

from __future__ import annotations

import json
import sys
from collections import Counter


def main(path: str, seconds: str) -> None:
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    statuses: Counter = Counter()
    for r in rows:
        statuses.update(r["statuses"])
    failing = [r for r in rows if r["failures"]]
    print(
        f"\nfuzz: {len(rows)} operations, {sum(r['examples'] for r in rows)} examples, "
        f"{sum(len(r['failures']) for r in rows)} failures in {len(failing)} operations, {seconds} s"
    )
    print("  statuses: " + ", ".join(f"{k.split()[1]}×{v}" for k, v in sorted(statuses.items())))
    for r in failing:
        for kind in r["failures"]:
            print(f"  FAIL {r['operation']}: {kind}\n       {r['detail'][kind].splitlines()[0][:300]}")


if __name__ == "__main__":
    main(*sys.argv[1:3])

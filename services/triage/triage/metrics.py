"""Triage's own metrics, on the process registry. Labels are bounded: station codes, the
taxonomy's fixed values, rule names (a fixed set in `assign`), model versions (few)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from fengqiao.metrics import Metrics, ServiceMetrics


class TriageMetrics(ServiceMetrics):
    def __init__(self, metrics: Metrics) -> None:
        r = metrics.registry
        self.classify_seconds = Histogram(
            "fengqiao_triage_classify_seconds",
            "Time to classify one item (rules and model).",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
            registry=r,
        )
        self.decisions = Counter(
            "fengqiao_triage_decisions_total",
            "Classifications by station, type, category and urgency.",
            ["station", "type", "category", "urgency"],
            registry=r,
        )
        self.model_info = Gauge(
            "fengqiao_triage_model_info", "The model version in use (1) and earlier ones (0).", ["version"], registry=r
        )
        self.merges = Counter(
            "fengqiao_triage_merges_total",
            "Items merged into an open case as repeats (并单).",
            ["station", "reason"],
            registry=r,
        )
        self.assignments = Counter(
            "fengqiao_triage_assignments_total",
            "Assignments by the rule that chose the assignee.",
            ["station", "rule"],
            registry=r,
        )
        self.waiting = Gauge(
            "fengqiao_items_waiting_for_officer",
            "Open items no officer holds (unassigned or in the leader's queue).",
            ["station"],
            registry=r,
        )

    def observe_decision(self, labels: dict[str, str], seconds: float) -> None:
        self.decisions.labels(**labels).inc()
        self.classify_seconds.observe(seconds)

    def model_changed(self, old: str, new: str) -> None:
        self.model_info.labels(version=old).set(0)
        self.model_info.labels(version=new).set(1)

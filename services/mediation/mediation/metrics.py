"""Mediation's own metrics, on the process registry (bounded labels: station codes, fixed sets)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from fengqiao.metrics import Metrics, ServiceMetrics


class MediationMetrics(ServiceMetrics):
    def __init__(self, metrics: Metrics) -> None:
        r = metrics.registry
        self.outcomes = Counter(
            "fengqiao_mediation_outcomes_total",
            "Mediation outcomes (agreement, no_agreement, withdrawn).",
            ["station", "outcome"],
            registry=r,
        )
        self.measures = Gauge(
            "fengqiao_rectification_measures",
            "Rectification measures open and overdue.",
            ["station", "state"],
            registry=r,
        )
        self.unaddressed = Gauge(
            "fengqiao_rectification_unaddressed_items",
            "Opinions and complaints about the station's work with no measure after 7 days.",
            ["station"],
            registry=r,
        )
        self.rates = Gauge(
            "fengqiao_station_rate",
            "Station rates over 30 days: response (accepted on time), "
            "resolution, on_time (resolved on time), satisfaction.",
            ["station", "rate"],
            registry=r,
        )
        self.calendar_missing = Gauge(
            "fengqiao_calendar_years_missing",
            "Years within 60 days whose holidays are unknown (deadlines fall back to Mon-Fri).",
            registry=r,
        )

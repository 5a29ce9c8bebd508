"""Prometheus metrics of DESIGN 4.7. One `Metrics` (and registry) per process, built in the
composition root. Label values are always from small fixed sets: never ids, people or text."""

from __future__ import annotations

from typing import Self, get_args

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from fengqiao.events import Channel, Topics

CHANNELS: tuple[str, ...] = get_args(Channel)
CONSUME_OUTCOMES = ("ok", "duplicate", "retried", "dead_lettered", "ignored")
STAGES = ("triaged", "assigned", "accepted", "resolved", "visited", "notified")
_STAGE_BUCKETS = (
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    300,
    900,
    3600,
    4 * 3600,
    24 * 3600,
    3 * 24 * 3600,
    13 * 24 * 3600,
    30 * 24 * 3600,
)


class Metrics:
    def __init__(self, service: str) -> None:
        # Long on purpose: one flat list of every metric, in registration (/metrics) order; methods would scatter it.
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.feedback_received = Counter(
            "fengqiao_feedback_received_total", "Submissions accepted by intake.", ["station", "channel"], registry=r
        )
        self.stage_seconds = Histogram(
            "fengqiao_stage_seconds",
            "Time from submission to reaching a stage.",
            ["stage"],
            buckets=_STAGE_BUCKETS,
            registry=r,
        )
        self.events_consumed = Counter(
            "fengqiao_events_consumed_total", "Consumed events by outcome.", ["topic", "outcome"], registry=r
        )
        self.event_handle_seconds = Histogram(
            "fengqiao_event_handle_seconds",
            "Time to handle one event (or its share of a batch).",
            ["topic"],
            registry=r,
        )
        self.outbox_pending = Gauge("fengqiao_outbox_pending_events", "Outbox rows not yet published.", registry=r)
        self.outbox_oldest_age = Gauge(
            "fengqiao_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row.", registry=r
        )
        self.outbox_published = Counter(
            "fengqiao_outbox_published_total", "Outbox rows published to Kafka.", registry=r
        )
        self.consumer_lag = Gauge(
            "fengqiao_consumer_lag_messages", "Highwater minus position, summed over partitions.", ["topic"], registry=r
        )
        self.cases_open = Gauge(
            "fengqiao_cases_open", "Open cases by station and status.", ["station", "status"], registry=r
        )
        self.sla_breaches = Counter(
            "fengqiao_sla_breaches_total", "Missed deadlines.", ["station", "clock"], registry=r
        )
        self.survey_responses = Counter(
            "fengqiao_survey_responses_total", "Return-visit survey answers.", ["station", "result"], registry=r
        )
        self.notifications = Counter(
            "fengqiao_notifications_total", "Notification deliveries by outcome.", ["channel", "outcome"], registry=r
        )
        self.alerts_raised = Counter(
            "fengqiao_alerts_raised_total", "Early-warning alerts.", ["station", "kind"], registry=r
        )
        self.http_request_seconds = Histogram(
            "fengqiao_http_request_seconds",
            "HTTP request latency by route template.",
            ["method", "route", "status"],
            registry=r,
        )
        self.rejections = Counter(
            "fengqiao_requests_rejected_total",
            "Requests refused with a 4xx, by route template and error code.",
            ["route", "code"],
            registry=r,
        )
        self.service_up = Gauge("fengqiao_service_info", "Service identity.", ["service"], registry=r)
        self.service_up.labels(service=service).set(1)
        for stage in STAGES:
            self.stage_seconds.labels(stage=stage)

    def init_consumer_series(self, topics: list[str]) -> None:
        for topic in topics:
            self.consumer_lag.labels(topic=topic).set(0)
            self.event_handle_seconds.labels(topic=topic)
            for outcome in CONSUME_OUTCOMES:
                self.events_consumed.labels(topic=topic, outcome=outcome)

    def init_station_series(self, stations: list[str]) -> None:
        for station in stations:
            for channel in CHANNELS:
                self.feedback_received.labels(station=station, channel=channel)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class ServiceMetrics:
    """Base of a service's own metrics: built once per process registry, on first use."""

    def __init__(self, metrics: Metrics) -> None:  # subclasses register their series here
        pass

    @classmethod
    def of(cls, metrics: Metrics) -> Self:
        own: dict[type[ServiceMetrics], ServiceMetrics] = metrics.__dict__.setdefault("_service_metrics", {})
        instance = own.get(cls)
        if not isinstance(instance, cls):  # the entry of `cls` is always a `cls`: this is "not yet built"
            instance = own[cls] = cls(metrics)
        return instance


__all__ = ["Metrics", "ServiceMetrics", "Topics"]

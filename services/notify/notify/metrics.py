"""Notify's own metrics, on the process registry (labels: channel and fixed states only)."""

from __future__ import annotations

from prometheus_client import Gauge, Histogram

from fengqiao.metrics import Metrics, ServiceMetrics

CHANNELS = ("sms", "email", "webhook", "console")
OUTCOMES = ("queued", "sent", "delivered", "retried", "deferred", "failed", "resent", "dismissed", "cancelled")
QUEUE_STATES = ("pending", "deferred", "sending")
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 24 * 3600)


class NotifyMetrics(ServiceMetrics):
    def __init__(self, metrics: Metrics) -> None:
        r = metrics.registry
        self.notifications = metrics.notifications
        self.latency = Histogram(
            "fengqiao_notification_delivery_seconds",
            "From the event to the message accepted by its gateway (SMS, e-mail, webhook), holds and retries included.",
            ["channel"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue = Gauge(
            "fengqiao_notification_queue",
            "Deliveries not yet sent: pending (due or waiting for a "
            "retry), deferred (quiet hours, rate limit), sending.",
            ["channel", "state"],
            registry=r,
        )
        self.failed = Gauge(
            "fengqiao_notifications_failed_unresent",
            "Deliveries that failed after the last retry and wait for a manual resend.",
            ["channel"],
            registry=r,
        )
        for channel in CHANNELS:
            for outcome in OUTCOMES:
                self.notifications.labels(channel=channel, outcome=outcome)
            if channel != "console":
                self.latency.labels(channel=channel)
                self.failed.labels(channel=channel).set(0)
                for state in QUEUE_STATES:
                    self.queue.labels(channel=channel, state=state).set(0)

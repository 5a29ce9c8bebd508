"""Pure rules of case handling. The full state machine and SLA calendar come with the case
handling issue; the skeleton needs only the acceptance deadline."""

from __future__ import annotations

from datetime import datetime, timedelta

ACCEPT_WITHIN = timedelta(hours=1)


def accept_deadline(assigned_at: datetime) -> datetime:
    return assigned_at + ACCEPT_WITHIN

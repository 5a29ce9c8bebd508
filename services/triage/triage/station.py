"""A station's own settings as triage uses them (issue 15). Pure: db.station_settings reads the
station's row of the directory copy (published by mediation in StationUpserted); this decides.

- An inactive station gets no new assignment: an item already on its way when the station was
  deactivated waits unassigned and flagged for the bureau (it can transfer it to another station).
- The station's category -> team mapping decides the team; categories it does not name fall back
  to triage's rules (`assignment_rules`: the station's rows, then the deployment default).
- The station's alert thresholds, where set, come before triage's `alert_thresholds` table: the
  station's row for the category, then its row for every category (`*`), then the table."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from triage.alerts import Thresholds
from triage.assign import Assignment

KINDS = frozenset({"cluster", "trend", "repeat_dispute"})
STATION_INACTIVE_REASON = "rule:station_inactive;bureau_review"


@dataclass(frozen=True)
class StationSettings:
    active: bool = True
    category_teams: Mapping[str, str] = field(default_factory=dict)
    thresholds: Mapping[tuple[str, str], Thresholds] = field(default_factory=dict)  # (category, kind)

    def team_for_category(self, fallback: Mapping[str, str]) -> dict[str, str]:
        return {**fallback, **self.category_teams}

    def threshold(
        self, category: str, kind: str, fallback: Callable[[str, str], Thresholds | None]
    ) -> Thresholds | None:
        own = self.thresholds.get((category, kind)) or self.thresholds.get(("*", kind))
        return own or fallback(category, kind)


UNKNOWN_STATION = StationSettings()  # no copy yet: as before settings existed


def _json(value: Any) -> Any:
    if not isinstance(value, str | bytes):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return None


def _threshold(entry: Any) -> tuple[tuple[str, str], Thresholds] | None:
    """One entry of the published list, or None if it is not a usable threshold (the directory
    validates them; a copy never trusts a value it cannot use)."""
    if not isinstance(entry, dict) or entry.get("kind") not in KINDS:
        return None
    category = entry.get("category", "*")
    values = [entry.get(k) for k in ("window_hours", "yellow", "orange", "red")]
    if not isinstance(category, str) or not all(type(v) is int and v > 0 for v in values):
        return None
    window, yellow, orange, red = values
    if not yellow <= orange <= red:  # type: ignore[operator]
        return None
    return (category, entry["kind"]), Thresholds(window, yellow, orange, red)  # type: ignore[arg-type]


def settings_of(active: bool, category_teams: Any, alert_thresholds: Any) -> StationSettings:
    """The settings from the columns of the station's row in triage's directory copy."""
    teams = _json(category_teams) or {}
    entries = _json(alert_thresholds) or []
    parsed = [t for t in (_threshold(e) for e in entries) if t is not None] if isinstance(entries, list) else []
    return StationSettings(
        active=active,
        category_teams={k: v for k, v in teams.items() if isinstance(k, str) and isinstance(v, str) and v}
        if isinstance(teams, dict)
        else {},
        thresholds=dict(parsed),
    )


def station_inactive() -> Assignment:
    """Nobody at the station: the item waits unassigned, flagged, for the bureau to transfer it."""
    return Assignment(None, None, None, STATION_INACTIVE_REASON, flagged=True, notify_leader=False)

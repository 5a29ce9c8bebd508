"""A station's own settings: its category -> team mapping and alert thresholds come first, a copy
never trusts a threshold it cannot use, and an inactive station's item waits for the bureau."""

from __future__ import annotations

import json

from triage.alerts import Thresholds
from triage.station import STATION_INACTIVE_REASON, settings_of, station_inactive

TABLE = Thresholds(24, 3, 5, 10)


def table(category: str, kind: str) -> Thresholds | None:
    return TABLE if kind == "cluster" else None


def test_the_station_mapping_decides_the_team_and_the_built_in_one_fills_in():
    s = settings_of(True, json.dumps({"noise": "special"}), "[]")
    assert s.team_for_category({"noise": "community", "theft": "patrol"}) == {"noise": "special", "theft": "patrol"}


def test_the_station_thresholds_come_before_triages_table_category_first():
    entries = [
        {"kind": "cluster", "category": "noise", "window_hours": 12, "yellow": 1, "orange": 2, "red": 3},
        {"kind": "cluster", "category": "*", "window_hours": 6, "yellow": 2, "orange": 4, "red": 6},
    ]
    s = settings_of(True, {}, json.dumps(entries))
    assert s.threshold("noise", "cluster", table) == Thresholds(12, 1, 2, 3)
    assert s.threshold("theft", "cluster", table) == Thresholds(6, 2, 4, 6)
    assert s.threshold("theft", "trend", table) is None
    assert settings_of(True, {}, []).threshold("noise", "cluster", table) == TABLE


def test_unusable_thresholds_and_mappings_are_ignored():
    entries = [
        {"kind": "volcano", "window_hours": 1, "yellow": 1, "orange": 1, "red": 1},
        {"kind": "cluster", "window_hours": 0, "yellow": 1, "orange": 1, "red": 1},
        {"kind": "cluster", "window_hours": 1, "yellow": 5, "orange": 2, "red": 1},
        {"kind": "cluster", "window_hours": "1", "yellow": 1, "orange": 1, "red": 1},
        "cluster",
    ]
    s = settings_of(True, {"noise": 3, "theft": ""}, entries)
    assert s.thresholds == {} and s.category_teams == {}
    assert settings_of(True, "not a mapping", {"kind": "cluster"}).thresholds == {}


def test_an_inactive_stations_item_is_flagged_for_the_bureau_unassigned():
    a = station_inactive()
    assert a.assignee_id is None and a.flagged and a.reason == STATION_INACTIVE_REASON
    assert not settings_of(False, {}, []).active

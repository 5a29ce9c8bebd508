"""What classification and assignment read on every item, cached in the process: the active
model, the deployment's rules, team rules and alert thresholds. Refreshed from the database every
`refresh_s` seconds, so a model activated or a rule added by one replica reaches all of them."""

from __future__ import annotations

import time

import asyncpg
import structlog

from triage import db
from triage.alerts import Thresholds
from triage.engine import RULES_ONLY
from triage.model import TextModel
from triage.rules import RuleSet
from triage.training import ensure_active_model

log = structlog.get_logger(__name__)


class EngineState:
    def __init__(self, refresh_s: float = 10.0) -> None:
        self.refresh_s = refresh_s
        self.model: TextModel | None = None
        self.version = RULES_ONLY
        self.rules = RuleSet()
        self.teams: dict[str, dict[str, str]] = {}
        self.thresholds: dict[tuple[str, str, str], Thresholds] = {}
        self.loaded_at = 0.0
        self.on_model_change = None  # callback(old_version, new_version)
        self._trend_checked: dict[tuple[str, str], float] = {}

    async def current(self, conn: asyncpg.Connection) -> "EngineState":
        if time.monotonic() - self.loaded_at > self.refresh_s:
            await self.refresh(conn)
        return self

    async def refresh(self, conn: asyncpg.Connection) -> None:
        version = await ensure_active_model(conn)
        if version != self.version:
            row = await db.model_artifact(conn, version)
            model = TextModel.loads(row["artifact"], row["sha256"])
            old, self.model, self.version = self.version, model, version
            log.info("model_loaded", version=version, previous=old)
            if self.on_model_change:
                self.on_model_change(old, version)
        self.rules = RuleSet().with_rules(await db.deployment_rules(conn))
        self.teams = await db.team_rules(conn)
        self.thresholds = await db.thresholds(conn)
        self.loaded_at = time.monotonic()

    def trend_due(self, station: str, category: str, every_s: float = 30.0) -> bool:
        """A 24-hour trend moves slowly: each replica evaluates it at most every `every_s` per
        station and category, instead of on every item."""
        now = time.monotonic()
        key = (station, category)
        if now - self._trend_checked.get(key, -every_s) < every_s:
            return False
        self._trend_checked[key] = now
        return True

    def team_for_category(self, station: str) -> dict[str, str]:
        return {**self.teams.get("*", {}), **self.teams.get(station, {})}

    def threshold(self, station: str, category: str, kind: str) -> Thresholds | None:
        for key in ((station, category, kind), (station, "*", kind), ("*", category, kind), ("*", "*", kind)):
            if key in self.thresholds:
                return self.thresholds[key]
        return None

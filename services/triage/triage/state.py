"""What classification and assignment read on every item, cached in the process: the active
model, the deployment's rules, team rules and alert thresholds. Refreshed from the database every
`refresh_s` seconds, so a model activated or a rule added by one replica reaches all of them."""

from __future__ import annotations

import time
from collections.abc import Callable

import asyncpg
import structlog

from triage import db
from triage.alerts import Thresholds
from triage.engine import RULES_ONLY
from triage.model import TextModel
from triage.review import REVIEW_BELOW
from triage.rules import InvalidPattern, Rule, RuleSet
from triage.signing import ModelRejected, ModelSigner
from triage.training import ensure_active_model, seed_model, seed_version

log = structlog.get_logger(__name__)


class EngineState:
    def __init__(self, refresh_s: float = 10.0, signer: ModelSigner | None = None) -> None:
        self.refresh_s = refresh_s
        self.signer = signer
        self.model: TextModel | None = None
        self.version = RULES_ONLY
        self.rules = RuleSet()
        self.teams: dict[str, dict[str, str]] = {}
        self.thresholds: dict[tuple[str, str, str], Thresholds] = {}
        self.review: dict[str, dict[str, float]] = {}
        self.loaded_at = 0.0
        self.on_model_change: Callable[[str, str], None] | None = None  # callback(old_version, new_version)
        self._trend_checked: dict[tuple[str, str], float] = {}
        self._rejected: set[str] = set()  # versions whose artifact did not verify (logged once each)
        self._skipped_rules: set[str | None] = set()  # rule ids RE2 refused (logged once each)
        self._warned_no_key = False

    async def current(self, conn: asyncpg.Connection) -> EngineState:
        if time.monotonic() - self.loaded_at > self.refresh_s:
            await self.refresh(conn)
        return self

    async def refresh(self, conn: asyncpg.Connection) -> None:
        if self.signer is None and not self._warned_no_key:
            log.error(
                "model_signing_key_missing", detail="FENGQIAO_PII_INDEX_KEY is not set: classifying by rules only"
            )
            self._warned_no_key = True
        version = await ensure_active_model(conn, self.signer)
        if version is not None and version != self.version:
            await self._load(conn, version)
        self.rules = RuleSet().with_rules(self._usable(await db.deployment_rules(conn)))
        self.teams = await db.team_rules(conn)
        self.thresholds = await db.thresholds(conn)
        self.review = await db.review_thresholds(conn)
        self.loaded_at = time.monotonic()

    async def _load(self, conn: asyncpg.Connection, version: str) -> None:
        """Switch to `version` if its artifact verifies. Otherwise keep the model in use; with none
        in use yet, rebuild the seed model from the shipped data (never unpickle the stored bytes)."""
        row = await db.model_artifact(conn, version)
        try:
            if row is None:
                raise ModelRejected("missing")
            model = TextModel.loads(row["artifact"], version=version, signature=row["signature"], signer=self.signer)
        except ModelRejected as exc:
            if version not in self._rejected:
                self._rejected.add(version)
                log.error("model_rejected", version=version, reason=str(exc), keeping=self.version)
            if self.model is None and self.signer is not None:
                self._switch(seed_model(), seed_version())
            return
        self._switch(model, version)

    def _switch(self, model: TextModel, version: str) -> None:
        old, self.model, self.version = self.version, model, version
        log.info("model_loaded", version=version, previous=old)
        if self.on_model_change:
            self.on_model_change(old, version)

    def _usable(self, rules: list[Rule]) -> list[Rule]:
        """Deployment rules RE2 can compile. A stored pattern it refuses (one written before the
        API checked with RE2, or straight into the table) is skipped and logged by id, never by
        its text, and never stops the consumer."""
        usable = []
        for rule in rules:
            try:
                usable.append(rule.check())
            except InvalidPattern:
                if rule.rule_id not in self._skipped_rules:
                    self._skipped_rules.add(rule.rule_id)
                    log.error("rule_skipped", rule_id=rule.rule_id, station=rule.station, reason="re2_cannot_compile")
        return usable

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

    def review_below(self, station: str) -> dict[str, float]:
        """The station's review thresholds (its own row, else '*', else the shipped defaults)."""
        return self.review.get(station) or self.review.get("*") or dict(REVIEW_BELOW)

    def threshold(self, station: str, category: str, kind: str) -> Thresholds | None:
        for key in ((station, category, kind), (station, "*", kind), ("*", category, kind), ("*", "*", kind)):
            if key in self.thresholds:
                return self.thresholds[key]
        return None

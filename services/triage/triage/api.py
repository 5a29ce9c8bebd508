"""Triage's staff API: why an item was classified and assigned as it was, early-warning alerts,
the deployment's rules (leaders and admins edit them), and model versions."""

from __future__ import annotations

import json
import re
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from fengqiao.auth import Principal
from fengqiao.http import StaffPrincipal, api_error, iso
from fengqiao.runtime import RuntimeDep
from triage import db
from triage.engine import CATEGORIES, TYPES, URGENCY_ORDER
from triage.rules import Rule

router = APIRouter(prefix="/api/v1/triage", tags=["triage"])
EDITORS = frozenset({"leader", "admin"})


def _station_scope(principal: Principal, station: str | None) -> str | None:
    if principal.sees_all_stations:
        return station
    if station and station != principal.station:
        raise api_error(404, "not_found", "未找到该派出所的数据。")
    return principal.station


@router.get("/decisions/{tracking_no}")
async def get_decision(tracking_no: str, rt: RuntimeDep, principal: StaffPrincipal) -> dict:
    """The classification with its reasons and model version, the assignment and why, the merge."""
    async with rt.pool.acquire() as conn:
        row = await db.decision(conn, tracking_no)
        if row is None or not principal.can_see_station(row["station"]):
            raise api_error(404, "not_found", "未找到该事项的分类记录。")
        assignment = await conn.fetchrow(
            "SELECT assignee_id, team, reason, flagged, open, assigned_at FROM assignments WHERE tracking_no = $1",
            tracking_no)
    confidences = row["confidences"]
    return {
        "tracking_no": row["tracking_no"], "station": row["station"], "type": row["type"],
        "category": row["category"], "urgency": row["urgency"], "needs_mediation": row["needs_mediation"],
        "confidence": row["confidence"],
        "confidences": json.loads(confidences) if isinstance(confidences, str) else confidences,
        "sentiment": row["sentiment"], "model_version": row["model_version"], "reasons": row["reasons"],
        "merged_into": row["merged_into"], "corrected": row["corrected"], "decided_at": iso(row["decided_at"]),
        "assignment": None if assignment is None else {
            **dict(assignment), "assigned_at": iso(assignment["assigned_at"])},
    }


@router.get("/alerts")
async def list_alerts(rt: RuntimeDep, principal: StaffPrincipal, station: str | None = None,
                      limit: int = 100) -> dict:
    scope = _station_scope(principal, station)
    async with rt.pool.acquire() as conn:
        rows = await db.alerts(conn, scope, min(max(limit, 1), 500))
    return {"alerts": [{**dict(r), "raised_at": iso(r["raised_at"]), "updated_at": iso(r["updated_at"]),
                        "expires_at": iso(r["expires_at"])} for r in rows]}


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    field: Literal["type", "category", "urgency", "needs_mediation"]
    value: str = Field(min_length=1, max_length=40)
    pattern: str = Field(min_length=1, max_length=200)
    is_regex: bool = False
    weight: float = Field(default=1.0, gt=0, le=10)
    station: str | None = Field(default=None, max_length=32, description="omit for every station (admin only)")

    @model_validator(mode="after")
    def _check(self) -> "RuleIn":
        allowed = {"type": TYPES, "category": CATEGORIES, "urgency": URGENCY_ORDER, "needs_mediation": ("true",)}
        if self.value not in allowed[self.field]:
            raise ValueError(f"value must be one of {', '.join(allowed[self.field])} for field {self.field}")
        if self.is_regex:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern is not a valid regular expression: {exc}") from exc
        return self


@router.get("/rules")
async def list_rules(rt: RuntimeDep, principal: StaffPrincipal, station: str | None = None) -> dict:
    scope = _station_scope(principal, station)
    async with rt.pool.acquire() as conn:
        rows = await db.list_rules(conn, scope)
    return {"rules": [{**dict(r), "created_at": iso(r["created_at"])} for r in rows]}


@router.post("/rules", status_code=201)
async def add_rule(body: RuleIn, rt: RuntimeDep, principal: StaffPrincipal, request: Request) -> dict:
    """Leaders add rules for their station; admins also for every station (no `station`)."""
    if principal.role not in EDITORS:
        raise api_error(403, "forbidden", "只有所长或管理员可以修改分类规则。")
    station = body.station
    if principal.role != "admin":
        if station is None:
            station = principal.station
        if station != principal.station:
            raise api_error(403, "forbidden", "只能修改本所的分类规则。")
    rule = Rule(body.field, body.value, body.pattern, body.is_regex, body.weight, station)
    async with rt.pool.acquire() as conn:
        rule_id = await db.add_rule(conn, rule, principal.staff_id or principal.token_id)
    request.app.state.engine.loaded_at = 0.0  # this replica applies it to the next item
    return {"rule_id": rule_id, "station": station, "field": body.field, "value": body.value,
            "pattern": body.pattern, "is_regex": body.is_regex, "weight": body.weight}


@router.delete("/rules/{rule_id}", status_code=204)
async def delete_rule(rule_id: int, rt: RuntimeDep, principal: StaffPrincipal, request: Request) -> None:
    if principal.role not in EDITORS:
        raise api_error(403, "forbidden", "只有所长或管理员可以修改分类规则。")
    async with rt.pool.acquire() as conn:
        if not await db.deactivate_rule(conn, rule_id, None if principal.role == "admin" else principal.station):
            raise api_error(404, "not_found", "未找到该规则。")
    request.app.state.engine.loaded_at = 0.0


@router.get("/models")
async def list_models(rt: RuntimeDep, principal: StaffPrincipal) -> dict:
    async with rt.pool.acquire() as conn:
        rows = await db.models(conn)
    out = []
    for r in rows:
        item = dict(r)
        for k in ("trained_on", "scores"):
            item[k] = json.loads(item[k]) if isinstance(item[k], str) else item[k]
        item["created_at"], item["activated_at"] = iso(r["created_at"]), iso(r["activated_at"])
        out.append(item)
    return {"models": out}

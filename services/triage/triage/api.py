"""Triage's staff API: why an item was classified and assigned as it was, early-warning alerts,
the deployment's rules (leaders and admins edit them), and model versions."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from fengqiao.auth import Principal
from fengqiao.http import StaffPrincipal, api_error, iso
from fengqiao.runtime import RuntimeDep
from triage import db
from triage.assign import LEADERSHIP
from triage.deps import EngineDep
from triage.engine import CATEGORIES, TYPES, URGENCY_ORDER
from triage.rules import MAX_PATTERN_LENGTH, REGEX_BUDGET, InvalidPattern, Rule, compile_pattern, regex_cost

router = APIRouter(prefix="/api/v1/triage", tags=["triage"])
EDITORS = frozenset({"leader", "admin"})
# Every active rule runs on every item of its station in the consumer all stations share.
MAX_RULES_PER_STATION = 200

TrackingNo = Annotated[str, Path(min_length=1, max_length=64)]
RuleId = Annotated[int, Path(ge=1, le=2**63 - 1)]  # bigserial: beyond it is no rule, not a 500
StationCode = Annotated[str | None, Query(min_length=1, max_length=32)]


def _own_station(principal: Principal) -> str:
    """The station a station-role token is scoped to. A token without one sees nothing: only
    bureau and admin see every station, and `None` never means "all"."""
    if principal.station is None:
        raise api_error(404, "not_found", "未找到该派出所的数据。")
    return principal.station


def _station_scope(principal: Principal, station: str | None) -> str | None:
    """None (every station) only for bureau and admin asking for no particular station."""
    if principal.sees_all_stations:
        return station
    own = _own_station(principal)
    if station and station != own:
        raise api_error(404, "not_found", "未找到该派出所的数据。")
    return own


async def _may_see_confidential(conn, principal: Principal, station: str) -> bool:
    """A confidential tip-off (举报人保密) is for the station's leadership, the handlers their leader
    approved (`confidential_handler` in the directory) and the bureau's supervisors (督办), as in
    mediation's case view; not for the rest of the station, nor for admins."""
    if principal.role == "bureau":
        return True
    if principal.sees_all_stations or principal.station != station:
        return False
    if principal.role in LEADERSHIP:
        return True
    if principal.staff_id is None:
        return False
    return await db.is_confidential_handler(conn, principal.staff_id, station)


@router.get("/decisions/{tracking_no}")
async def get_decision(tracking_no: TrackingNo, rt: RuntimeDep, principal: StaffPrincipal) -> dict:
    """The classification with its reasons and model version, the assignment and why, the merge.
    Another station's item, a confidential one the caller may not see, or one that names the caller
    in a complaint (or whose leader kept the caller out): 404."""
    async with rt.pool.acquire() as conn:
        row = await db.decision(conn, tracking_no)
        if (
            row is None
            or not principal.can_see_station(row["station"])
            or (principal.staff_id is not None and principal.staff_id in row["excluded_staff"])
            or (row["confidential"] and not await _may_see_confidential(conn, principal, row["station"]))
        ):
            raise api_error(404, "not_found", "未找到该事项的分类记录。")
        assignment = await db.assignment(conn, tracking_no)
    confidences = row["confidences"]
    return {
        "tracking_no": row["tracking_no"],
        "station": row["station"],
        "type": row["type"],
        "category": row["category"],
        "urgency": row["urgency"],
        "needs_mediation": row["needs_mediation"],
        "confidence": row["confidence"],
        "confidences": json.loads(confidences) if isinstance(confidences, str) else confidences,
        "sentiment": row["sentiment"],
        "model_version": row["model_version"],
        "reasons": row["reasons"],
        "merged_into": row["merged_into"],
        "merge_reason": row["merge_reason"],
        "confidential": row["confidential"],
        "corrected": row["corrected"],
        "decided_at": iso(row["decided_at"]),
        "assignment": None
        if assignment is None
        else {**dict(assignment), "assigned_at": iso(assignment["assigned_at"])},
    }


@router.get("/alerts")
async def list_alerts(
    rt: RuntimeDep,
    principal: StaffPrincipal,
    station: StationCode = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict:
    scope = _station_scope(principal, station)
    async with rt.pool.acquire() as conn:
        rows = await db.alerts(conn, scope, limit)
    return {
        "alerts": [
            {
                **dict(r),
                "raised_at": iso(r["raised_at"]),
                "updated_at": iso(r["updated_at"]),
                "expires_at": iso(r["expires_at"]),
            }
            for r in rows
        ]
    }


class RuleIn(BaseModel):
    # Fields are validated in this order, so `value` and `pattern` can look at `field` and
    # `is_regex`, and each error names the field at fault.
    model_config = ConfigDict(extra="forbid")
    field: Literal["type", "category", "urgency", "needs_mediation"]
    is_regex: bool = False
    value: str = Field(min_length=1, max_length=40)
    pattern: str = Field(
        min_length=1,
        max_length=MAX_PATTERN_LENGTH,
        description="a keyword, or with is_regex an RE2 regular expression (no backreferences "
        "or lookarounds: rules run in linear time)",
    )
    weight: float = Field(default=1.0, gt=0, le=10)
    station: str | None = Field(
        default=None, min_length=1, max_length=32, description="omit for every station (admin only)"
    )

    @field_validator("value")
    @classmethod
    def _value_allowed(cls, value: str, info: ValidationInfo) -> str:
        allowed = {"type": TYPES, "category": CATEGORIES, "urgency": URGENCY_ORDER, "needs_mediation": ("true",)}
        head = info.data.get("field")
        if head in allowed and value not in allowed[head]:
            raise ValueError(f"value must be one of {', '.join(allowed[head])} for field {head}")
        return value

    @field_validator("pattern")
    @classmethod
    def _pattern_runs_in_linear_time(cls, pattern: str, info: ValidationInfo) -> str:
        if info.data.get("is_regex"):
            try:
                compile_pattern(pattern)
            except InvalidPattern as exc:
                raise ValueError(str(exc)) from None
        return pattern


@router.get("/rules")
async def list_rules(rt: RuntimeDep, principal: StaffPrincipal, station: StationCode = None) -> dict:
    scope = _station_scope(principal, station)
    async with rt.pool.acquire() as conn:
        rows = await db.list_rules(conn, scope)
    return {"rules": [{**dict(r), "created_at": iso(r["created_at"])} for r in rows]}


@router.post("/rules", status_code=201)
async def add_rule(body: RuleIn, rt: RuntimeDep, principal: StaffPrincipal, engine: EngineDep) -> dict:
    """Leaders add rules for their station; admins also for every station (no `station`)."""
    if principal.role not in EDITORS:
        raise api_error(403, "forbidden", "只有所长或管理员可以修改分类规则。")
    station = body.station
    if principal.role != "admin":
        own = _own_station(principal)  # a leader's token without a station adds no rule, least of all a global one
        if station is None:
            station = own
        if station != own:
            raise api_error(403, "forbidden", "只能修改本所的分类规则。")
    rule = Rule(body.field, body.value, body.pattern, body.is_regex, body.weight, station)
    async with rt.pool.acquire() as conn, conn.transaction():
        if not await db.rule_slot_free(conn, station, MAX_RULES_PER_STATION):
            raise api_error(
                409, "too_many_rules", f"规则数量已达上限（{MAX_RULES_PER_STATION}条），请先删除不再需要的规则。"
            )
        if body.is_regex and regex_cost([*await db.active_regex_patterns(conn, station), body.pattern]) > REGEX_BUDGET:
            raise api_error(
                409, "rules_too_costly", "本所的正则规则总体过于复杂，请先删除或简化已有的正则规则。", field="pattern"
            )
        rule_id = await db.add_rule(conn, rule, principal.staff_id or principal.token_id)
    engine.loaded_at = 0.0  # this replica applies it to the next item
    return {
        "rule_id": rule_id,
        "station": station,
        "field": body.field,
        "value": body.value,
        "pattern": body.pattern,
        "is_regex": body.is_regex,
        "weight": body.weight,
    }


@router.delete("/rules/{rule_id}", status_code=204)
async def delete_rule(rule_id: RuleId, rt: RuntimeDep, principal: StaffPrincipal, engine: EngineDep) -> None:
    if principal.role not in EDITORS:
        raise api_error(403, "forbidden", "只有所长或管理员可以修改分类规则。")
    scope = None if principal.role == "admin" else _own_station(principal)
    async with rt.pool.acquire() as conn:
        if not await db.deactivate_rule(conn, rule_id, scope):
            raise api_error(404, "not_found", "未找到该规则。")
    engine.loaded_at = 0.0


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
        if not principal.sees_all_stations:  # who activated it is a person of some station: not everyone's business
            item["activated_by"] = None
        out.append(item)
    return {"models": out}

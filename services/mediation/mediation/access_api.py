"""The leader's exclusions of a case (回避): who may not open it, and why."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from fengqiao.http import StaffPrincipal, api_error, iso
from fengqiao.runtime import RuntimeDep
from mediation import access, db
from mediation.api import LEADERSHIP_AND_BUREAU
from mediation.deps import CurrentActor, TrackingNo
from mediation.unit import audit, staff_unit

router = APIRouter(prefix="/api/v1", tags=["cases"])

StaffId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_-]+$")]


class ExclusionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    staff_id: str = Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_-]+$")
    reason: str = Field(min_length=1, max_length=500)


@router.get("/cases/{tracking_no}/exclusions")
async def list_exclusions(tracking_no: TrackingNo, rt: RuntimeDep, principal: StaffPrincipal) -> dict:
    """Who may not open the case: staff named in it (`origin` triage) and the leader's exclusions
    with their reasons. The station's leadership and bureau supervisors."""
    if principal.role not in LEADERSHIP_AND_BUREAU:
        raise api_error(403, "forbidden", "只有所领导和分局可以查看回避人员。")
    async with staff_unit(rt.pool, principal) as (conn, _):
        case = await db.cases.get_case(conn, tracking_no)
        if case is None:
            raise api_error(404, "not_found", "未找到该事项。")
        rows = await db.access.exclusions(conn, tracking_no)
        await audit(conn, principal, "view_exclusions", tracking_no, case["station"])
    return {"tracking_no": tracking_no, "exclusions": [{k: iso(v) for k, v in dict(r).items()} for r in rows]}


@router.post("/cases/{tracking_no}/exclusions", status_code=201)
async def add_exclusion(
    tracking_no: TrackingNo, body: ExclusionIn, rt: RuntimeDep, principal: StaffPrincipal, actor: CurrentActor
) -> dict:
    """The station's leader (所长) keeps a member of staff out of the case, with a reason: they no
    longer see it in intake, triage or here. Not the case's holder (reassign first)."""
    if not body.reason.strip():
        raise api_error(422, "missing_reason", "请说明回避理由。", field="reason")
    async with staff_unit(rt.pool, principal) as (conn, outbox):
        case = await db.cases.case_for_update(conn, tracking_no)
        if case is None:
            raise api_error(404, "not_found", "未找到该事项。")
        await access.exclude(
            conn,
            outbox,
            case=case,
            actor=actor,
            staff_id=body.staff_id,
            reason=body.reason.strip(),
            now=datetime.now(UTC),
        )
        await audit(conn, principal, "exclude", tracking_no, case["station"], f"{body.staff_id}: {body.reason.strip()}")
    return {"tracking_no": tracking_no, "staff_id": body.staff_id, "excluded": True}


@router.delete("/cases/{tracking_no}/exclusions/{staff_id}")
async def remove_exclusion(
    tracking_no: TrackingNo,
    staff_id: StaffId,
    rt: RuntimeDep,
    principal: StaffPrincipal,
    actor: CurrentActor,
    reason: Annotated[str, Query(min_length=1, max_length=500)],
) -> dict:
    """The leader lets a member of staff open the case again, with a reason."""
    async with staff_unit(rt.pool, principal) as (conn, outbox):
        case = await db.cases.case_for_update(conn, tracking_no)
        if case is None:
            raise api_error(404, "not_found", "未找到该事项。")
        await access.restore(conn, outbox, case=case, actor=actor, staff_id=staff_id, now=datetime.now(UTC))
        await audit(conn, principal, "restore_access", tracking_no, case["station"], f"{staff_id}: {reason.strip()}")
    return {"tracking_no": tracking_no, "staff_id": staff_id, "excluded": False}

"""The leader's exclusions of a case (回避): who may not open it, and why.

Authorisation before validation, as for the case commands: the case (404 for another station's, or
for someone kept out of it, and that refusal audited) and the role (403) are checked in route
dependencies before the body is read. Reasons travel in bodies, never in URLs (access logs)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from fengqiao.http import AuthoriseFirstRoute, StaffPrincipal, api_error, iso
from fengqiao.runtime import RuntimeDep
from mediation import access, db
from mediation.api import LEADERSHIP_AND_BUREAU
from mediation.deps import CurrentActor, TrackingNo, VisibleCase
from mediation.lifecycle import Rejected
from mediation.unit import audit, staff_unit

router = APIRouter(prefix="/api/v1", tags=["cases"], route_class=AuthoriseFirstRoute)

StaffId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_-]+$")]


class ExclusionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    staff_id: str = Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_-]+$")
    reason: str = Field(min_length=1, max_length=500)


class LiftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500, description="why they may open the case again (audited)")


def _reads_exclusions(case: VisibleCase, principal: StaffPrincipal) -> None:
    if principal.role not in LEADERSHIP_AND_BUREAU:
        raise api_error(403, "forbidden", "只有所领导和分局可以查看回避人员。")


def _sets_exclusions(case: VisibleCase, actor: CurrentActor) -> None:
    if actor.role != "leader":
        raise Rejected("forbidden", "只有所长可以设置事项的回避人员。")


ReadsExclusions = Annotated[None, Depends(_reads_exclusions)]
SetsExclusions = Annotated[None, Depends(_sets_exclusions)]


@router.get("/cases/{tracking_no}/exclusions")
async def list_exclusions(
    tracking_no: TrackingNo, rt: RuntimeDep, principal: StaffPrincipal, _: ReadsExclusions
) -> dict:
    """Who may not open the case: staff named in it (`origin` triage) and the leader's exclusions
    with their reasons. The station's leadership and bureau supervisors."""
    async with staff_unit(rt.pool, principal) as (conn, _outbox):
        case = await db.cases.get_case(conn, tracking_no)
        if case is None:
            raise api_error(404, "not_found", "未找到该事项。")
        rows = await db.access.exclusions(conn, tracking_no)
        await audit(conn, principal, "view_exclusions", tracking_no, case["station"])
    return {"tracking_no": tracking_no, "exclusions": [{k: iso(v) for k, v in dict(r).items()} for r in rows]}


@router.post("/cases/{tracking_no}/exclusions", status_code=201)
async def add_exclusion(
    tracking_no: TrackingNo,
    body: ExclusionIn,
    rt: RuntimeDep,
    principal: StaffPrincipal,
    actor: CurrentActor,
    _: SetsExclusions,
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


@router.post("/cases/{tracking_no}/exclusions/{staff_id}/lift")
async def lift_exclusion(
    tracking_no: TrackingNo,
    staff_id: StaffId,
    body: LiftIn,
    rt: RuntimeDep,
    principal: StaffPrincipal,
    actor: CurrentActor,
    _: SetsExclusions,
) -> dict:
    """The leader lets a member of staff open the case again (also one triage found named: a
    namesake, say), with a reason in the body (audited)."""
    if not body.reason.strip():
        raise api_error(422, "missing_reason", "请说明恢复查阅的理由。", field="reason")
    async with staff_unit(rt.pool, principal) as (conn, outbox):
        case = await db.cases.case_for_update(conn, tracking_no)
        if case is None:
            raise api_error(404, "not_found", "未找到该事项。")
        await access.restore(conn, outbox, case=case, actor=actor, staff_id=staff_id, now=datetime.now(UTC))
        detail = f"{staff_id}: {body.reason.strip()}"
        await audit(conn, principal, "restore_access", tracking_no, case["station"], detail)
    return {"tracking_no": tracking_no, "staff_id": staff_id, "excluded": False}

"""The mediation record's staff API (大调解), and the printable agreement (人民调解协议书)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field

from fengqiao.http import StaffPrincipal, api_error, iso
from fengqiao.runtime import RuntimeDep
from mediation import db, records
from mediation.api import RowId, TrackingNo, _actor, audit, staff_unit
from mediation.cases import perform
from mediation.lifecycle import Rejected
from mediation.metrics import MediationMetrics

router = APIRouter(prefix="/api/v1/cases/{tracking_no}/mediation", tags=["mediation"])
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
ROLE_LABELS = {"applicant": "申请人", "respondent": "被申请人", "other": "其他当事人"}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpenIn(_In):
    mediator_id: str = Field(min_length=1, max_length=64)


class PartyIn(_In):
    role: Literal["applicant", "respondent", "other"]
    name: str = Field(min_length=1, max_length=100)
    phone: str = Field(default="", max_length=40)
    id_no: str = Field(default="", max_length=40)
    address: str = Field(default="", max_length=300)


class SessionIn(_In):
    scheduled_at: datetime
    place: str = Field(min_length=1, max_length=200)
    attendees: list[str] = Field(default_factory=list, max_length=50)


class MinutesIn(_In):
    minutes: str = Field(min_length=1, max_length=20000)
    held_at: datetime


class Performance(_In):
    how: str = Field(min_length=1, max_length=1000)
    where: str = Field(min_length=1, max_length=300)
    when: str = Field(min_length=1, max_length=300)


class Signature(_In):
    party_id: int = Field(ge=1, le=2**63 - 1)
    signed_at: datetime


class AgreementIn(_In):
    facts: str = Field(min_length=1, max_length=5000, description="纠纷的主要事实")
    dispute: str = Field(min_length=1, max_length=5000, description="争议事项")
    terms: list[str] = Field(min_length=1, max_length=50, description="达成的协议内容")
    performance: Performance = Field(description="履行方式、地点、期限")
    signatures: list[Signature] = Field(min_length=2)
    signed_at: datetime
    performance_checks: list[datetime] = Field(default_factory=list, max_length=20)


class OutcomeIn(_In):
    outcome: Literal["no_agreement", "withdrawn"]
    referral: Literal["court", "peoples_mediation_committee"] | None = None


class FollowupIn(_In):
    result: str = Field(min_length=1, max_length=1000)


def _outcomes(request: Request):
    return MediationMetrics.of(request.app.state.metrics).outcomes


def _deps(request: Request):
    return request.app.state.pii, request.app.state.pii_index


async def _case(conn, principal, tracking_no: str):
    row = await db.get_case(conn, tracking_no)
    if row is None or not principal.can_see_station(row["station"]):
        raise Rejected("not_found", "未找到该事项。")
    if principal.staff_id != row["assignee_id"] and principal.role not in ("leader", "instructor", "mediator"):
        raise Rejected("not_your_case", "只有承办人、调解员或所领导可以办理调解。")
    return row


def _json(value):
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v) for v in value]
    return iso(value)


@router.post("", status_code=201)
async def open_mediation(tracking_no: TrackingNo, body: OpenIn, rt: RuntimeDep, principal: StaffPrincipal) -> dict:
    """Open the mediation record (the case moves to `mediating` if it is not already)."""
    actor = _actor(principal)
    now = datetime.now(timezone.utc)
    async with staff_unit(rt.pool, principal) as (conn, outbox):
        case = await _case(conn, principal, tracking_no)
        if case["status"] in ("accepted", "in_progress"):
            await perform(conn, outbox, tracking_no=tracking_no, actor=actor, command="start_mediation",
                          args={"text": "建立调解记录"}, now=now)
        elif case["status"] != "mediating":
            raise Rejected("illegal_transition", "签收后才能建立调解记录。")
        await records.open_record(conn, case, body.mediator_id, now)
        await audit(conn, principal, "open_mediation", tracking_no, case["station"])
    return {"tracking_no": tracking_no, "mediator_id": body.mediator_id}


@router.post("/parties", status_code=201)
async def add_party(tracking_no: TrackingNo, body: PartyIn, request: Request, rt: RuntimeDep,
                    principal: StaffPrincipal) -> dict:
    cipher, index = _deps(request)
    async with staff_unit(rt.pool, principal) as (conn, _):
        case = await _case(conn, principal, tracking_no)
        party_id, earlier = await records.add_party(conn, cipher, index, tracking_no, role=body.role,
                                                    name=body.name, phone=body.phone, id_no=body.id_no,
                                                    address=body.address)
        await audit(conn, principal, "add_party", tracking_no, case["station"], f"party {party_id}")
    return {"party_id": party_id, "earlier_cases": earlier}


@router.post("/sessions", status_code=201)
async def schedule_session(tracking_no: TrackingNo, body: SessionIn, rt: RuntimeDep, principal: StaffPrincipal) -> dict:
    actor = _actor(principal)
    async with staff_unit(rt.pool, principal) as (conn, outbox):
        case = await _case(conn, principal, tracking_no)
        session_id = await records.schedule_session(
            conn, outbox, case, scheduled_at=body.scheduled_at, place=body.place, attendees=body.attendees,
            actor_id=actor.staff_id, now=datetime.now(timezone.utc))
        await audit(conn, principal, "schedule_session", tracking_no, case["station"], f"session {session_id}")
    return {"session_id": session_id}


@router.post("/sessions/{session_id}/minutes")
async def record_minutes(tracking_no: TrackingNo, session_id: RowId, body: MinutesIn, request: Request, rt: RuntimeDep,
                         principal: StaffPrincipal) -> dict:
    cipher, _ = _deps(request)
    async with staff_unit(rt.pool, principal) as (conn, _):
        case = await _case(conn, principal, tracking_no)
        await records.record_minutes(conn, cipher, tracking_no, session_id, minutes=body.minutes,
                                     held_at=body.held_at)
        await audit(conn, principal, "record_minutes", tracking_no, case["station"], f"session {session_id}")
    return {"session_id": session_id, "held_at": body.held_at.isoformat()}


@router.put("/agreement")
async def record_agreement(tracking_no: TrackingNo, body: AgreementIn, request: Request, rt: RuntimeDep,
                           principal: StaffPrincipal) -> dict:
    cipher, _ = _deps(request)
    actor = _actor(principal)
    agreement = body.model_dump(mode="json", exclude={"signed_at", "performance_checks"})
    async with staff_unit(rt.pool, principal) as (conn, _):
        case = await _case(conn, principal, tracking_no)
        await records.record_agreement(conn, cipher, tracking_no, agreement, signed_at=body.signed_at,
                                       recorded_by=actor.staff_id, performance_checks=body.performance_checks)
        await audit(conn, principal, "record_agreement", tracking_no, case["station"])
    _outcomes(request).labels(station=case["station"], outcome="agreement").inc()
    return {"tracking_no": tracking_no, "outcome": "agreement",
            "print_url": f"/api/v1/cases/{tracking_no}/mediation/agreement.html"}


@router.post("/outcome")
async def set_outcome(tracking_no: TrackingNo, body: OutcomeIn, request: Request, rt: RuntimeDep,
                      principal: StaffPrincipal) -> dict:
    async with staff_unit(rt.pool, principal) as (conn, _):
        case = await _case(conn, principal, tracking_no)
        await records.set_outcome(conn, tracking_no, body.outcome, body.referral, datetime.now(timezone.utc))
        await audit(conn, principal, "mediation_outcome", tracking_no, case["station"], body.outcome)
    _outcomes(request).labels(station=case["station"], outcome=body.outcome).inc()
    return {"tracking_no": tracking_no, "outcome": body.outcome, "referral": body.referral}


@router.post("/followups/{followup_id}")
async def complete_followup(tracking_no: TrackingNo, followup_id: RowId, body: FollowupIn, rt: RuntimeDep,
                            principal: StaffPrincipal) -> dict:
    async with staff_unit(rt.pool, principal) as (conn, _):
        case = await _case(conn, principal, tracking_no)
        await records.complete_followup(conn, tracking_no, followup_id, body.result, datetime.now(timezone.utc))
        await audit(conn, principal, "followup_done", tracking_no, case["station"], f"followup {followup_id}")
    return {"followup_id": followup_id, "done": True}


@router.get("")
async def get_mediation(tracking_no: TrackingNo, request: Request, rt: RuntimeDep, principal: StaffPrincipal) -> dict:
    """The whole record, personal data opened for this staff member (the view is audited)."""
    cipher, _ = _deps(request)
    async with staff_unit(rt.pool, principal) as (conn, _):
        case = await _case(conn, principal, tracking_no)
        data = await records.view(conn, cipher, tracking_no)
        await audit(conn, principal, "view_mediation", tracking_no, case["station"], "personal data")
    return _json(data)


@router.get("/agreement.html", response_class=HTMLResponse)
async def print_agreement(tracking_no: TrackingNo, request: Request, rt: RuntimeDep, principal: StaffPrincipal):
    """The agreement as a clean page to print and sign (A4, 人民调解协议书)."""
    cipher, _ = _deps(request)
    async with staff_unit(rt.pool, principal) as (conn, _):
        case = await _case(conn, principal, tracking_no)
        data = await records.view(conn, cipher, tracking_no)
        station = await conn.fetchval("SELECT name FROM stations WHERE code = $1", case["station"])
        mediator = await conn.fetchval("SELECT name FROM staff WHERE staff_id = $1", data["mediator_id"])
        await audit(conn, principal, "print_agreement", tracking_no, case["station"], "personal data")
    if data["agreement"] is None:
        raise api_error(404, "no_agreement", "该调解尚未达成协议。")
    parties = {p["party_id"]: p for p in data["parties"]}
    return templates.TemplateResponse(request, "agreement.html", {
        "no": tracking_no, "station": station, "mediator": mediator, "a": data["agreement"],
        "parties": data["parties"], "signers": [(parties[s["party_id"]], s["signed_at"][:10])
                                                for s in data["agreement"]["signatures"]],
        "role_labels": ROLE_LABELS, "signed_on": data["agreement"]["signed_at"].date().isoformat(),
    })

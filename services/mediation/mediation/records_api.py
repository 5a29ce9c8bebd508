"""The mediation record's staff API (大调解), and the printable agreement (人民调解协议书)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from fengqiao.http import AuthoriseFirstRoute, StaffPrincipal, api_error, iso
from fengqiao.pii import mask_phone, mask_text
from fengqiao.runtime import RuntimeDep
from mediation import records
from mediation.deps import BlindIndexDep, CipherDep, CurrentActor, OutcomesDep, RowId, TrackingNo, VisibleCase
from mediation.lifecycle import Rejected
from mediation.unit import audit, staff_unit


def _may_mediate(case: VisibleCase, actor: CurrentActor) -> None:
    records.may_mediate(case, actor)


def _may_change_mediator(case: VisibleCase, actor: CurrentActor) -> None:
    records.may_change_mediator(case, actor)


# Every route: the case's station (404) and the person (403) are checked before the body is read.
router = APIRouter(
    prefix="/api/v1/cases/{tracking_no}/mediation",
    tags=["mediation"],
    dependencies=[Depends(_may_mediate)],
    route_class=AuthoriseFirstRoute,
)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
ROLE_LABELS = {"applicant": "申请人", "respondent": "被申请人", "other": "其他当事人"}


# What was held or signed has happened: a date after now (beyond a few minutes of clock skew between
# the officer's device and the server) is a typing error, refused naming the field.
CLOCK_SKEW = timedelta(minutes=5)


def _not_future(value: datetime) -> datetime:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if aware > datetime.now(UTC) + CLOCK_SKEW:
        raise ValueError("must not be in the future")
    return value


Happened = Annotated[datetime, AfterValidator(_not_future)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpenIn(_In):
    mediator_id: str = Field(min_length=1, max_length=64)


class MediatorIn(_In):
    mediator_id: str = Field(min_length=1, max_length=64, description="新调解员（本所在岗人员）")
    reason: str = Field(min_length=1, max_length=500, description="更换原因")


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
    held_at: Happened = Field(description="when the session was held (not in the future)")


class Performance(_In):
    how: str = Field(min_length=1, max_length=1000)
    where: str = Field(min_length=1, max_length=300)
    when: str = Field(min_length=1, max_length=300)


class Signature(_In):
    party_id: int = Field(ge=1, le=2**63 - 1)
    signed_at: Happened = Field(description="when the party signed (not in the future)")


class AgreementIn(_In):
    facts: str = Field(min_length=1, max_length=5000, description="纠纷的主要事实")
    dispute: str = Field(min_length=1, max_length=5000, description="争议事项")
    terms: list[str] = Field(min_length=1, max_length=50, description="达成的协议内容")
    performance: Performance = Field(description="履行方式、地点、期限")
    signatures: list[Signature] = Field(min_length=2)
    signed_at: Happened = Field(description="when the agreement was signed (not in the future)")
    performance_checks: list[datetime] = Field(default_factory=list, max_length=20)


class OutcomeIn(_In):
    outcome: Literal["no_agreement", "withdrawn"]
    referral: Literal["court", "peoples_mediation_committee"] | None = None


class FollowupIn(_In):
    result: str = Field(min_length=1, max_length=1000)


def _json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v) for v in value]
    return iso(value)


def _now() -> datetime:
    return datetime.now(UTC)


CONFLICTS = frozenset({"already_open", "same_mediator"})  # refusals that are conflicts with the record: 409


@router.post("", status_code=201)
async def open_mediation(
    tracking_no: TrackingNo, body: OpenIn, rt: RuntimeDep, principal: StaffPrincipal, actor: CurrentActor
) -> dict:
    """Open the mediation record (the case moves to `mediating` if it is not already). A case has
    one record: opening it again is a 409 `already_open` naming the mediator (see `PUT /mediator`)."""
    try:
        async with staff_unit(rt.pool, principal) as (conn, outbox):
            station = await records.open_record(conn, outbox, actor, tracking_no, body.mediator_id, _now())
            await audit(conn, principal, "open_mediation", tracking_no, station)
    except Rejected as exc:
        if exc.code in CONFLICTS:
            raise api_error(409, exc.code, exc.message) from exc
        raise
    return {"tracking_no": tracking_no, "mediator_id": body.mediator_id}


@router.put("/mediator", dependencies=[Depends(_may_change_mediator)])
async def change_mediator(
    tracking_no: TrackingNo, body: MediatorIn, rt: RuntimeDep, principal: StaffPrincipal, actor: CurrentActor
) -> dict:
    """The station's leadership names another mediator of the station (in the case's history)."""
    try:
        async with staff_unit(rt.pool, principal) as (conn, _):
            station, previous = await records.change_mediator(
                conn, actor, tracking_no, body.mediator_id, body.reason, _now()
            )
            await audit(conn, principal, "change_mediator", tracking_no, station, f"{previous} -> {body.mediator_id}")
    except Rejected as exc:
        if exc.code in CONFLICTS:
            raise api_error(409, exc.code, exc.message) from exc
        raise
    return {"tracking_no": tracking_no, "mediator_id": body.mediator_id, "previous_mediator_id": previous}


@router.post("/parties", status_code=201)
async def add_party(
    tracking_no: TrackingNo,
    body: PartyIn,
    cipher: CipherDep,
    index: BlindIndexDep,
    rt: RuntimeDep,
    principal: StaffPrincipal,
    actor: CurrentActor,
) -> dict:
    async with staff_unit(rt.pool, principal) as (conn, _):
        station, party_id, earlier = await records.add_party(
            conn,
            cipher,
            index,
            actor,
            tracking_no,
            role=body.role,
            name=body.name,
            phone=body.phone,
            id_no=body.id_no,
            address=body.address,
        )
        await audit(conn, principal, "add_party", tracking_no, station, f"party {party_id}")
    return {"party_id": party_id, "earlier_cases": earlier}


@router.post("/sessions", status_code=201)
async def schedule_session(
    tracking_no: TrackingNo, body: SessionIn, rt: RuntimeDep, principal: StaffPrincipal, actor: CurrentActor
) -> dict:
    async with staff_unit(rt.pool, principal) as (conn, outbox):
        station, session_id = await records.schedule_session(
            conn,
            outbox,
            actor,
            tracking_no,
            scheduled_at=body.scheduled_at,
            place=body.place,
            attendees=body.attendees,
            now=_now(),
        )
        await audit(conn, principal, "schedule_session", tracking_no, station, f"session {session_id}")
    return {"session_id": session_id}


@router.post("/sessions/{session_id}/minutes")
async def record_minutes(
    tracking_no: TrackingNo,
    session_id: RowId,
    body: MinutesIn,
    cipher: CipherDep,
    rt: RuntimeDep,
    principal: StaffPrincipal,
    actor: CurrentActor,
) -> dict:
    async with staff_unit(rt.pool, principal) as (conn, _):
        station = await records.record_minutes(
            conn, cipher, actor, tracking_no, session_id, minutes=body.minutes, held_at=body.held_at
        )
        await audit(conn, principal, "record_minutes", tracking_no, station, f"session {session_id}")
    return {"session_id": session_id, "held_at": body.held_at.isoformat()}


@router.put("/agreement")
async def record_agreement(
    tracking_no: TrackingNo,
    body: AgreementIn,
    cipher: CipherDep,
    outcomes: OutcomesDep,
    rt: RuntimeDep,
    principal: StaffPrincipal,
    actor: CurrentActor,
) -> dict:
    agreement = body.model_dump(mode="json", exclude={"signed_at", "performance_checks"})
    async with staff_unit(rt.pool, principal) as (conn, _):
        station, new_outcome = await records.record_agreement(
            conn,
            cipher,
            actor,
            tracking_no,
            agreement,
            signed_at=body.signed_at,
            performance_checks=body.performance_checks,
        )
        await audit(conn, principal, "record_agreement", tracking_no, station)
    if new_outcome:  # a corrected agreement is the same outcome, counted once
        outcomes.labels(station=station, outcome="agreement").inc()
    return {
        "tracking_no": tracking_no,
        "outcome": "agreement",
        "print_url": f"/api/v1/cases/{tracking_no}/mediation/agreement.html",
    }


@router.post("/outcome")
async def set_outcome(
    tracking_no: TrackingNo,
    body: OutcomeIn,
    outcomes: OutcomesDep,
    rt: RuntimeDep,
    principal: StaffPrincipal,
    actor: CurrentActor,
) -> dict:
    async with staff_unit(rt.pool, principal) as (conn, _):
        station = await records.set_outcome(conn, actor, tracking_no, body.outcome, body.referral, _now())
        await audit(conn, principal, "mediation_outcome", tracking_no, station, body.outcome)
    outcomes.labels(station=station, outcome=body.outcome).inc()
    return {"tracking_no": tracking_no, "outcome": body.outcome, "referral": body.referral}


@router.post("/followups/{followup_id}")
async def complete_followup(
    tracking_no: TrackingNo,
    followup_id: RowId,
    body: FollowupIn,
    rt: RuntimeDep,
    principal: StaffPrincipal,
    actor: CurrentActor,
) -> dict:
    async with staff_unit(rt.pool, principal) as (conn, _):
        station = await records.complete_followup(conn, actor, tracking_no, followup_id, body.result, _now())
        await audit(conn, principal, "followup_done", tracking_no, station, f"followup {followup_id}")
    return {"followup_id": followup_id, "done": True}


@router.get("")
async def get_mediation(
    tracking_no: TrackingNo, cipher: CipherDep, rt: RuntimeDep, principal: StaffPrincipal, actor: CurrentActor
) -> dict:
    """The whole record, personal data opened for this staff member (the view is audited)."""
    async with staff_unit(rt.pool, principal) as (conn, _):
        station, data = await records.view(conn, cipher, actor, tracking_no)
        await audit(conn, principal, "view_mediation", tracking_no, station, "personal data")
    return _json(data)


@router.get("/agreement.html", response_class=HTMLResponse)
async def print_agreement(
    tracking_no: TrackingNo,
    request: Request,
    cipher: CipherDep,
    rt: RuntimeDep,
    principal: StaffPrincipal,
    actor: CurrentActor,
) -> HTMLResponse:
    """The agreement as a clean page to print and sign (A4, 人民调解协议书)."""
    async with staff_unit(rt.pool, principal) as (conn, _):
        station, data = await records.printable_agreement(conn, cipher, actor, tracking_no)
        await audit(conn, principal, "print_agreement", tracking_no, station, "personal data")
    if data["agreement"] is None:
        raise api_error(404, "no_agreement", "该调解尚未达成协议。")
    return templates.TemplateResponse(request, "agreement.html", agreement_page(tracking_no, data))


def _masked(value: Any) -> Any:
    """Phone and ID numbers masked in an agreement's text, its list of terms or its performance."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, list):
        return [_masked(v) for v in value]
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    return value


def agreement_page(tracking_no: str, data: dict[str, Any], *, masked: bool = False) -> dict[str, Any]:
    """What agreement.html shows, from `records.printable_agreement` (which has an agreement).
    `masked`: phone and ID numbers masked, the parties' own and any in the agreement's text (the
    console prints so unless asked; names and addresses stay: the parties sign this page)."""
    agreement = data["agreement"]
    if masked:
        agreement = {
            **agreement,
            **{k: _masked(agreement.get(k)) for k in ("facts", "dispute", "terms", "performance")},
        }
    parties = [
        {**p, "phone": mask_phone(p["phone"]), "id_no": mask_text(p["id_no"])} if masked else p for p in data["parties"]
    ]
    by_id = {p["party_id"]: p for p in parties}
    return {
        "no": tracking_no,
        "station": data["station_name"],
        "mediator": data["mediator_name"],
        "a": agreement,
        "parties": parties,
        "signers": [(by_id[s["party_id"]], s["signed_at"][:10]) for s in agreement["signatures"]],
        "role_labels": ROLE_LABELS,
        "signed_on": agreement["signed_at"].date().isoformat(),
    }

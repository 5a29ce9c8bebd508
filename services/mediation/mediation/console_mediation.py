"""The console's mediation page (大调解, issue 16): `/console/cases/{no}/mediation` shows the record
(mediator, parties, sessions, agreement, follow-ups, the court-confirmation reminder, outcome) with
personal data masked unless the person asks (an audited reveal), and takes each change as a plain
form post that calls the same `records` functions, with the same pydantic models, as the JSON API.
A refused form comes back with the Chinese message naming the field and what was typed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, date, datetime, time
from typing import Any, TypeVar

from asyncpg import Connection
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from fengqiao.auth import Principal
from fengqiao.constants import STATION_TZ
from fengqiao.outbox import Outbox
from fengqiao.pii import PiiCipher, mask_name, mask_phone, mask_text
from fengqiao.runtime import RuntimeDep
from mediation import db, records
from mediation.api import _STATUS_FOR_CODE
from mediation.cases import case_of
from mediation.console_common import (
    FieldRefused,
    SessionDep,
    actor_of_session,
    local_time,
    principal_of,
    read_form,
    render,
    row_id,
)
from mediation.deps import BlindIndexDep, CipherDep, OutcomesDep, RowId, TrackingNo
from mediation.lifecycle import Actor, Rejected
from mediation.records_api import (
    ROLE_LABELS,
    AgreementIn,
    FollowupIn,
    MediatorIn,
    MinutesIn,
    OpenIn,
    OutcomeIn,
    PartyIn,
    SessionIn,
    agreement_page,
)
from mediation.signin import Session
from mediation.unit import audit, audit_refusal, staff_unit

router = APIRouter(include_in_schema=False)
M = TypeVar("M", bound=BaseModel)
# A form's change, run in the staff's transaction.
Change = Callable[[FormData, Connection, Outbox, Principal, Actor], Awaitable[None]]

OUTCOME_LABELS = {"agreement": "达成协议", "no_agreement": "未达成协议", "withdrawn": "当事人撤回"}
REFERRAL_LABELS = {"court": "引导向人民法院起诉", "peoples_mediation_committee": "引导至人民调解委员会"}
FOLLOWUP_LABELS = {"performance_check": "履行情况回访", "confirmation_window": "司法确认申请期限"}
# The forms' fields in words, for a refusal that names the field.
FIELD_LABELS = {
    "mediator_id": "调解员",
    "reason": "更换原因",
    "role": "当事人身份",
    "name": "姓名",
    "phone": "联系电话",
    "id_no": "身份证号码",
    "address": "住址",
    "scheduled_at": "调解时间",
    "place": "调解地点",
    "attendees": "参加人员",
    "minutes": "调解笔录",
    "held_at": "实际调解时间",
    "facts": "纠纷的主要事实",
    "dispute": "争议事项",
    "terms": "协议内容",
    "how": "履行方式",
    "where": "履行地点",
    "when": "履行期限",
    "signatures": "签名的当事人",
    "signed_at": "签订时间",
    "performance_checks": "履行回访日期",
    "outcome": "调解结果",
    "referral": "引导去向",
    "result": "履行情况",
}


def _now() -> datetime:
    return datetime.now(UTC)


def _when(field: str, raw: str) -> datetime:
    """A `datetime-local` field, read as the station's time."""
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise FieldRefused(field, f"请填写{FIELD_LABELS[field]}（日期和时间）。") from None
    return value if value.tzinfo else value.replace(tzinfo=STATION_TZ)


def _day(field: str, raw: str) -> datetime:
    """A `date` field, as noon of that day at the station (a check is due that day)."""
    try:
        return datetime.combine(date.fromisoformat(raw.strip()), time(12), tzinfo=STATION_TZ)
    except ValueError:
        raise FieldRefused(field, f"{FIELD_LABELS[field]}格式不正确。") from None


def _model(model: type[M], data: dict[str, Any]) -> M:
    """The API's own model for the form; its first refusal in words naming the field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        names = [str(p) for p in first["loc"] if isinstance(p, str)]
        field = names[-1] if names else ""
        label = FIELD_LABELS.get(field, field)
        kind = first["type"]
        if kind == "value_error" and "future" in str(first.get("msg", "")):
            message = f"{label}不能晚于现在。"
        elif kind in ("missing", "string_too_short", "too_short"):
            message = f"请填写{label}。"
        elif kind in ("string_too_long", "too_long"):
            message = f"{label}过长。"
        elif kind in ("literal_error", "enum"):
            message = f"请选择{label}。"
        else:
            message = f"{label}格式不正确。"
        raise FieldRefused(field, message) from None


def _typed(form: Mapping[str, Any]) -> dict[str, Any]:
    """What was typed, to put back in the form (never the CSRF token); lists for repeated fields."""
    out: dict[str, Any] = {}
    for key in set(form.keys()) - {"csrf_token"}:
        values = form.getlist(key) if hasattr(form, "getlist") else [form[key]]
        out[key] = (
            [str(v) for v in values] if len(values) > 1 or key in ("signer", "performance_check") else str(values[0])
        )
    return out


def _lines(raw: str) -> list[str]:
    return [line.strip() for line in raw.splitlines() if line.strip()]


# -- the page -------------------------------------------------------------------------------------


def _party_view(p: dict[str, Any], reveal: bool) -> dict[str, Any]:
    show = (lambda v: v) if reveal else None
    return {
        "party_id": p["party_id"],
        "role": p["role"],
        "role_label": ROLE_LABELS.get(p["role"], p["role"]),
        "name": p["name"] if show else mask_name(p["name"]),
        "phone": p["phone"] if show else mask_phone(p["phone"]) if p["phone"] else "",
        "id_no": p["id_no"] if show else mask_text(p["id_no"]),
        "address": p["address"] if show else ("（已录入，已隐藏）" if p["address"] else ""),
        "earlier_cases": p["earlier_cases"],
    }


def _followup_view(f: dict[str, Any], now: datetime) -> dict[str, Any]:
    if f.get("cancelled_at"):
        state, css = "已取消", ""
    elif f["done_at"]:
        state, css = "已办理", "fine"
    elif f["due_at"] < now:
        state, css = "已过期", "late"
    else:
        state, css = "待办理", "soon"
    return {
        "followup_id": f["followup_id"],
        "kind": f["kind"],
        "kind_label": FOLLOWUP_LABELS.get(f["kind"], f["kind"]),
        "due": local_time(f["due_at"], with_time=False),
        "done": local_time(f["done_at"]),
        "result": f["result"] or "",
        "state": state,
        "css": css,
        "pending": not f["done_at"],
    }


def _record_view(data: dict[str, Any], reveal: bool, names: dict[str, str]) -> dict[str, Any]:
    """The record as the page shows it: times in the station's zone, personal data masked unless revealed."""
    party_names = tuple(p["name"] for p in data["parties"])

    def text(value: str) -> str:  # free text: phones, ID numbers and the parties' names masked
        return value if reveal else mask_text(value, party_names)

    now = _now()
    a = data["agreement"]
    agreement = None
    if a is not None:
        agreement = {
            "facts": text(a["facts"]),
            "dispute": text(a["dispute"]),
            "terms": [text(t) for t in a["terms"]],
            "performance": {k: text(v) for k, v in a["performance"].items()},
            "signed_at": local_time(a["signed_at"]),
            "signed_at_input": a["signed_at"].astimezone(STATION_TZ).strftime("%Y-%m-%dT%H:%M"),
            "signers": [s["party_id"] for s in a["signatures"]],
        }
    followups = [_followup_view(f, now) for f in data["followups"]]
    return {
        "mediator_id": data["mediator_id"],
        "mediator_name": names.get(data["mediator_id"], data["mediator_id"]),
        "opened_at": local_time(data["opened_at"]),
        "outcome": data["outcome"],
        "outcome_label": OUTCOME_LABELS.get(data["outcome"] or "", "尚无结果"),
        "referral_label": REFERRAL_LABELS.get(data["referral"] or "", ""),
        "outcome_at": local_time(data["outcome_at"]),
        "parties": [_party_view(p, reveal) for p in data["parties"]],
        "sessions": [
            {
                "session_id": s["session_id"],
                "scheduled_at": local_time(s["scheduled_at"]),
                "place": text(s["place"]) if s["place"] else s["place"],
                "attendees": text("、".join(s["attendees"])),
                "held_at": local_time(s["held_at"]),
                "minutes": text(s["minutes"]) if s["minutes"] else None,
            }
            for s in data["sessions"]
        ],
        "agreement": agreement,
        "confirmation": next((f for f in followups if f["kind"] == "confirmation_window"), None),
        "checks": [f for f in followups if f["kind"] == "performance_check"],
    }


def _refused_page(request: Request, session: Session, tracking_no: str, status: int, message: str) -> HTMLResponse:
    return render(
        request,
        "console/mediation_refused.html",
        status,
        me=session,
        no=tracking_no,
        code=status,
        message=message,
        active="queue",
    )


async def _page(
    request: Request,
    rt: RuntimeDep,
    session: Session,
    cipher: PiiCipher,
    tracking_no: str,
    *,
    reveal: bool = False,
    reveal_reason: str = "",
    status: int = 200,
    form: str = "",
    field: str = "",
    error: str = "",
    typed: dict[str, Any] | None = None,
) -> Response:
    principal, actor = principal_of(session), actor_of_session(session)
    try:
        async with staff_unit(rt.pool, principal) as (conn, _):
            case = await db.cases.get_case(conn, tracking_no)
            if case is None:
                raise Rejected("not_found", "未找到该事项。")
            records.may_mediate(case_of(case), actor)
            staff = await db.records.active_staff(conn, case["station"])
            if await db.records.get_mediation(conn, tracking_no) is None:
                return render(
                    request,
                    "console/mediation_none.html",
                    status,
                    me=session,
                    no=tracking_no,
                    case=case,
                    # as records.open_record: any case the holder took, a dispute or one they flag
                    may_open=case["status"] in ("accepted", "in_progress", "mediating"),
                    staff=staff,
                    field=field,
                    error=error,
                    typed=typed or {},
                    active="queue",
                )
            station, data = await records.view(conn, cipher, actor, tracking_no)
            detail = f"personal data: {reveal_reason}" if reveal and reveal_reason else "personal data"
            await audit(conn, principal, "view_mediation", tracking_no, station, detail if reveal else "masked")
    except Rejected as exc:
        if exc.code == "not_found":
            await audit_refusal(rt.pool, principal, tracking_no)
        return _refused_page(request, session, tracking_no, _STATUS_FOR_CODE.get(exc.code, 422), exc.message)
    names = {s["staff_id"]: s["name"] for s in staff}
    return render(
        request,
        "console/mediation.html",
        status,
        me=session,
        no=tracking_no,
        case=case,
        m=_record_view(data, reveal, names),
        staff=staff,
        reveal=reveal,
        may_change_mediator=actor.leads,
        form=form,
        field=field,
        error=error,
        typed=typed or {},
        role_labels=ROLE_LABELS,
        outcome_labels=OUTCOME_LABELS,
        referral_labels=REFERRAL_LABELS,
        active="queue",
    )


@router.get("/console/cases/{tracking_no}/mediation", response_class=HTMLResponse)
async def mediation_page(
    tracking_no: TrackingNo, request: Request, rt: RuntimeDep, session: SessionDep, cipher: CipherDep
) -> Response:
    """The record, personal data masked (a reveal is a POST with a reason: never a link another
    site could make someone follow)."""
    return await _page(request, rt, session, cipher, tracking_no)


def _reveal_reason(form: Any) -> str:
    return str(form.get("reason", "")).strip()[:200]


@router.post("/console/cases/{tracking_no}/mediation/reveal", response_class=HTMLResponse)
async def reveal_record(
    tracking_no: TrackingNo, request: Request, rt: RuntimeDep, session: SessionDep, cipher: CipherDep
) -> Response:
    """The record with the parties' personal data in full, once, with the reason in the audit log."""
    reason = _reveal_reason(await read_form(request, session, max_fields=3))
    if not reason:
        return await _page(
            request,
            rt,
            session,
            cipher,
            tracking_no,
            status=422,
            form="reveal",
            field="reason",
            error="请填写查看理由。",
        )
    return await _page(request, rt, session, cipher, tracking_no, reveal=True, reveal_reason=reason)


# -- the forms ------------------------------------------------------------------------------------


async def _carry_out(
    request: Request,
    rt: RuntimeDep,
    session: Session,
    cipher: PiiCipher,
    tracking_no: str,
    form_name: str,
    change: Change,
    anchor: str,
) -> Response:
    """Read the form, run `change(form, conn, outbox, principal, actor)` in the staff's transaction,
    and go back to the page; a refusal re-renders it with the message and what was typed."""
    form = await read_form(request, session)
    principal, actor = principal_of(session), actor_of_session(session)
    try:
        async with staff_unit(rt.pool, principal) as (conn, outbox):
            await change(form, conn, outbox, principal, actor)
    except FieldRefused as exc:
        return await _page(
            request, rt, session, cipher, tracking_no, status=422, form=form_name, field=exc.field,
            error=exc.message, typed=_typed(form),
        )  # fmt: skip
    except Rejected as exc:
        status = _STATUS_FOR_CODE.get(exc.code, 409 if exc.code in records_conflicts else 422)
        if exc.code == "not_found" and form_name not in ("minutes", "followup"):
            await audit_refusal(rt.pool, principal, tracking_no)
            return _refused_page(request, session, tracking_no, 404, exc.message)
        return await _page(
            request, rt, session, cipher, tracking_no, status=status, form=form_name,
            field=REJECTION_FIELDS.get(exc.code, ""), error=exc.message, typed=_typed(form),
        )  # fmt: skip
    return RedirectResponse(f"/console/cases/{tracking_no}/mediation#{anchor}", status_code=303)


records_conflicts = frozenset({"already_open", "same_mediator"})
# Which field a refusal of the records module is about.
REJECTION_FIELDS = {
    "invalid_mediator": "mediator_id",
    "same_mediator": "mediator_id",
    "unsigned": "signatures",
    "missing_referral": "referral",
}


@router.post("/console/cases/{tracking_no}/mediation/open")
async def open_mediation(
    tracking_no: TrackingNo, request: Request, rt: RuntimeDep, session: SessionDep, cipher: CipherDep
) -> Response:
    async def change(form: FormData, conn: Connection, outbox: Outbox, principal: Principal, actor: Actor) -> None:
        body = _model(OpenIn, {"mediator_id": str(form.get("mediator_id", ""))})
        station = await records.open_record(conn, outbox, actor, tracking_no, body.mediator_id, _now())
        await audit(conn, principal, "open_mediation", tracking_no, station)

    return await _carry_out(request, rt, session, cipher, tracking_no, "open", change, "mediator")


@router.post("/console/cases/{tracking_no}/mediation/mediator")
async def change_mediator(
    tracking_no: TrackingNo, request: Request, rt: RuntimeDep, session: SessionDep, cipher: CipherDep
) -> Response:
    async def change(form: FormData, conn: Connection, outbox: Outbox, principal: Principal, actor: Actor) -> None:
        body = _model(
            MediatorIn, {"mediator_id": str(form.get("mediator_id", "")), "reason": str(form.get("reason", ""))}
        )
        station, previous = await records.change_mediator(
            conn, actor, tracking_no, body.mediator_id, body.reason, _now()
        )
        await audit(conn, principal, "change_mediator", tracking_no, station, f"{previous} -> {body.mediator_id}")

    return await _carry_out(request, rt, session, cipher, tracking_no, "mediator", change, "mediator")


@router.post("/console/cases/{tracking_no}/mediation/parties")
async def add_party(
    tracking_no: TrackingNo,
    request: Request,
    rt: RuntimeDep,
    session: SessionDep,
    cipher: CipherDep,
    index: BlindIndexDep,
) -> Response:
    async def change(form: FormData, conn: Connection, outbox: Outbox, principal: Principal, actor: Actor) -> None:
        fields = ("role", "name", "phone", "id_no", "address")
        body = _model(PartyIn, {k: str(form.get(k, "")).strip() for k in fields})
        station, party_id, _ = await records.add_party(
            conn, cipher, index, actor, tracking_no,
            role=body.role, name=body.name, phone=body.phone, id_no=body.id_no, address=body.address,
        )  # fmt: skip
        await audit(conn, principal, "add_party", tracking_no, station, f"party {party_id}")

    return await _carry_out(request, rt, session, cipher, tracking_no, "party", change, "parties")


@router.post("/console/cases/{tracking_no}/mediation/sessions")
async def schedule_session(
    tracking_no: TrackingNo, request: Request, rt: RuntimeDep, session: SessionDep, cipher: CipherDep
) -> Response:
    async def change(form: FormData, conn: Connection, outbox: Outbox, principal: Principal, actor: Actor) -> None:
        scheduled_at = _when("scheduled_at", str(form.get("scheduled_at", "")))
        attendees = [a.strip() for a in str(form.get("attendees", "")).replace("，", ",").split(",") if a.strip()]
        body = _model(
            SessionIn,
            {"scheduled_at": scheduled_at, "place": str(form.get("place", "")).strip(), "attendees": attendees},
        )
        station, session_id = await records.schedule_session(
            conn, outbox, actor, tracking_no,
            scheduled_at=body.scheduled_at, place=body.place, attendees=body.attendees, now=_now(),
        )  # fmt: skip
        await audit(conn, principal, "schedule_session", tracking_no, station, f"session {session_id}")

    return await _carry_out(request, rt, session, cipher, tracking_no, "session", change, "sessions")


@router.post("/console/cases/{tracking_no}/mediation/sessions/{session_id}/minutes")
async def record_minutes(
    tracking_no: TrackingNo,
    session_id: RowId,
    request: Request,
    rt: RuntimeDep,
    session: SessionDep,
    cipher: CipherDep,
) -> Response:
    async def change(form: FormData, conn: Connection, outbox: Outbox, principal: Principal, actor: Actor) -> None:
        held_at = _when("held_at", str(form.get("held_at", "")))
        body = _model(MinutesIn, {"minutes": str(form.get("minutes", "")).strip(), "held_at": held_at})
        station = await records.record_minutes(
            conn, cipher, actor, tracking_no, session_id, minutes=body.minutes, held_at=body.held_at
        )
        await audit(conn, principal, "record_minutes", tracking_no, station, f"session {session_id}")

    return await _carry_out(request, rt, session, cipher, tracking_no, f"minutes-{session_id}", change, "sessions")


@router.post("/console/cases/{tracking_no}/mediation/agreement")
async def record_agreement(
    tracking_no: TrackingNo,
    request: Request,
    rt: RuntimeDep,
    session: SessionDep,
    cipher: CipherDep,
    outcomes: OutcomesDep,
) -> Response:
    counted: list[str] = []

    async def change(form: FormData, conn: Connection, outbox: Outbox, principal: Principal, actor: Actor) -> None:
        signed_at = _when("signed_at", str(form.get("signed_at", "")))
        checks = [_day("performance_checks", str(d)) for d in form.getlist("performance_check") if str(d).strip()]
        signers = []
        for raw in form.getlist("signer"):
            party_id = row_id(raw)
            if party_id is None:
                raise FieldRefused("signatures", "签名的当事人不正确。")
            signers.append({"party_id": party_id, "signed_at": signed_at})
        body = _model(
            AgreementIn,
            {
                "facts": str(form.get("facts", "")).strip(),
                "dispute": str(form.get("dispute", "")).strip(),
                "terms": _lines(str(form.get("terms", ""))),
                "performance": {k: str(form.get(k, "")).strip() for k in ("how", "where", "when")},
                "signatures": signers,
                "signed_at": signed_at,
                "performance_checks": checks,
            },
        )
        agreement = body.model_dump(mode="json", exclude={"signed_at", "performance_checks"})
        station, new_outcome = await records.record_agreement(
            conn, cipher, actor, tracking_no, agreement,
            signed_at=body.signed_at, performance_checks=body.performance_checks,
        )  # fmt: skip
        await audit(conn, principal, "record_agreement", tracking_no, station)
        if new_outcome:
            counted.append(station)

    response = await _carry_out(request, rt, session, cipher, tracking_no, "agreement", change, "agreement")
    for station in counted:  # a corrected agreement is the same outcome, counted once
        if response.status_code == 303:
            outcomes.labels(station=station, outcome="agreement").inc()
    return response


@router.post("/console/cases/{tracking_no}/mediation/outcome")
async def set_outcome(
    tracking_no: TrackingNo,
    request: Request,
    rt: RuntimeDep,
    session: SessionDep,
    cipher: CipherDep,
    outcomes: OutcomesDep,
) -> Response:
    counted: list[tuple[str, str]] = []

    async def change(form: FormData, conn: Connection, outbox: Outbox, principal: Principal, actor: Actor) -> None:
        referral = str(form.get("referral", "")) or None
        body = _model(OutcomeIn, {"outcome": str(form.get("outcome", "")), "referral": referral})
        station = await records.set_outcome(conn, actor, tracking_no, body.outcome, body.referral, _now())
        await audit(conn, principal, "mediation_outcome", tracking_no, station, body.outcome)
        counted.append((station, body.outcome))

    response = await _carry_out(request, rt, session, cipher, tracking_no, "outcome", change, "outcome")
    for station, outcome in counted:
        if response.status_code == 303:
            outcomes.labels(station=station, outcome=outcome).inc()
    return response


@router.post("/console/cases/{tracking_no}/mediation/followups/{followup_id}")
async def complete_followup(
    tracking_no: TrackingNo,
    followup_id: RowId,
    request: Request,
    rt: RuntimeDep,
    session: SessionDep,
    cipher: CipherDep,
) -> Response:
    async def change(form: FormData, conn: Connection, outbox: Outbox, principal: Principal, actor: Actor) -> None:
        performed = str(form.get("performed", ""))
        if performed not in ("yes", "no"):
            raise FieldRefused("performed", "请选择是否已履行。")
        note = str(form.get("result", "")).strip()
        result = ("已履行" if performed == "yes" else "未履行") + (f"：{note}" if note else "")
        body = _model(FollowupIn, {"result": result})
        station = await records.complete_followup(conn, actor, tracking_no, followup_id, body.result, _now())
        await audit(conn, principal, "followup_done", tracking_no, station, f"followup {followup_id}")

    return await _carry_out(request, rt, session, cipher, tracking_no, f"followup-{followup_id}", change, "followups")


# -- the printable agreement ----------------------------------------------------------------------


@router.get("/console/cases/{tracking_no}/mediation/agreement", response_class=HTMLResponse)
async def print_agreement(
    tracking_no: TrackingNo, request: Request, rt: RuntimeDep, session: SessionDep, cipher: CipherDep
) -> Response:
    """人民调解协议书 to print, phone and ID numbers masked."""
    return await _print(request, rt, session, cipher, tracking_no)


@router.post("/console/cases/{tracking_no}/mediation/agreement/full", response_class=HTMLResponse)
async def print_agreement_full(
    tracking_no: TrackingNo, request: Request, rt: RuntimeDep, session: SessionDep, cipher: CipherDep
) -> Response:
    """The agreement in full, for the parties to sign: an audited reveal with a reason."""
    reason = _reveal_reason(await read_form(request, session, max_fields=3))
    if not reason:
        return _refused_page(request, session, tracking_no, 422, "打印完整协议书须填写理由。")
    return await _print(request, rt, session, cipher, tracking_no, full_reason=reason)


async def _print(
    request: Request, rt: RuntimeDep, session: Session, cipher: PiiCipher, tracking_no: str, full_reason: str = ""
) -> Response:
    full = bool(full_reason)
    principal, actor = principal_of(session), actor_of_session(session)
    try:
        async with staff_unit(rt.pool, principal) as (conn, _):
            station, data = await records.printable_agreement(conn, cipher, actor, tracking_no)
            detail = f"personal data: {full_reason}" if full else "masked"
            await audit(conn, principal, "print_agreement", tracking_no, station, detail)
    except Rejected as exc:
        if exc.code == "not_found":
            await audit_refusal(rt.pool, principal, tracking_no)
        return _refused_page(request, session, tracking_no, _STATUS_FOR_CODE.get(exc.code, 404), exc.message)
    if data["agreement"] is None:
        return _refused_page(request, session, tracking_no, 404, "该调解尚未达成协议。")
    return render(request, "agreement.html", **agreement_page(tracking_no, data, masked=not full))

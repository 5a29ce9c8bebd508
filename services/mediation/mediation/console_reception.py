"""接访登记 (issue 16): an officer records a walk-in visitor, a hotline call or a suggestion-box slip
on the citizen's behalf, for their own station. The item goes to intake through its API (the
console writes no other service's tables), as the signed-in person; the citizen leaves with a
printed receipt (回执) carrying the tracking number and the access code they need for /track.

The access code is shown once, on the page that answers the form, and is stored nowhere in
mediation: the receipt is rendered by the POST itself (a redirect would have to keep the code).
A reload of that page re-posts with the same request id, which intake answers with the same
receipt (its Idempotency-Key), never with a second item."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from fengqiao.constants import STATION_TZ
from fengqiao.runtime import RuntimeDep
from mediation import db
from mediation.calendar import walk_in_due
from mediation.cases import calendar, duty_hours
from mediation.console_common import SessionDep, read_form, render
from mediation.service_calls import (
    NotYetSynced,
    ServiceProblem,
    Services,
    enter_slip,
    record_call,
    services_of,
    submit_feedback,
)
from mediation.signin import Session

router = APIRouter(include_in_schema=False)
log = structlog.get_logger(__name__)

KINDS = {"walk_in": "来访", "hotline": "热线电话", "mailbox": "意见箱"}
FIELDS = ("name", "phone", "address", "title", "content")
LIMITS = {"name": 100, "phone": 40, "address": 300, "title": 200, "content": 5000}
LABELS = {"name": "姓名", "phone": "联系电话", "address": "地址", "title": "标题", "content": "诉求内容"}
# intake's field names (in its error answers) -> this form's fields
INTAKE_FIELDS = {
    "reporter.name": "name",
    "caller_name": "name",
    "reporter.phone": "phone",
    "caller_number": "phone",
    "location.address": "address",
    "address": "address",
    "title": "title",
    "content": "content",
    "summary": "content",
}


def _now() -> datetime:
    return datetime.now(UTC)


def new_request_id(at: datetime) -> str:
    """A form's own id (its Idempotency-Key at intake), carrying when the form was opened."""
    return f"{uuid.uuid4().hex}-{int(at.timestamp())}"


def request_time(request_id: str, now: datetime, *, keep: timedelta = timedelta(days=1)) -> datetime:
    """When the form was opened, from its id: sent to intake as the time of the visit or call, so a
    reload of the receipt sends the same body. An id without a usable time: now."""
    _, _, stamp = request_id.rpartition("-")
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 11:
        return now
    at = datetime.fromtimestamp(int(stamp), UTC)
    return at if now - keep <= at <= now + timedelta(minutes=5) else now


@dataclass(frozen=True)
class Visit:
    kind: str
    name: str
    phone: str
    address: str
    title: str
    content: str
    request_id: str


def _form_page(
    request: Request, session: Session, status: int = 200, *, visit: Visit | None = None, **context: Any
) -> HTMLResponse:
    visit = visit or Visit("walk_in", "", "", "", "", "", new_request_id(_now()))
    context.setdefault("errors", {})
    return render(
        request, "console/reception.html", status, me=session, active="reception", kinds=KINDS, v=visit, **context
    )


def _read_visit(form: Any) -> tuple[Visit, dict[str, str]]:
    values = {k: str(form.get(k, "")).strip() for k in FIELDS}
    kind = str(form.get("kind", ""))
    request_id = str(form.get("request_id", ""))[:64] or new_request_id(_now())
    errors: dict[str, str] = {}
    if kind not in KINDS:
        errors["kind"] = "请选择来源：来访、热线电话或意见箱。"
        kind = "walk_in"
    for key, limit in LIMITS.items():
        if len(values[key]) > limit:
            errors[key] = f"{LABELS[key]}不能超过 {limit} 个字。"
    if not values["content"]:
        errors["content"] = "请填写诉求内容（群众反映的事情）。"
    return Visit(kind, request_id=request_id, **values), errors


def _intake_body(visit: Visit, session: Session, now: datetime) -> dict[str, Any]:
    station = session.station
    reporter = {"name": visit.name, "phone": visit.phone}
    if visit.kind == "hotline":
        return {
            # one form, one call: a reload of the receipt is the same call, not a new one
            "call_id": f"console:{session.staff_id}:{visit.request_id}",
            "station": station,
            "caller_number": visit.phone,
            "caller_name": visit.name,
            "operator": session.staff_id,
            "started_at": now.isoformat(),
            "summary": f"{visit.title}\n{visit.content}" if visit.title else visit.content,
            "address": visit.address,
        }
    if visit.kind == "mailbox":
        return {
            "station": station,
            "kind": "suggestion_box",
            "content": visit.content,
            "title": visit.title or None,
            "opened_at": now.isoformat(),
            "opened_by": session.staff_id,
            "reporter": reporter,
        }
    return {
        "station": station,
        "channel": "walk_in",
        "content": visit.content,
        "title": visit.title or None,
        "occurred_at": now.isoformat(),
        "reporter": reporter,
        "location": {"address": visit.address},
    }


async def _submit(services: Services, session: Session, visit: Visit, now: datetime) -> dict[str, Any]:
    body = _intake_body(visit, session, now)
    if visit.kind == "hotline":
        return await record_call(services, session.api_token, body)
    if visit.kind == "mailbox":
        return await enter_slip(services, session.api_token, body)  # intake keeps no key for slips
    return await submit_feedback(services, session.api_token, body, idempotency_key=visit.request_id)


def _no_station(request: Request, session: Session) -> HTMLResponse:
    return render(
        request,
        "console/reception_refused.html",
        403,
        me=session,
        active="reception",
        message="接访登记只能由派出所工作人员为本所登记；分局账号请使用分局的受理渠道。",
    )


@router.get("/console/reception", response_class=HTMLResponse)
async def reception_form(request: Request, session: SessionDep) -> HTMLResponse:
    if not session.station:
        return _no_station(request, session)
    return _form_page(request, session)


@router.post("/console/reception", response_class=HTMLResponse)
async def reception_submit(request: Request, rt: RuntimeDep, session: SessionDep) -> HTMLResponse:
    form = await read_form(request, session, max_fields=12)
    if not session.station:
        return _no_station(request, session)
    visit, errors = _read_visit(form)
    if errors:
        return _form_page(request, session, 422, visit=visit, errors=errors)
    now = _now()
    try:
        # the times sent are the form's own: a reload sends the same request, and gets the same receipt
        answer = await _submit(services_of(request), session, visit, request_time(visit.request_id, now))
    except NotYetSynced as exc:
        # the session's token has not reached intake yet: keep what was typed, try again shortly
        return _form_page(request, session, 503, visit=visit, problem=exc.message)
    except ServiceProblem as exc:
        if exc.field == "Idempotency-Key":  # the page's form was sent before (back button), then changed
            fresh = replace(visit, request_id=new_request_id(_now()))
            return _form_page(
                request,
                session,
                409,
                visit=fresh,
                problem="该表单已登记过一次。如需登记新的事项，请核对内容后再次提交。",
            )
        field = INTAKE_FIELDS.get(exc.field or "")
        if field and exc.status < 500:
            return _form_page(request, session, exc.status, visit=visit, errors={field: exc.message})
        return _form_page(request, session, exc.status, visit=visit, problem=exc.message)
    tracking_no = str(answer.get("tracking_no", ""))
    log.info("reception_recorded", kind=visit.kind, station=session.station, tracking_no=tracking_no)
    return await _receipt(request, rt, session, visit, answer, now)


async def _receipt(
    request: Request, rt: RuntimeDep, session: Session, visit: Visit, answer: dict[str, Any], now: datetime
) -> HTMLResponse:
    assert session.station is not None
    async with rt.pool.acquire() as conn:
        station = await db.directory.station(conn, session.station)
        target = None
        if visit.kind == "walk_in":
            due, note = walk_in_due(now, await duty_hours(conn, session.station), await calendar(conn))
            target = {"at": due.astimezone(STATION_TZ).strftime("%Y-%m-%d %H:%M"), "note": note}
    receipt = {
        "tracking_no": answer.get("tracking_no"),
        # a hotline call that follows up an open item is added to it: no new code
        "access_code": answer.get("access_code"),
        "added_to": answer.get("added_to"),
        "kind_label": KINDS[visit.kind],
        "kind": visit.kind,
        "at": now.astimezone(STATION_TZ).strftime("%Y-%m-%d %H:%M"),
        "station_name": station["name"] if station else session.station,
        "station_phone": station["phone"] if station else None,
        "target": target,
        "track_url": rt.settings.public_base_url.rstrip("/") + "/track",
        "title": visit.title,
    }
    response = render(
        request,
        "console/receipt.html",
        me=session,
        active="reception",
        r=receipt,
    )
    response.headers["Cache-Control"] = "no-store"  # it carries the access code
    return response

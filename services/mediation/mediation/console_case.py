"""The case detail page of the officer's console (issue 16, DESIGN 4.8): `/console/cases/{no}`
shows a case of the person's station (another station's, or one they are kept out of, is 404),
and its forms post the typed case commands (`carry_out`, as the JSON API does), a classification
correction, a logged reveal of the citizen's words and a link to a rectification measure.

A form carries the case's version (its latest history step): if the case changed since, the action
is refused (409) with the steps since shown and what was typed kept (no silent overwrite)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from fengqiao.runtime import Runtime, RuntimeDep
from fengqiao.taxonomy import CATEGORY_LABELS, TYPE_LABELS, URGENCY_LABELS
from mediation import db, rectification, service_calls
from mediation.api import apply_correction, refused
from mediation.commands_api import COMMANDS_BY_NAME, StaleForm, carry_out
from mediation.console_case_view import (
    DONE_WORDS,
    FORM_CHOICES,
    changes_since,
    load_case,
    read_command,
    steps_in_words,
)
from mediation.console_common import (
    SessionDep,
    actor_of_session,
    principal_of,
    read_form,
    render,
    row_id,
    secure_headers,
)
from mediation.console_replies import fill
from mediation.deps import CipherDep, TrackingNo
from mediation.lifecycle import Rejected
from mediation.service_calls import services_of
from mediation.signin import Session
from mediation.unit import audit, audit_refusal, staff_unit

router = APIRouter(include_in_schema=False)
CLASSIFICATION_FIELDS = ("type", "category", "urgency")


def _not_found(request: Request, session: Session) -> HTMLResponse:
    return render(request, "console/case_missing.html", status=404, me=session)


async def _page(
    request: Request,
    rt: Runtime,
    session: Session,
    cipher: Any,
    no: str,
    *,
    status: int = 200,
    reveal: bool = False,
    action: str = "view_case",
    detail: str | None = None,
    **extra: Any,
) -> HTMLResponse:
    view = await load_case(rt, session, cipher, no, reveal=reveal, action=action, detail=detail)
    if view is None:
        await audit_refusal(rt.pool, principal_of(session), no)
        return _not_found(request, session)
    done = DONE_WORDS.get(request.query_params.get("done", "")) if request.method == "GET" else None
    replies: list[Any] = []
    if "resolve" in view.get("allowed", ()) and session.station:  # 常用答复 for the resolve form
        async with staff_unit(rt.pool, principal_of(session)) as (conn, _):
            replies = await db.replies.of_station(conn, session.station)
    context = {
        "me": session,
        "active": "",
        "done": done,
        "error": None,
        "stale": None,
        "typed": {},
        "replies": replies,
        **extra,
    }
    return render(request, "console/case.html", status=status, **FORM_CHOICES, **view, **context)


def _version(form: FormData) -> int | None:
    """The version the form was rendered with; a form without one is treated as stale (0)."""
    return row_id(form.get("version")) or 0


@router.get("/console/cases/{tracking_no}", response_class=HTMLResponse)
async def case_page(
    tracking_no: TrackingNo, request: Request, rt: RuntimeDep, session: SessionDep, cipher: CipherDep
) -> HTMLResponse:
    return await _page(request, rt, session, cipher, tracking_no)


@router.post("/console/cases/{tracking_no}/act/{command}", response_class=HTMLResponse)
async def act(
    tracking_no: TrackingNo, command: str, request: Request, rt: RuntimeDep, session: SessionDep, cipher: CipherDep
) -> Response:
    """One case command from its form: 303 back with a flash, or the page again with the refusal."""
    form = await read_form(request, session)
    kind = COMMANDS_BY_NAME.get(command)
    if kind is None:
        return _not_found(request, session)
    if command == "resolve":
        form = await _with_reply(rt, session, form, tracking_no)
    typed_command, typed, message = read_command(kind, form)
    error = {"command": command, "message": message}
    if typed_command is None:
        return await _page(request, rt, session, cipher, tracking_no, status=422, error=error, typed=typed)
    try:
        await carry_out(
            rt,
            principal_of(session),
            actor_of_session(session),
            tracking_no,
            typed_command,
            expected_version=_version(form),
        )
    except Rejected as exc:
        if exc.code == "not_found":
            return _not_found(request, session)
        error["message"] = exc.message
        return await _page(
            request, rt, session, cipher, tracking_no, status=refused(exc).status_code, error=error, typed=typed
        )
    except StaleForm as exc:
        return await _stale(request, rt, session, cipher, tracking_no, exc, command, typed)
    return _back(tracking_no, command)


async def _with_reply(rt: Runtime, session: Session, form: FormData, tracking_no: str) -> FormData:
    """Without JavaScript the chosen reusable reply is not in the summary field yet: an empty
    summary takes it (with htmx it was put there when chosen, and may have been edited since)."""
    reply_id = row_id(form.get("reply_id"))
    if str(form.get("summary", "")).strip() or reply_id is None or not session.station:
        return form
    async with staff_unit(rt.pool, principal_of(session)) as (conn, _):
        reply = await db.replies.get(conn, session.station, reply_id)
    if reply is None:
        return form
    kept = [(k, v) for k, v in form.multi_items() if k != "summary"]
    return FormData([*kept, ("summary", fill(reply["body"], tracking_no))])


def _back(tracking_no: str, done: str) -> Response:
    return secure_headers(RedirectResponse(f"/console/cases/{tracking_no}?done={done}", status_code=303))


async def _stale(
    request: Request,
    rt: Runtime,
    session: Session,
    cipher: Any,
    no: str,
    exc: StaleForm,
    command: str,
    typed: dict[str, str],
) -> HTMLResponse:
    async with staff_unit(rt.pool, principal_of(session)) as (conn, _):
        names = await db.detail.staff_names(conn, sorted({s["actor"] for s in exc.steps}))
    error = {"command": command, "message": "此事项在您打开页面后已有变化，操作未执行。请核对下列变化后再提交。"}
    stale = steps_in_words(exc.steps, names)
    return await _page(request, rt, session, cipher, no, status=409, error=error, typed=typed, stale=stale)


@router.post("/console/cases/{tracking_no}/classification", response_class=HTMLResponse)
async def correct(
    tracking_no: TrackingNo, request: Request, rt: RuntimeDep, session: SessionDep, cipher: CipherDep
) -> Response:
    """The holder's or leadership's correction of triage's labels (as `PUT .../classification`)."""
    form = await read_form(request, session)
    typed = {k: str(form.get(k, "")) for k in (*CLASSIFICATION_FIELDS, "reason")}
    changes = {k: typed[k] for k in CLASSIFICATION_FIELDS if typed[k]}
    error = {"command": "classification", "message": ""}
    known = {"type": TYPE_LABELS, "category": CATEGORY_LABELS, "urgency": URGENCY_LABELS}
    reason = typed["reason"].strip()
    if any(v not in known[k] for k, v in changes.items()):
        error["message"] = "请从列表中选择类型、类别或紧急程度。"
    elif not changes:
        error["message"] = "请至少更正类型、类别或紧急程度之一。"
    elif not reason or len(reason) > 500:
        error["message"] = "请填写更正理由（500 字以内）。"
    if error["message"]:
        return await _page(request, rt, session, cipher, tracking_no, status=422, error=error, typed=typed)
    try:
        await apply_correction(
            rt,
            principal_of(session),
            actor_of_session(session),
            tracking_no,
            changes,
            reason,
            expected_version=_version(form),
        )
    except Rejected as exc:
        if exc.code == "not_found":
            return _not_found(request, session)
        error["message"] = exc.message
        status = refused(exc).status_code
        return await _page(request, rt, session, cipher, tracking_no, status=status, error=error, typed=typed)
    except StaleForm as exc:
        return await _stale(request, rt, session, cipher, tracking_no, exc, "classification", typed)
    return _back(tracking_no, "classification")


@router.post("/console/cases/{tracking_no}/reveal", response_class=HTMLResponse)
async def reveal(
    tracking_no: TrackingNo, request: Request, rt: RuntimeDep, session: SessionDep, cipher: CipherDep
) -> HTMLResponse:
    """显示完整内容: the citizen's words as written, on this response only (no-store), with the
    reason in mediation's audit log."""
    form = await read_form(request, session)
    reason = str(form.get("reason", "")).strip()
    if not reason or len(reason) > 500:
        error = {"command": "reveal", "message": "请填写查看完整内容的理由（500 字以内）。"}
        return await _page(request, rt, session, cipher, tracking_no, status=422, error=error, typed={"reason": reason})
    return await _page(request, rt, session, cipher, tracking_no, reveal=True, action="reveal_words", detail=reason)


@router.post("/console/cases/{tracking_no}/rectification", response_class=HTMLResponse)
async def link_measure(
    tracking_no: TrackingNo, request: Request, rt: RuntimeDep, session: SessionDep, cipher: CipherDep
) -> Response:
    """关联整改措施: the case becomes an item of an open measure of the station (leadership)."""
    form = await read_form(request, session)
    value = str(form.get("measure_id", ""))
    error = {"command": "rectification", "message": ""}
    if row_id(value) is None:
        error["message"] = "请选择整改措施。"
        return await _page(request, rt, session, cipher, tracking_no, status=422, error=error)
    principal = principal_of(session)
    try:
        async with staff_unit(rt.pool, principal) as (conn, _):
            row = await db.cases.get_case(conn, tracking_no)
            if row is None or not principal.can_see_station(row["station"]):
                raise Rejected("not_found", "未找到该事项。")
            await rectification.link(conn, actor_of_session(session), int(value), [tracking_no])
            await audit(conn, principal, "link_rectification", tracking_no, row["station"], f"measure {value}")
    except Rejected as exc:
        if exc.message == "未找到该事项。":
            return _not_found(request, session)
        error["message"] = exc.message
        status = refused(exc).status_code
        return await _page(request, rt, session, cipher, tracking_no, status=status, error=error)
    return _back(tracking_no, "rectification")


@router.get("/console/cases/{tracking_no}/changes", response_class=HTMLResponse)
async def changes(
    tracking_no: TrackingNo, request: Request, rt: RuntimeDep, session: SessionDep, since: int = 0
) -> HTMLResponse:
    """The htmx poll: a banner when the case changed since the page was loaded, and who else is on it."""
    found = await changes_since(rt, session, tracking_no, max(0, min(since, 2**62)))
    if found is None:  # htmx swaps only a 200: the banner says so; anyone else is told 404
        status = 200 if request.headers.get("HX-Request") else 404
        return render(request, "console/case_changes.html", status=status, me=session, gone=True, no=tracking_no)
    return render(request, "console/case_changes.html", me=session, no=tracking_no, gone=False, **found)


@router.get("/console/cases/{tracking_no}/print", response_class=HTMLResponse)
async def print_form(
    tracking_no: TrackingNo, request: Request, rt: RuntimeDep, session: SessionDep, cipher: CipherDep
) -> HTMLResponse:
    """受理登记表, A4, personal data masked."""
    return await _print_case(request, rt, session, cipher, tracking_no)


@router.post("/console/cases/{tracking_no}/print", response_class=HTMLResponse)
async def print_form_revealed(
    tracking_no: TrackingNo, request: Request, rt: RuntimeDep, session: SessionDep, cipher: CipherDep
) -> HTMLResponse:
    """受理登记表 with the citizen's words as written: a reveal with a reason (audited), on this
    response only."""
    form = await read_form(request, session)
    reason = str(form.get("reason", "")).strip()
    if not reason or len(reason) > 500:
        error = "请填写打印完整内容的理由（500 字以内）。"
        return await _print_case(request, rt, session, cipher, tracking_no, status=422, error=error)
    return await _print_case(request, rt, session, cipher, tracking_no, reveal=True, detail=f"print: {reason}")


async def _print_case(
    request: Request,
    rt: Runtime,
    session: Session,
    cipher: Any,
    no: str,
    *,
    status: int = 200,
    reveal: bool = False,
    detail: str | None = None,
    error: str | None = None,
) -> HTMLResponse:
    action = "reveal_words" if reveal else "print_case"
    view = await load_case(rt, session, cipher, no, reveal=reveal, action=action, detail=detail)
    if view is None:
        await audit_refusal(rt.pool, principal_of(session), no)
        return _not_found(request, session)
    return render(request, "console/print_case.html", status=status, me=session, error=error, **FORM_CHOICES, **view)


SCAN_TYPES = {"image/png": "png", "image/jpeg": "jpg", "application/pdf": "pdf"}


@router.get("/console/cases/{tracking_no}/scan", response_model=None)
async def slip_scan(tracking_no: TrackingNo, request: Request, rt: RuntimeDep, session: SessionDep) -> Response:
    """The scanned suggestion-box slip, from intake as the signed-in person (intake logs the
    viewing and checks the person again); a case this person may not open is 404 first."""
    principal = principal_of(session)
    async with staff_unit(rt.pool, principal) as (conn, _):
        row = await db.cases.get_case(conn, tracking_no)
        if row is not None:
            await audit(conn, principal, "view_scan", tracking_no, row["station"])
    if row is None:
        await audit_refusal(rt.pool, principal, tracking_no)
        return _not_found(request, session)
    try:
        found = await service_calls.slip_scan(services_of(request), session.api_token, tracking_no)
    except service_calls.ServiceProblem as exc:
        return render(request, "console/case_missing.html", 503, me=session, message=exc.message)
    if found is None or found[1].split(";")[0].strip() not in SCAN_TYPES:
        return render(request, "console/case_missing.html", 404, me=session, message="该事项没有纸质意见单扫描件。")
    image, content_type = found
    kind = content_type.split(";")[0].strip()
    # as intake serves it: never sniffed, never run as a page of ours, a PDF downloaded
    disposition = "attachment" if kind == "application/pdf" else "inline"
    return Response(
        image,
        media_type=kind,
        headers={
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Content-Disposition": f'{disposition}; filename="scan-{tracking_no}.{SCAN_TYPES[kind]}"',
        },
    )


@router.get("/console/cases/{tracking_no}/visit-record", response_class=HTMLResponse)
async def visit_record(
    tracking_no: TrackingNo, request: Request, rt: RuntimeDep, session: SessionDep, cipher: CipherDep
) -> HTMLResponse:
    """回访记录, A4: the resolution told to the citizen and the return visit (blank lines to fill in
    by hand before it is recorded)."""
    view = await load_case(rt, session, cipher, tracking_no, action="print_visit_record")
    if view is None:
        await audit_refusal(rt.pool, principal_of(session), tracking_no)
        return _not_found(request, session)
    steps = [e for e in view["timeline"] if e["kind"] == "step"]
    resolved = next((s for s in reversed(steps) if s["what"] == "办结"), None)
    visited = next((s for s in reversed(steps) if s["what"] == "回访"), None)
    return render(
        request,
        "console/print_visit.html",
        me=session,
        resolved=resolved,
        visited=visited,
        **FORM_CHOICES,
        **view,
    )

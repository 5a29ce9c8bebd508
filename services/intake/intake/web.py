"""The citizen's web pages (zh-CN, server-rendered, no build step): the feedback form and its
confirmation, and the tracking page. Access codes are only ever sent in POST bodies, never in URLs."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TypeGuard

import asyncpg
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from fengqiao import links
from fengqiao.constants import INTAKE_SOURCE, STATION_TZ
from fengqiao.events import CloudEvent, EventTypes, FeedbackSubmitted, SurveyAnswered, Topics, new_event
from fengqiao.http import rate_limited
from fengqiao.outbox import Outbox, unit_of_work
from fengqiao.pii import BlindIndex, PiiCipher
from fengqiao.runtime import Runtime, RuntimeDep
from fengqiao.taxonomy import CATEGORY_LABELS
from intake import db
from intake.access import AccessLocked, code_opens
from intake.additions import add_to_item
from intake.deps import CipherDep, IndexDep, LinkKeyDep
from intake.domain import MAX_ADDITION_CHARS, STATUS_LABELS, info_pending, normalise_tracking_no
from intake.mailtext import clean_text
from intake.submissions import UnknownStation, accept_submission, open_receipt, seal_receipt

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

FIELD_MESSAGES = {
    "station": "请选择派出所，或填写能识别辖区的地址。",
    "content": "请填写反映内容（1 至 5000 字）。",
    "title": "标题不能超过 200 字。",
    "phone": "电话号码格式不正确，请填写手机号或带区号的固定电话。",
    "email": "电子邮箱格式不正确。",
    "name": "称呼不能超过 100 字。",
    "address": "地址不能超过 300 字。",
}
NOT_FOUND = "未找到该编号，或查询码不正确。"


def _render(request: Request, name: str, status: int = 200, **context) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status)


async def _form_page(request: Request, rt, *, values: dict, errors: dict, status: int = 200) -> HTMLResponse:
    async with rt.pool.acquire() as conn:
        stations = await db.stations(conn)
    return _render(
        request,
        "form.html",
        status,
        stations=stations,
        values=values,
        errors=errors,
        form_token=values.get("form_token") or secrets.token_hex(16),
    )


@router.get("/", response_class=HTMLResponse)
async def feedback_form(request: Request, rt: RuntimeDep) -> HTMLResponse:
    return await _form_page(request, rt, values={}, errors={})


@router.post("/", response_class=HTMLResponse, dependencies=[rate_limited("submit")])
async def submit_form(request: Request, rt: RuntimeDep, cipher: CipherDep, index: IndexDep) -> HTMLResponse:
    form = await request.form(max_files=0, max_fields=20)
    texts = {
        k: str(form.get(k, "")).strip()
        for k in ("form_token", "station", "title", "content", "address", "name", "phone", "email")
    }
    anonymous = form.get("anonymous") == "1"
    confidential = form.get("confidential") == "1"
    values: dict[str, str | bool] = {**texts, "anonymous": anonymous, "confidential": confidential}
    data, errors = await _check_form(rt, texts, anonymous=anonymous, confidential=confidential)
    if errors or data is None:  # no data without errors
        return await _form_page(request, rt, values=values, errors=errors, status=422)

    # The form token makes a double submit (or a reload of the confirmation) return the same receipt.
    token = texts["form_token"][:64] or secrets.token_hex(16)
    digest = hashlib.sha256(json.dumps(values, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    async with unit_of_work(rt.pool) as (conn, outbox):
        receipt = await _form_receipt(conn, outbox, rt, data, token, digest, cipher=cipher, index=index)
        if receipt is None:
            return await _form_page(
                request, rt, values=values, errors={"station": FIELD_MESSAGES["station"]}, status=422
            )
        station_name = await db.station_name(conn, receipt["station"])
    return _render(
        request,
        "submitted.html",
        tracking_no=receipt["tracking_no"],
        access_code=receipt["access_code"],
        station_name=station_name,
    )


async def _check_form(
    rt: Runtime, texts: dict[str, str], *, anonymous: bool, confidential: bool
) -> tuple[FeedbackSubmitted | None, dict[str, str]]:
    """The form as a submission, and the message for every field in error (the station is found
    from the address if none was chosen)."""
    errors: dict[str, str] = {}
    async with rt.pool.acquire() as conn:
        station = texts["station"] or (
            await db.station_for_address(conn, texts["address"]) if texts["address"] else None
        )
    if not station:
        errors["station"] = FIELD_MESSAGES["station"]
    data = None
    try:
        # One validation of the whole form (nested dicts included), so every field's error is reported.
        data = FeedbackSubmitted.model_validate(
            {
                "station": station or "?",
                "channel": "web",
                "content": texts["content"],
                "title": texts["title"] or None,
                "location": {"address": texts["address"]},
                "reporter": {
                    "name": "" if anonymous else texts["name"],
                    "phone": texts["phone"],
                    "email": texts["email"],
                    "anonymous": anonymous,
                    "confidential": confidential,
                },
            }
        )
    except ValidationError as exc:
        for err in exc.errors():
            field = str(err["loc"][-1]) if err["loc"] else "content"
            errors.setdefault(field, FIELD_MESSAGES.get(field, "请检查此项。"))
    return data, errors


async def _form_receipt(
    conn: asyncpg.Connection,
    outbox: Outbox,
    rt: Runtime,
    data: FeedbackSubmitted,
    token: str,
    digest: str,
    *,
    cipher: PiiCipher,
    index: BlindIndex,
) -> dict | None:
    """The receipt of this form: the one kept for its token if the same form was sent before, else
    a new submission's (kept, sealed, for the next time); None if the station is unknown."""
    previous = await db.lookup_idempotent(conn, "web-form", token)
    if previous is not None and previous["request_hash"] == digest:
        return open_receipt(cipher, "web-form", token, json.loads(previous["response"]))
    try:
        accepted = await accept_submission(conn, outbox, data, cipher=cipher, index=index)
    except UnknownStation:
        return None
    receipt = {
        "tracking_no": accepted.tracking_no,
        "access_code": accepted.access_code,
        "station": accepted.station,
    }
    await db.store_idempotent(conn, "web-form", token, digest, seal_receipt(cipher, "web-form", token, receipt))
    outbox.after_commit(rt.metrics.feedback_received.labels(station=accepted.station, channel="web").inc)
    return receipt


@router.get("/track", response_class=HTMLResponse)
async def track_page(request: Request, no: str | None = None) -> HTMLResponse:
    return _render(request, "track.html", tracking_no=normalise_tracking_no(no)[:32] if no else "")


async def _opened_item(
    request: Request, conn: asyncpg.Connection, index: IndexDep, form
) -> tuple[asyncpg.Record | None, str, HTMLResponse | None]:
    """The item the form's tracking number and access code open, or the page refusing it (404 for a
    wrong number or code, 429 while the number is locked)."""
    tracking_no = normalise_tracking_no(str(form.get("tracking_no", "")))[:32]
    code = str(form.get("access_code", "")).strip()[:16]
    row = await db.get_submission(conn, tracking_no) if tracking_no else None
    try:
        opened = row is not None and await code_opens(conn, index, row, code)
    except AccessLocked as exc:
        return (
            None,
            tracking_no,
            _render(
                request,
                "track.html",
                429,
                tracking_no=tracking_no,
                error=f"查询码错误次数过多，该编号已暂时锁定，请 {exc.retry_after_s // 60 + 1} "
                "分钟后再试，或致电派出所查询。",
            ),
        )
    if row is None or not opened:  # `opened` is False without a row; this tells mypy so
        return None, tracking_no, _render(request, "track.html", 404, tracking_no=tracking_no, error=NOT_FOUND)
    return row, tracking_no, None


async def _track_page(
    request: Request, conn: asyncpg.Connection, row: asyncpg.Record, code: str, status: int = 200, **context
) -> HTMLResponse:
    """The tracking page of an opened item: its status, its timeline and, while the officer waits
    for the citizen's information, the form to add it (which carries the access code back in its
    POST body: the code is what makes the form safe from cross-site posts)."""
    tracking_no = row["tracking_no"]
    timeline = await db.get_timeline(conn, tracking_no)
    station_name = await db.station_name(conn, row["station"])
    item = {
        "tracking_no": tracking_no,
        "station_name": station_name,
        "status_label": STATUS_LABELS.get(row["status"], row["status"]),
        "category_label": CATEGORY_LABELS.get(row["category"]) if row["category"] else None,
        "timeline": [
            {
                "label": STATUS_LABELS.get(t["status"], t["status"]),
                "note": t["note"],
                "at": t["at"].astimezone(STATION_TZ).strftime("%Y-%m-%d %H:%M"),
            }
            for t in timeline
        ],
        "info_pending": info_pending(row["status"], row["info_requested_at"], row["info_answered_at"]),
    }
    response = _render(
        request,
        "track.html",
        status,
        item=item,
        tracking_no=tracking_no,
        access_code=code,
        form_token=secrets.token_hex(16),
        max_addition=MAX_ADDITION_CHARS,
        **context,
    )
    response.headers["Cache-Control"] = "no-store"  # the page carries the access code in its form
    return response


@router.post("/track", response_class=HTMLResponse, dependencies=[rate_limited("track")])
async def track(request: Request, rt: RuntimeDep, index: IndexDep) -> HTMLResponse:
    form = await request.form(max_files=0, max_fields=5)
    async with rt.pool.acquire() as conn:
        row, _, refusal = await _opened_item(request, conn, index, form)
        if row is None:
            assert refusal is not None
            return refusal
        return await _track_page(request, conn, row, str(form.get("access_code", "")).strip()[:16])


@router.post("/track/add", response_class=HTMLResponse, dependencies=[rate_limited("track")])
async def add_information(request: Request, rt: RuntimeDep, index: IndexDep, cipher: CipherDep) -> HTMLResponse:
    """The citizen answers the officer's request for information (text only, size-limited). Needs the
    item's access code, like the tracking page; a reload of the confirmation adds nothing twice."""
    form = await request.form(max_files=0, max_fields=6)
    code = str(form.get("access_code", "")).strip()[:16]
    raw = str(form.get("text", ""))
    text = clean_text(raw[: MAX_ADDITION_CHARS * 2], limit=MAX_ADDITION_CHARS * 2)
    token = str(form.get("form_token", "")).strip()[:64] or secrets.token_hex(16)
    async with unit_of_work(rt.pool) as (conn, outbox):
        row, tracking_no, refusal = await _opened_item(request, conn, index, form)
        if row is None:
            assert refusal is not None
            return refusal
        if not info_pending(row["status"], row["info_requested_at"], row["info_answered_at"]):
            return await _track_page(request, conn, row, code, 409, error="该事项目前不需要您补充材料。")
        if not text or len(text) > MAX_ADDITION_CHARS:
            field_error = f"请填写补充内容（1 至 {MAX_ADDITION_CHARS} 字）。"
            return await _track_page(
                request, conn, row, code, 422, field_error=field_error, text=raw[:MAX_ADDITION_CHARS]
            )
        await add_to_item(
            conn,
            outbox,
            row,
            cipher=cipher,
            channel="web",
            source_key=f"{tracking_no}:{token}",
            text=text,
            answers_request=True,
        )
        row = await db.get_submission(conn, tracking_no) or row
        return await _track_page(request, conn, row, code, done="已收到您补充的材料，承办民警会尽快处理。")


# -- the return-visit survey (回访), reached from the signed link notify sends -------------------

SURVEY_PURPOSE = "survey"
SurveyResult = Literal["satisfied", "basically_satisfied", "dissatisfied"]
SURVEY_RESULTS = {"satisfied", "basically_satisfied", "dissatisfied"}


def _is_survey_result(value: str) -> TypeGuard[SurveyResult]:
    return value in SURVEY_RESULTS


def _survey_subject(link_key: bytes, token: str) -> tuple[tuple[str, int] | None, str | None]:
    """(tracking no, resolution) the link asks about, or the reason it cannot be used."""
    try:
        return links.parse_survey_subject(links.verify(link_key, SURVEY_PURPOSE, token)), None
    except links.LinkExpired:
        return None, "评价链接已过期。如需评价，请拨打派出所电话。"
    except links.LinkInvalid:
        return None, "评价链接无效，请检查短信或邮件中的链接是否完整。"


@router.get("/survey", response_class=HTMLResponse)
async def survey_page(request: Request, link_key: LinkKeyDep, t: str = "") -> HTMLResponse:
    subject, error = _survey_subject(link_key, t[:200])
    tracking_no = subject[0] if subject else None
    return _render(request, "survey.html", 200 if tracking_no else 400, token=t, tracking_no=tracking_no, error=error)


@router.post("/survey", response_class=HTMLResponse, dependencies=[rate_limited("track")])
async def answer_survey(request: Request, rt: RuntimeDep, link_key: LinkKeyDep) -> HTMLResponse:
    form = await request.form(max_files=0, max_fields=5)
    token = str(form.get("t", ""))[:200]
    subject, error = _survey_subject(link_key, token)
    if subject is None:
        return _render(request, "survey.html", 400, error=error)
    tracking_no, resolution = subject
    result = str(form.get("result", ""))
    reason = str(form.get("reason", "")).strip()[:1000] or None
    if not _is_survey_result(result):
        return _render(
            request,
            "survey.html",
            422,
            token=token,
            tracking_no=tracking_no,
            field_error="请选择满意、基本满意或不满意。",
        )
    if result == "dissatisfied" and not reason:
        return _render(
            request,
            "survey.html",
            422,
            token=token,
            tracking_no=tracking_no,
            field_error="请告诉我们不满意的原因，我们会重新办理。",
        )
    async with unit_of_work(rt.pool) as (conn, outbox):
        row = await db.get_submission(conn, tracking_no)
        if row is None:
            return _render(request, "survey.html", 400, error="评价链接无效，请检查短信或邮件中的链接是否完整。")
        if await db.record_survey_answer(conn, tracking_no, resolution, result, reason):
            outbox.add(Topics.SURVEYS, _survey_answered(tracking_no, resolution, row["station"], result, reason))
            done = "感谢您的评价！" + ("我们会重新办理，所领导会与您联系。" if result == "dissatisfied" else "")
        else:
            done = "已收到您的评价，感谢您的支持。"
    return _render(request, "survey.html", done=done)


def _survey_answered(
    tracking_no: str, resolution: int, station: str, result: SurveyResult, reason: str | None
) -> CloudEvent:
    """The citizen's answer as an event (mediation sends a dissatisfied one back to the leader)."""
    return new_event(
        EventTypes.SURVEY_ANSWERED,
        SurveyAnswered(
            tracking_no=tracking_no,
            station=station,
            result=result,
            reason=reason,
            answered_at=datetime.now(UTC),
            resolution=resolution,
        ),
        source=INTAKE_SOURCE,
        subject=tracking_no,
        stationid=station,
    )

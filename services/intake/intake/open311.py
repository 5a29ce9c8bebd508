"""Open311 GeoReport v2 (https://wiki.open311.org/GeoReport_v2) under /open311/v2/, in JSON and
XML, so existing Open311 clients and apps can file and follow requests.

jurisdiction_id = station code; service_code = our category; api_key = an integration token;
service_request_id = the tracking number. Reading requests needs no key, so reads show only
what is not personal: status, category, station and times — never the description or address;
and a read without an integration key does not show confidential items (protected tip-offs) or
complaints about officers at all (security review finding 4)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from xml.etree import ElementTree

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from fengqiao.auth import authenticate
from fengqiao.events import FeedbackSubmitted, Location, Reporter
from fengqiao.http import rate_limited
from fengqiao.outbox import unit_of_work
from fengqiao.runtime import RuntimeDep
from fengqiao.taxonomy import CATEGORY_LABELS
from intake import db
from intake.deps import CipherDep, IndexDep
from intake.domain import STATUS_LABELS, normalise_tracking_no
from intake.submissions import UnknownStation, accept_submission

router = APIRouter(prefix="/open311/v2", tags=["open311"])
# A station code: never NUL, which PostgreSQL refuses with a 500 (hostile-input walk, finding S3).
Jurisdiction = Annotated[str | None, Query(max_length=32, pattern=r"^[0-9A-Za-z_-]+$")]

FORMAT = Path(pattern="^(json|xml)$")
CLOSED = {"closed", "merged", "transferred", "voided"}
# Categories an anonymous reader never sees listed: who complained about which officer is nobody's business.
HIDDEN_FROM_ANONYMOUS = ["police_conduct"]
SERVICE_DESCRIPTIONS = {
    "public_order": "打架斗殴、赌博、寻衅滋事等治安问题",
    "neighbor_dispute": "邻里之间的矛盾纠纷",
    "family_dispute": "婚姻家庭矛盾纠纷",
    "labor_dispute": "拖欠工资等劳资纠纷",
    "traffic": "交通秩序、违停、事故",
    "fraud": "电信网络诈骗",
    "theft": "盗窃、财物丢失",
    "noise": "噪声扰民",
    "safety_hazard": "消防、燃气、危房等安全隐患",
    "police_conduct": "对民警作风纪律的意见和投诉",
    "admin_service": "身份证、户口、居住证等证件办事",
    "other": "其他意见、建议、求助",
}


class Open311Error(Exception):
    def __init__(self, status: int, description: str) -> None:
        self.status = status
        self.description = description


def _to_xml(root: str, item: str, rows: list[dict]) -> bytes:
    top = ElementTree.Element(root)
    for row in rows:
        element = ElementTree.SubElement(top, item)
        for key, value in row.items():
            child = ElementTree.SubElement(element, key)
            if isinstance(value, list):
                child.text = ",".join(str(v) for v in value)
            elif isinstance(value, bool):
                child.text = "true" if value else "false"
            elif value is not None:
                child.text = str(value)
    return b'<?xml version="1.0" encoding="utf-8"?>' + ElementTree.tostring(top, encoding="utf-8")


def _respond(fmt: str, root: str, item: str, rows: list[dict] | dict, status: int = 200) -> Response:
    if fmt == "json":
        return JSONResponse(rows, status_code=status)
    if isinstance(rows, dict):  # a single document (the service definition)
        top = ElementTree.Element(root)
        for key, value in rows.items():
            child = ElementTree.SubElement(top, key)
            if not isinstance(value, list):
                child.text = str(value)
        body = b'<?xml version="1.0" encoding="utf-8"?>' + ElementTree.tostring(top, encoding="utf-8")
    else:
        body = _to_xml(root, item, rows)
    return Response(body, status_code=status, media_type="text/xml; charset=utf-8")


def _error(fmt: str, exc: Open311Error) -> Response:
    return _respond(fmt, "errors", "error", [{"code": exc.status, "description": exc.description}], exc.status)


async def _station(conn, jurisdiction_id: str | None) -> str:
    if not jurisdiction_id:
        raise Open311Error(400, "jurisdiction_id is required (the station code)")
    code = jurisdiction_id.strip().upper()
    if not await db.station_exists(conn, code):
        raise Open311Error(404, f"unknown jurisdiction_id {jurisdiction_id!r}")
    return code


def _services() -> list[dict]:
    return [
        {
            "service_code": code,
            "service_name": label,
            "description": SERVICE_DESCRIPTIONS[code],
            "metadata": False,
            "type": "realtime",
            "keywords": "",
            "group": "派出所",
        }
        for code, label in CATEGORY_LABELS.items()
    ]


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def _request_view(row: Any, station_name: str) -> dict:
    return {
        "service_request_id": row["tracking_no"],
        "status": "closed" if row["status"] in CLOSED else "open",
        "status_notes": STATUS_LABELS.get(row["status"], row["status"]),
        "service_name": CATEGORY_LABELS.get(row["category"]) if row["category"] else None,
        "service_code": row["category"],
        "agency_responsible": station_name,
        "requested_datetime": _iso(row["submitted_at"]),
        "updated_datetime": _iso(row["updated_at"]),
    }


@router.get("/services.{fmt}")
async def services(rt: RuntimeDep, fmt: str = FORMAT, jurisdiction_id: Jurisdiction = None) -> Response:
    try:
        async with rt.pool.acquire() as conn:
            await _station(conn, jurisdiction_id)
    except Open311Error as exc:
        return _error(fmt, exc)
    return _respond(fmt, "services", "service", _services())


@router.get("/services/{service_code}.{fmt}")
async def service_definition(
    rt: RuntimeDep, service_code: str, fmt: str = FORMAT, jurisdiction_id: Jurisdiction = None
) -> Response:
    try:
        async with rt.pool.acquire() as conn:
            await _station(conn, jurisdiction_id)
        if service_code not in CATEGORY_LABELS:
            raise Open311Error(404, f"unknown service_code {service_code!r}")
    except Open311Error as exc:
        return _error(fmt, exc)
    return _respond(fmt, "service_definition", "", {"service_code": service_code, "attributes": []})


@router.post("/requests.{fmt}")
async def create_request(
    request: Request, rt: RuntimeDep, cipher: CipherDep, index: IndexDep, fmt: str = FORMAT
) -> Response:
    form = await request.form(max_files=0, max_fields=50)
    field = {k: str(v).strip() for k, v in form.items()}
    try:
        async with rt.pool.acquire() as conn:
            principal = await authenticate(conn, field.get("api_key"))
            if principal is None or principal.role != "integration":
                raise Open311Error(403, "a valid api_key (an integration token) is required")
            station = await _station(conn, field.get("jurisdiction_id"))
        service_code = field.get("service_code", "")
        if service_code not in CATEGORY_LABELS:
            raise Open311Error(400, f"unknown service_code {service_code!r}")
        try:
            lat = float(field["lat"]) if field.get("lat") else None
            lon = float(field["long"]) if field.get("long") else None
            data = FeedbackSubmitted(
                station=station,
                channel="web",
                title=CATEGORY_LABELS[service_code],
                content=field.get("description", ""),
                location=Location(address=field.get("address_string", ""), lat=lat, lon=lon),
                reporter=Reporter(
                    name=" ".join(filter(None, [field.get("last_name"), field.get("first_name")])),
                    phone=field.get("phone", ""),
                    email=field.get("email", ""),
                ),
                external_ref=f"open311:{field['device_id']}" if field.get("device_id") else None,
            )
        except (ValidationError, ValueError) as exc:
            where = exc.errors()[0]["loc"] if isinstance(exc, ValidationError) else ("lat/long",)
            raise Open311Error(400, f"invalid {'.'.join(str(x) for x in where) or 'request'}") from None
        try:
            async with unit_of_work(rt.pool) as (conn, outbox):
                accepted = await accept_submission(conn, outbox, data, cipher=cipher, index=index)
        except UnknownStation as exc:  # deactivated by the bureau: takes nothing new
            raise Open311Error(400, f"jurisdiction_id {station!r} takes no new requests ({exc.code})") from None
    except Open311Error as exc:
        return _error(fmt, exc)
    rt.metrics.feedback_received.labels(station=station, channel="web").inc()
    return _respond(
        fmt,
        "service_requests",
        "request",
        [
            {
                "service_request_id": accepted.tracking_no,
                "service_notice": "您的反映已受理，我们会尽快处理。",
                "account_id": None,
            }
        ],
    )


async def _hidden_categories(conn, api_key: str | None) -> list[str] | None:
    """None (show everything) for a valid integration, bureau or admin key, else what anonymous
    readers may not see; a wrong key is refused rather than silently read as anonymous."""
    if not api_key:
        return HIDDEN_FROM_ANONYMOUS
    principal = await authenticate(conn, api_key)
    if principal is None or principal.role not in ("integration", "bureau", "admin"):
        raise Open311Error(403, "the api_key is not valid for reading")
    return None


@router.get("/requests.{fmt}", dependencies=[rate_limited("track")])
async def list_requests(
    rt: RuntimeDep,
    fmt: str = FORMAT,
    jurisdiction_id: Jurisdiction = None,
    service_request_id: str | None = None,
    service_code: str | None = None,
    status: str | None = None,
    api_key: str | None = None,
) -> Response:
    try:
        async with rt.pool.acquire() as conn:
            station = await _station(conn, jurisdiction_id)
            hidden = await _hidden_categories(conn, api_key)
            ids = [normalise_tracking_no(x)[:32] for x in (service_request_id or "").split(",") if x.strip()][:50]
            rows = await db.open311_requests(
                conn,
                station,
                ids or None,
                service_code.split(",")[:20] if service_code else None,
                hidden_categories=hidden,
            )
            station_name = await db.station_name(conn, station)
    except Open311Error as exc:
        return _error(fmt, exc)
    views = [_request_view(r, station_name) for r in rows]
    if status:
        views = [v for v in views if v["status"] in status.split(",")]
    return _respond(fmt, "service_requests", "request", views)


@router.get("/requests/{service_request_id}.{fmt}", dependencies=[rate_limited("track")])
async def get_request(
    rt: RuntimeDep,
    service_request_id: str,
    fmt: str = FORMAT,
    jurisdiction_id: Jurisdiction = None,
    api_key: str | None = None,
) -> Response:
    try:
        async with rt.pool.acquire() as conn:
            station = await _station(conn, jurisdiction_id)
            hidden = await _hidden_categories(conn, api_key)
            rows = await db.open311_requests(
                conn, station, [normalise_tracking_no(service_request_id)[:32]], None, hidden_categories=hidden
            )
            if not rows:
                raise Open311Error(404, "no such service request")
            station_name = await db.station_name(conn, station)
    except Open311Error as exc:
        return _error(fmt, exc)
    return _respond(fmt, "service_requests", "request", [_request_view(rows[0], station_name)])

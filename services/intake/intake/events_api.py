"""CloudEvents over HTTP (DESIGN 4.5): `POST /api/v1/events` for bureau systems without Kafka,
with the same validation as the ingress topic, and the published JSON Schema of what they send."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from fengqiao.events import CloudEvent, EventTypes, FeedbackSubmitted, PoisonMessage, parse_event
from fengqiao.http import OptionalPrincipal, api_error
from fengqiao.outbox import unit_of_work
from fengqiao.runtime import RuntimeDep
from intake import db
from intake.deps import CipherDep, IndexDep
from intake.submissions import AlreadyAccepted, UnknownStation, accept_submission

router = APIRouter(prefix="/api/v1", tags=["cloudevents"])

STRUCTURED = "application/cloudevents+json"
_BINARY_ATTRIBUTES = ("specversion", "id", "source", "type", "time", "subject", "stationid", "correlationid")


def _field_of(exc: PoisonMessage, prefix: str = "") -> str:
    head = exc.detail.split(":", 1)[0].strip()
    return f"{prefix}{head}" if head and " " not in head else prefix.rstrip(".") or "body"


def _decode(content_type: str, headers, raw: bytes) -> CloudEvent:
    if content_type.startswith(STRUCTURED):
        return parse_event(raw)
    if "ce-specversion" in headers:  # binary mode: attributes in ce-* headers, the body is `data`
        doc = {name: headers[f"ce-{name}"] for name in _BINARY_ATTRIBUTES if f"ce-{name}" in headers}
        try:
            doc["data"] = json.loads(raw or b"null")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PoisonMessage("bad_json", str(exc)[:200]) from exc
        doc["datacontenttype"] = "application/json"
        return parse_event(json.dumps(doc).encode())
    raise api_error(
        415,
        "unsupported_media_type",
        f"请使用 CloudEvents 结构化模式（Content-Type: {STRUCTURED}）或二进制模式（ce-* 请求头）。",
        field="Content-Type",
    )


@router.post("/events", status_code=202)
async def receive_cloudevent(
    request: Request, rt: RuntimeDep, principal: OptionalPrincipal, cipher: CipherDep, index: IndexDep
) -> JSONResponse:
    if principal is None:
        raise api_error(401, "token_required", "需要系统对接令牌。")
    if principal.role != "integration":
        raise api_error(403, "integration_token_required", "此接口只接受系统对接令牌。")
    raw = await request.body()
    try:
        event = _decode(request.headers.get("content-type", ""), request.headers, raw)
    except PoisonMessage as exc:
        raise api_error(
            400 if exc.reason == "bad_json" else 422, exc.reason, exc.detail or exc.reason, field=_field_of(exc)
        ) from None
    if event.type != EventTypes.FEEDBACK_SUBMITTED:
        raise api_error(422, "unsupported_type", f"只接受 {EventTypes.FEEDBACK_SUBMITTED} 类型的事件。", field="type")
    try:
        data = event.payload(FeedbackSubmitted)
    except PoisonMessage as exc:
        raise api_error(422, exc.reason, exc.detail, field=_field_of(exc, "data.")) from None

    async with unit_of_work(rt.pool) as (conn, outbox):
        try:
            accepted = await accept_submission(
                conn,
                outbox,
                data,
                cipher=cipher,
                index=index,
                ingress_source=event.source,
                ingress_id=event.id,
                correlation_id=event.correlationid,
                publish_refs=True,
            )
        except AlreadyAccepted:
            existing = await db.find_by_ingress(conn, event.source, event.id)
            return JSONResponse({"tracking_no": existing, "status": "duplicate"}, status_code=200)
        except UnknownStation as exc:
            raise api_error(422, exc.code, exc.message, field="data.station") from None
    rt.metrics.feedback_received.labels(station=accepted.station, channel=accepted.channel).inc()
    return JSONResponse(
        {"tracking_no": accepted.tracking_no, "access_code": accepted.access_code, "status": "received"},
        status_code=202,
    )


@router.get("/schemas/fengqiao.feedback.submitted.json")
async def feedback_submitted_schema() -> dict:
    """JSON Schema of the `data` of a `fengqiao.feedback.submitted` event (topic and HTTP)."""
    schema = FeedbackSubmitted.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = EventTypes.FEEDBACK_SUBMITTED
    return schema


@router.get("/schemas/cloudevent.json")
async def envelope_schema() -> dict:
    """JSON Schema of the CloudEvents envelope Fengqiao accepts."""
    schema = CloudEvent.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema

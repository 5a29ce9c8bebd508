"""POST /api/v1/events: CloudEvents over HTTP for bureau systems without Kafka."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from tests.e2e.helpers import token, wait_for_status

pytestmark = pytest.mark.e2e

STRUCTURED = {"content-type": "application/cloudevents+json"}


def event(**data_overrides) -> dict:
    data = {
        "station": "KZ01",
        "channel": "transfer_12345",
        "content": "12345 转来：矿工新村垃圾清运不及时",
        "external_ref": f"12345-{uuid.uuid4().hex[:8]}",
    } | data_overrides
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/bureau/12345-hotline",
        "type": "fengqiao.feedback.submitted",
        "time": "2026-11-28T10:00:00+08:00",
        "datacontenttype": "application/json",
        "data": data,
    }


def post(stack, body, headers: dict, who: str = "integration") -> httpx.Response:
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body, ensure_ascii=False)
    return httpx.post(
        f"{stack['urls']['intake']}/api/v1/events",
        content=raw,
        headers={**headers, **(token(stack, who) if who else {})},
    )


def test_structured_event_is_accepted_once_and_flows_on(stack):
    e = event()
    first = post(stack, e, STRUCTURED)
    assert first.status_code == 202, first.text
    receipt = first.json()
    again = post(stack, e, STRUCTURED)  # the system retries: same (source, id)
    assert again.status_code == 200 and again.json() == {"tracking_no": receipt["tracking_no"], "status": "duplicate"}
    body = wait_for_status(
        f"{stack['urls']['intake']}/api/v1/feedback/{receipt['tracking_no']}",
        {"X-Access-Code": receipt["access_code"]},
        "assigned",
        timeout=10,
    )
    assert body["station"] == "KZ01"


def test_binary_mode_is_accepted(stack):
    e = event()
    headers = {
        "content-type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": e["id"],
        "ce-source": e["source"],
        "ce-type": e["type"],
        "ce-time": e["time"],
    }
    r = post(stack, e["data"], headers)
    assert r.status_code == 202, r.text


@pytest.mark.parametrize(
    "mutate, status, field",
    [
        (lambda e: e["data"].update(content=""), 422, "data.content"),
        (lambda e: e["data"].update(station="ZZ99"), 422, "data.station"),
        (lambda e: e["data"].update(reporter={"phone": "12"}), 422, "data.reporter.phone"),
        (lambda e: e.pop("source"), 422, "source"),
        (lambda e: e.update(time="not a time"), 422, "time"),
        (lambda e: e.update(type="com.example.other"), 422, "type"),
    ],
)
def test_invalid_events_get_an_error_naming_the_field(stack, mutate, status, field):
    e = event()
    mutate(e)
    r = post(stack, e, STRUCTURED)
    assert r.status_code == status, r.text
    assert r.json()["detail"]["field"] == field


def test_bad_json_wrong_media_type_and_wrong_tokens(stack):
    assert post(stack, b"{nope", STRUCTURED).status_code == 400
    r = post(stack, event(), {"content-type": "text/plain"})
    assert r.status_code == 415 and r.json()["detail"]["field"] == "Content-Type"
    assert post(stack, event(), STRUCTURED, who="").status_code == 401
    assert post(stack, event(), STRUCTURED, who="KZ01-P1").status_code == 403


def test_the_json_schema_is_published(stack):
    schema = httpx.get(f"{stack['urls']['intake']}/api/v1/schemas/fengqiao.feedback.submitted.json").json()
    assert schema["title"] == "fengqiao.feedback.submitted"
    assert schema["properties"]["content"]["maxLength"] == 5000 and "station" in schema["required"]
    envelope = httpx.get(f"{stack['urls']['intake']}/api/v1/schemas/cloudevent.json").json()
    assert set(envelope["required"]) >= {"specversion", "id", "source", "type", "time", "data"}

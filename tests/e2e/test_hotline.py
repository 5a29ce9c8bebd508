"""The hotline channel: CTI call records in, idempotent by call id, repeated callers linked."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx
import pytest

from tests.e2e.helpers import staff_get, token, wait_for_status

pytestmark = pytest.mark.e2e


def call(**overrides) -> dict:
    return {
        "call_id": f"CTI-{uuid.uuid4().hex[:10]}",
        "station": "KZ02",
        "caller_number": "139 0000 2222",
        "line": "96110-3",
        "operator": "OP-017",
        "started_at": "2026-11-28T21:05:00+08:00",
        "ended_at": "2026-11-28T21:09:30+08:00",
        "summary": "来电反映新华街夜市摊贩占道，噪音很大",
        "recording_url": "https://cti.example.cn/rec/1.wav",
    } | overrides


def post(stack, body: dict, who: str = "integration") -> httpx.Response:
    return httpx.post(
        f"{stack['urls']['intake']}/api/v1/hotline/calls", json=body, headers=token(stack, who) if who else {}
    )


def test_a_call_becomes_a_submission_once_and_a_repeat_call_joins_the_open_item(stack, infra):
    first_call = call()
    first = post(stack, first_call)
    assert first.status_code == 202, first.text
    receipt = first.json()
    assert receipt["earlier_calls"] == []
    retried = post(stack, first_call)  # the CTI retries the same call record
    assert retried.status_code == 200 and retried.json()["tracking_no"] == receipt["tracking_no"]

    # An officer joins a call only to an item he may open: once triage has said whom it names.
    seen = staff_get(f"{stack['urls']['intake']}/api/v1/feedback/{receipt['tracking_no']}", token(stack, "KZ02-P1"))
    assert seen.status_code == 200, seen.text
    second = post(
        stack, call(caller_number="+86 13900002222", summary="又打来：夜市占道问题还没解决"), who="KZ02-P1"
    )  # an officer taking the call, the number written differently
    assert second.status_code == 202, second.text
    # the first item is still open: the call is added to it (issue 13), not a new item
    assert second.json()["added_to"] == receipt["tracking_no"] == second.json()["tracking_no"]

    body = wait_for_status(
        f"{stack['urls']['intake']}/api/v1/feedback/{receipt['tracking_no']}",
        {"X-Access-Code": receipt["access_code"]},
        "assigned",
        timeout=10,
    )
    assert body["station"] == "KZ02"

    async def stored():
        conn = await asyncpg.connect(infra.dsn)
        try:
            calls = await conn.fetch(
                "SELECT * FROM intake.hotline_calls WHERE tracking_no = any($1::text[])",
                [receipt["tracking_no"], second.json()["tracking_no"]],
            )
            channel = await conn.fetchval(
                "SELECT channel FROM intake.submissions WHERE tracking_no = $1", receipt["tracking_no"]
            )
            return calls, channel
        finally:
            await conn.close()

    calls, channel = asyncio.run(stored())
    assert channel == "hotline" and len(calls) == 2
    assert all("13900002222" not in str(dict(c)) for c in calls)  # only the blind index is stored
    assert calls[0]["caller_index"] == calls[1]["caller_index"]


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"caller_number": "123"}, "caller_number"),
        ({"summary": ""}, "summary"),
        ({"started_at": "yesterday"}, "started_at"),
        ({"ended_at": "2026-11-28T20:00:00+08:00"}, "body"),
        ({"recording_url": "not a url"}, "recording_url"),
    ],
)
def test_bad_call_records_get_an_error_naming_the_field(stack, overrides, field):
    r = post(stack, call(**overrides))
    assert r.status_code == 422 and r.json()["detail"]["field"] == field


def test_the_hotline_needs_a_token_of_the_right_station(stack):
    assert post(stack, call(), who="").status_code == 401
    assert post(stack, call(), who="KZ01-P1").status_code == 403
    assert post(stack, call(station="ZZ99")).status_code == 422

"""Tenancy, walked route by route (issue 11): station KZ01's staff against station KZ02's items.

Every HTTP route of the four services (read from the app objects, tests/hostile/helpers.py) gets
a test. Each route must have a rule in RULES: a route that takes a station-owned id is called by a
KZ01 leader and a KZ01 officer with a real KZ02 id and must answer 404 (not 403, not 2xx); a route
that lists must list nothing of KZ02; a route that files for a station must refuse KZ02; the rest
are excluded with a reason. A route without a rule fails: a new route is walked, not skipped."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.e2e.helpers import sql
from tests.hostile.helpers import Route, all_routes, staff, submit, wait_for_case

SOON = (datetime.now(UTC) + timedelta(days=3)).isoformat()
AGREEMENT = {
    "facts": "邻里噪音",
    "dispute": "装修时间",
    "terms": ["晚八点后不施工"],
    "performance": {"how": "自觉履行", "where": "新村", "when": "即日起"},
    "signatures": [{"party_id": 1, "signed_at": SOON}, {"party_id": 2, "signed_at": SOON}],
    "signed_at": SOON,
}

# label -> (kind, path values, body). kind: "id" (404 expected), "list" (nothing of KZ02),
# "file" (filing for KZ02 refused), "deployment" (station staff refused with 403), or
# "excluded: <reason>".
CASE = "/api/v1/cases/{tracking_no}"
MED = CASE + "/mediation"
RECT = "/api/v1/rectifications"
ROSTER = "/api/v1/stations/{station}/roster"
CASE_COMMAND_BODIES = {
    "accept": {},
    "note": {"text": "越权备注"},
    "request_info": {"text": "越权"},
    "resume_clock": {},
    "start_mediation": {},
    "resolve": {"summary": "越权"},
    "return": {"reason": "越权"},
    "review_return": {"approve": False},
    "reassign": {"assignee_id": "KZ01-P1"},
    "transfer": {"to_station": "KZ01"},
    "escalate": {},
    "visit": {"result": "satisfied"},
    "close": {},
    "reopen": {},
    "merge": {"into": "{own_tracking_no}"},
    "void": {"ground": "spam", "reason": "越权作废"},
}
RULES: dict[str, tuple] = {
    # intake
    "intake POST /api/v1/feedback": ("file", {}, {"station": "KZ02", "channel": "walk_in", "content": "来访登记"}),
    "intake GET /api/v1/feedback/{tracking_no}": ("id", {}, None),
    "intake POST /api/v1/hotline/calls": (
        "file",
        {},
        {
            "call_id": "tenancy-1",
            "station": "KZ02",
            "caller_number": "13900003333",
            "content": "来电",
            "started_at": SOON,
            "summary": "来电",
        },
    ),
    "intake POST /api/v1/mailbox/items": (
        "file",
        {},
        {"station": "KZ02", "kind": "letter", "content": "来信", "opened_at": SOON, "opened_by": "KZ01-P2"},
    ),
    "intake GET /api/v1/mailbox/items/{tracking_no}/scan": ("id", {}, None),
    "intake POST /api/v1/feedback/{tracking_no}/reveal": ("id", {}, {"reason": "越权"}),
    "intake GET /api/v1/disclosures": ("list", {}, None),
    "intake POST /api/v1/events": (
        "excluded: CloudEvents over HTTP take an integration token (other bureau systems), not station staff",
    ),
    "intake GET /api/v1/schemas/fengqiao.feedback.submitted.json": ("excluded: a public schema document",),
    "intake GET /api/v1/schemas/cloudevent.json": ("excluded: a public schema document",),
    **{
        f"intake {m} /open311/v2/{p}": (
            "excluded: Open311 GeoReport, public by its standard (api_key = integration "
            "token); what anonymous reads may show is finding 4's test",
        )
        for m, p in (
            ("GET", "services.{fmt}"),
            ("GET", "services/{service_code}.{fmt}"),
            ("POST", "requests.{fmt}"),
            ("GET", "requests.{fmt}"),
            ("GET", "requests/{service_request_id}.{fmt}"),
        )
    },
    **{
        f"intake {m} {p}": ("excluded: the citizen's web pages (form, tracking, survey), no staff token",)
        for m in ("GET", "POST")
        for p in ("/", "/track", "/survey")
    },
    "intake POST /track/add": (
        "excluded: the citizen's answer on the tracking page: opened by the item's access code, no staff token",
    ),
    **{
        f"{s} GET {p}": ("excluded: operations endpoints (health, readiness, metrics), no station data",)
        for s in ("intake", "mediation", "triage", "notify")
        for p in ("/healthz", "/readyz", "/metrics")
    },
    **{
        f"mediation {m} {p}": (
            "excluded: signing in and the signed-in person's own pages (cookie session, no bearer token); "
            "the queue lists only the person's own cases under row-level security: tests/e2e/test_sign_in.py",
        )
        for m, p in (
            ("GET", "/login"),
            ("POST", "/login"),
            ("GET", "/login/oidc"),
            ("GET", "/login/oidc/callback"),
            ("POST", "/logout"),
            ("GET", "/console/"),
            ("GET", "/console/password"),
            ("POST", "/console/password"),
        )
    },
    **{
        f"mediation {m} {p}": (
            "excluded: console pages (cookie session, no bearer token); another station's mediation record, "
            "printed agreement and measure are 404 in tests/e2e/test_console_mediation.py and "
            "tests/e2e/test_console_rectification.py, read through row-level security like the API",
        )
        for m, p in (
            ("GET", "/console/cases/{tracking_no}/mediation"),
            ("GET", "/console/cases/{tracking_no}/mediation/agreement"),
            *(
                ("POST", f"/console/cases/{{tracking_no}}/mediation/{tail}")
                for tail in (
                    "open",
                    "mediator",
                    "parties",
                    "sessions",
                    "sessions/{session_id}/minutes",
                    "agreement",
                    "outcome",
                    "followups/{followup_id}",
                    "reveal",
                    "agreement/full",
                )
            ),
            ("GET", "/console/rectification"),
            ("POST", "/console/rectification"),
            ("GET", "/console/rectification/{measure_id}"),
            *(
                ("POST", f"/console/rectification/{{measure_id}}/{tail}")
                for tail in ("items", "progress", "complete", "verify")
            ),
        )
    },
    "mediation GET /console/static/{name}": ("excluded: the console's own scripts and stylesheet, no station data",),
    **{
        f"mediation {m} {p}": (
            "excluded: console pages (cookie session, no bearer token); the station queue and its bulk actions "
            "read and act through row-level security like the API (another station's case is refused per case: "
            "tests/e2e/test_console_queue.py); replies are kept per station (tests/e2e/test_console_replies.py)",
        )
        for m, p in (
            ("GET", "/console/station"),
            ("POST", "/console/station/bulk"),
            ("GET", "/console/replies"),
            ("POST", "/console/replies"),
            ("POST", "/console/replies/{reply_id}/delete"),
            ("GET", "/console/replies/fill"),
        )
    },
    **{
        f"mediation {m} /console/cases/{{tracking_no}}{p}": (
            "excluded: a console page (cookie session, no bearer token); another station's case is 404 in "
            "tests/e2e/test_console_case.py",
        )
        for m, p in (
            ("GET", ""),
            ("POST", "/act/{command}"),
            ("POST", "/classification"),
            ("POST", "/reveal"),
            ("POST", "/rectification"),
            ("GET", "/changes"),
            ("GET", "/print"),
            ("POST", "/print"),
            ("GET", "/visit-record"),
            ("GET", "/scan"),
        )
    },
    **{
        f"mediation {m} {p}": (
            "excluded: the console's reception and inbox pages (cookie session): they file only for the "
            "person's own station and read only their own notices, through intake's and notify's APIs "
            "with the session's token: tests/e2e/test_console_reception.py",
        )
        for m, p in (
            ("GET", "/console/reception"),
            ("POST", "/console/reception"),
            ("GET", "/console/inbox"),
            ("GET", "/console/inbox/list"),
            ("GET", "/console/inbox/badge"),
            ("POST", "/console/inbox/read"),
        )
    },
    # mediation: cases
    "mediation GET /api/v1/cases": ("list", {}, None),
    f"mediation GET {CASE}": ("id", {}, None),
    # one route per case command (each with a body it accepts, so the refusal is about the case)
    **{f"mediation POST {CASE}/{name}": ("id", {}, body) for name, body in CASE_COMMAND_BODIES.items()},
    f"mediation POST {CASE}/commands": ("id", {}, {"command": "note", "text": "越权备注"}),
    f"mediation POST {CASE}/{{command}}": ("id", {"command": "fly"}, None),  # unknown commands: 404 for all
    f"mediation POST {CASE}/clocks/{{clock}}/extend": ("id", {"clock": "accept"}, {"due_at": SOON, "reason": "越权"}),
    f"mediation PUT {CASE}/classification": ("id", {}, {"category": "other", "reason": "越权"}),
    "mediation GET /api/v1/audit": ("list", {}, None),
    f"mediation GET {CASE}/exclusions": ("id", {}, None),
    f"mediation POST {CASE}/exclusions": ("id", {}, {"staff_id": "KZ01-P2", "reason": "越权"}),
    f"mediation POST {CASE}/exclusions/{{staff_id}}/lift": ("id", {}, {"reason": "越权"}),
    "mediation GET /api/v1/stations/{station}/rates": ("id", {}, None),
    # mediation: directory administration (issue 15)
    "mediation GET /api/v1/stations": ("list", {}, None),
    "mediation POST /api/v1/stations": ("deployment", {}, {"code": "KZ09", "name": "越权"}),
    "mediation GET /api/v1/stations/{station}": ("id", {}, None),
    "mediation PATCH /api/v1/stations/{station}": ("id", {}, {"name": "越权"}),
    "mediation POST /api/v1/stations/{station}/deactivate": ("id", {}, None),
    "mediation POST /api/v1/stations/{station}/reactivate": ("id", {}, None),
    "mediation GET /api/v1/stations/{station}/staff": ("id", {}, None),
    "mediation POST /api/v1/stations/{station}/staff": ("id", {}, {"name": "越权", "role": "officer"}),
    "mediation GET /api/v1/staff/{staff_id}": ("id", {}, None),
    "mediation PATCH /api/v1/staff/{staff_id}": ("id", {}, {"name": "越权"}),
    "mediation POST /api/v1/staff/{staff_id}/deactivate": ("id", {}, None),
    "mediation POST /api/v1/staff/{staff_id}/transfer": ("id", {}, {"to_station": "KZ01"}),
    "mediation POST /api/v1/staff/{staff_id}/password": ("id", {}, None),
    "mediation GET /api/v1/directory/audit": ("list", {}, None),
    # mediation: duty rosters (another station's, or its exception ids: tests/e2e/test_rosters.py)
    f"mediation GET {ROSTER}": ("id", {}, None),
    f"mediation PUT {ROSTER}/weekly": (
        "id",
        {},
        {"shifts": [{"weekday": d, "staff": "KZ01-P1", "start": "08:00", "end": "20:00"} for d in range(1, 8)]},
    ),
    f"mediation PUT {ROSTER}/holiday": ("id", {}, {"shifts": []}),
    f"mediation GET {ROSTER}/exceptions": ("id", {}, None),
    f"mediation POST {ROSTER}/exceptions": (
        "id",
        {},
        {"kind": "leave", "staff": "KZ02-P1", "from": SOON[:10], "to": SOON[:10]},
    ),
    f"mediation DELETE {ROSTER}/exceptions/{{exception_id}}": ("id", {"exception_id": 1}, None),
    f"mediation GET {ROSTER}/days": ("id", {}, None),
    # mediation: records
    f"mediation POST {MED}": ("id", {}, {"mediator_id": "KZ01-MD"}),
    f"mediation PUT {MED}/mediator": ("id", {}, {"mediator_id": "KZ01-IN", "reason": "越权"}),
    f"mediation GET {MED}": ("id", {}, None),
    f"mediation POST {MED}/parties": ("id", {}, {"role": "applicant", "name": "张三"}),
    f"mediation POST {MED}/sessions": ("id", {}, {"scheduled_at": SOON, "place": "调解室"}),
    f"mediation POST {MED}/sessions/{{session_id}}/minutes": ("id", {}, {"minutes": "越权", "held_at": SOON}),
    f"mediation PUT {MED}/agreement": ("id", {}, AGREEMENT),
    f"mediation POST {MED}/outcome": ("id", {}, {"outcome": "withdrawn"}),
    f"mediation POST {MED}/followups/{{followup_id}}": ("id", {}, {"result": "越权"}),
    f"mediation GET {MED}/agreement.html": ("id", {}, None),
    # mediation: rectification
    # linking another station's item: refused as an item of one's own station that does not exist
    f"mediation POST {RECT}": (
        "file_unknown_items",
        {},
        {
            "title": "越权",
            "description": "越权",
            "owner_id": "KZ01-P1",
            "due_at": SOON,
            "tracking_nos": ["{tracking_no}"],
        },
    ),
    f"mediation GET {RECT}": ("list", {}, None),
    f"mediation GET {RECT}/unaddressed": ("list", {}, None),
    f"mediation GET {RECT}/{{measure_id}}": ("id", {}, None),
    f"mediation POST {RECT}/{{measure_id}}/items": ("id", {}, {"tracking_nos": ["{own_tracking_no}"]}),
    f"mediation POST {RECT}/{{measure_id}}/progress": ("id", {}, {"note": "越权"}),
    f"mediation POST {RECT}/{{measure_id}}/complete": ("id", {}, {"evidence": "越权"}),
    f"mediation POST {RECT}/{{measure_id}}/verify": ("id", {}, {"note": "越权"}),
    # triage
    "triage GET /api/v1/triage/decisions/{tracking_no}": ("id", {}, None),
    "triage GET /api/v1/triage/alerts": ("list", {}, None),
    "triage GET /api/v1/triage/rules": ("list", {}, None),
    "triage POST /api/v1/triage/rules": ("excluded: creates a rule of the caller's own station; takes no id",),
    "triage DELETE /api/v1/triage/rules/{rule_id}": ("id", {}, None),
    "triage GET /api/v1/triage/models": ("list", {}, None),
    # notify
    "notify GET /api/v1/inbox": ("list", {}, None),
    "notify POST /api/v1/inbox/read": ("excluded: marks the caller's own notifications; takes ids only in a body",),
    "notify GET /api/v1/deliveries": ("list", {}, None),
    "notify POST /api/v1/deliveries/{delivery_id}/resend": ("id", {}, None),
    "notify POST /api/v1/deliveries/{delivery_id}/dismiss": ("id", {}, None),
    "notify GET /api/v1/templates": ("list", {}, None),
    "notify GET /api/v1/templates/preview": ("id", {}, None),
    "notify PUT /api/v1/staff/{staff_id}/contact": ("id", {}, {"phone": "13900004444"}),
    "notify DELETE /api/v1/staff/{staff_id}/contact": ("id", {}, None),
    "notify POST /api/v1/webhooks": (
        "deployment",
        {},
        {"name": "x", "url": "http://127.0.0.1:9/x", "event_types": ["fengqiao.case.*"], "stations": ["KZ02"]},
    ),
    "notify GET /api/v1/webhooks": ("deployment", {}, None),
    "notify DELETE /api/v1/webhooks/{sub_id}": ("deployment", {}, None),
}
# Routes for the station's leadership only: an officer is refused for the role (403) before any id is
# looked at, which tells nothing about another station; the leader must get the 404.
LEADERSHIP_ONLY = {
    "triage DELETE /api/v1/triage/rules/{rule_id}",
    "notify POST /api/v1/deliveries/{delivery_id}/resend",
    "notify POST /api/v1/deliveries/{delivery_id}/dismiss",
    "notify GET /api/v1/templates/preview",
    "mediation POST /api/v1/rectifications",
    "mediation GET /api/v1/cases/{tracking_no}/exclusions",
}
QUERIES = {
    "notify GET /api/v1/templates/preview": {"station": "KZ02", "name": "received"},
}
LIST_QUERIES = {
    "triage GET /api/v1/triage/alerts": {"station": "KZ02"},
    "triage GET /api/v1/triage/rules": {"station": "KZ02"},
    "mediation GET /api/v1/audit": {"tracking_no": "{tracking_no}"},
    "mediation GET /api/v1/directory/audit": {"station": "KZ02"},
    "intake GET /api/v1/disclosures": {"tracking_no": "{tracking_no}"},
}


@pytest.fixture(scope="module")
def kz02(stack, infra) -> dict:
    """Real items of KZ02, one of each kind a route takes an id of (and one KZ01 item)."""
    leader = staff(stack, "KZ02", "LD")
    receipt = submit(
        stack, "KZ02", "新华街两家邻居因装修噪音吵架，要求调解", reporter={"name": "赵六", "phone": "13900005555"}
    )
    no = receipt["tracking_no"]
    case = wait_for_case(stack, no, leader)
    mediation = stack["urls"]["mediation"]
    holder = staff(stack, "KZ02", case["assignee_id"].split("-", 1)[1])
    r = httpx.post(f"{mediation}/api/v1/cases/{no}/accept", json={}, headers=holder, timeout=10)
    assert r.status_code == 200, r.text
    r = httpx.post(
        f"{mediation}/api/v1/cases/{no}/mediation", json={"mediator_id": "KZ02-MD"}, headers=leader, timeout=10
    )
    assert r.status_code == 201, r.text
    r = httpx.post(
        f"{mediation}/api/v1/cases/{no}/mediation/sessions",
        json={"scheduled_at": SOON, "place": "调解室"},
        headers=leader,
        timeout=10,
    )
    assert r.status_code == 201, r.text
    session_id = r.json()["session_id"]
    r = httpx.post(
        f"{mediation}/api/v1/rectifications",
        headers=leader,
        timeout=10,
        json={
            "title": "夜间施工整改",
            "description": "加强巡查",
            "owner_id": "KZ02-P1",
            "due_at": SOON,
            "tracking_nos": [no],
        },
    )
    assert r.status_code == 201, r.text
    measure_id = r.json()["measure_id"]
    r = httpx.post(
        f"{stack['urls']['triage']}/api/v1/triage/rules",
        headers=leader,
        timeout=10,
        json={"field": "category", "value": "noise", "pattern": "广场舞音响"},
    )
    assert r.status_code == 201, r.text
    rule_id = r.json().get("rule_id") or r.json().get("id")
    delivery = sql(infra.dsn, "SELECT id FROM notify.deliveries WHERE station = 'KZ02' ORDER BY id DESC LIMIT 1")
    own = submit(stack, "KZ01", "矿山路垃圾无人清运")
    return {
        "tracking_no": no,
        "session_id": session_id,
        "followup_id": 1,
        "measure_id": measure_id,
        "rule_id": rule_id,
        "delivery_id": delivery[0]["id"] if delivery else 2**31,
        "staff_id": "KZ02-P1",
        "station": "KZ02",
        "own_tracking_no": own["tracking_no"],
    }


def _fill(template, values: dict):
    text = json.dumps(template, ensure_ascii=False)
    for k, v in values.items():
        text = text.replace("{" + k + "}", str(v))
    return json.loads(text)


@pytest.mark.parametrize("route", [pytest.param(r, id=r.label) for r in all_routes()])
def test_station_a_cannot_reach_station_b(stack, kz02, route: Route):
    rule = RULES.get(route.label)
    assert rule is not None, (
        f"{route.label} has no tenancy rule: add one to RULES (an id of another station -> 404, "
        f"a list -> nothing of another station, or an exclusion with its reason)"
    )
    kind = rule[0]
    if kind.startswith("excluded:"):
        return
    _, path_values, body = rule
    path = _fill(route.path, {**kz02, **path_values})
    body = _fill(body, kz02) if body is not None else None
    url = stack["urls"][route.service] + path
    b_markers = [kz02["tracking_no"], "KZ02"]
    for who in ("LD", "P2"):
        headers = staff(stack, "KZ01", who)
        if kind == "list":
            query = _fill(LIST_QUERIES.get(route.label, {}), kz02)
            r = httpx.request(route.method, url, params=query, headers=headers, timeout=10)
            assert r.status_code in (200, 403, 404), f"{route.label} as KZ01-{who}: {r.status_code} {r.text[:300]}"
            leaked = [m for m in b_markers if m in r.text]
            assert not leaked, f"{route.label} as KZ01-{who} lists KZ02's data ({leaked}): {r.text[:500]}"
            continue
        r = httpx.request(
            route.method, url, params=_fill(QUERIES.get(route.label, {}), kz02), json=body, headers=headers, timeout=10
        )
        expected = {"id": {404}, "file": {403, 404}, "file_unknown_items": {404, 422}, "deployment": {403}}[kind]
        if who != "LD" and route.label in LEADERSHIP_ONLY:
            expected = {403, 404}
        if kind == "file_unknown_items" and r.status_code == 422:
            assert r.json()["detail"]["error"] == "unknown_items", r.text
        assert r.status_code in expected, (
            f"{route.label} as KZ01-{who} with KZ02's {path}: {r.status_code}, "
            f"expected {sorted(expected)}: {r.text[:300]}"
        )

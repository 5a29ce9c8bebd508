"""What every service does before a route runs: refuse oversized bodies before reading them, and
send the security headers with every answer (security review finding 10 and the header finding)."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

pytestmark = pytest.mark.e2e

# A route of each service that takes a body, called without a token: the size is refused before auth.
BODY_ROUTES = {
    "intake": "/api/v1/feedback",
    "mediation": "/api/v1/cases/FQ00000000/accept",
    "triage": "/api/v1/triage/rules",
    "notify": "/api/v1/webhooks",
}


def raw_request(url: str, head: str, body: bytes = b"", timeout: float = 5.0) -> bytes:
    """Send a request by hand and return what the server answered (status line and headers)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as conn:
        conn.sendall(head.encode() + body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = conn.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer


@pytest.mark.parametrize("service", sorted(BODY_ROUTES))
def test_a_declared_oversized_body_is_refused_at_once_without_being_sent(stack, service):
    url = stack["urls"][service]
    # 50 MB announced, nothing sent: the answer must come now, not after the server waited for the body.
    answer = raw_request(
        url,
        f"POST {BODY_ROUTES[service]} HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
        f"content-length: {50 * 1024 * 1024}\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_a_chunked_body_is_cut_off_at_the_route_limit(stack):
    url = stack["urls"]["intake"]
    chunk = b"x" * 16384
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(8)) + b"0\r\n\r\n"  # 128 KiB > 64 KiB
    answer = raw_request(
        url,
        "POST /api/v1/feedback HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
        "transfer-encoding: chunked\r\n\r\n",
        body,
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_a_body_within_the_limit_still_goes_through(stack):
    r = httpx.post(
        f"{stack['urls']['intake']}/api/v1/feedback", json={"station": "KZ01", "content": "路灯坏了" * 2000}
    )  # 8,000 characters: too long, not too large
    assert r.status_code == 422 and r.json()["detail"]["field"] == "content"


@pytest.mark.parametrize(
    "service,path",
    [
        ("intake", "/"),
        ("intake", "/track"),
        ("intake", "/api/v1/feedback/FQ1"),
        ("mediation", "/api/v1/cases"),
        ("triage", "/readyz"),
        ("notify", "/api/v1/inbox"),
    ],
)
def test_every_answer_carries_the_security_headers(stack, service, path):
    r = httpx.get(f"{stack['urls'][service]}{path}")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"  # receipts, tracking results, agreement pages


def test_a_nul_in_a_path_query_or_body_is_refused_not_a_server_error(stack):
    intake = stack["urls"]["intake"]
    assert httpx.get(f"{intake}/api/v1/feedback/FQ%00X").status_code == 422
    assert (
        httpx.get(
            f"{stack['urls']['mediation']}/api/v1/cases",
            params={"limit": "1\x00"},
            headers={"Authorization": "Bearer x"},
        ).status_code
        == 422
    )
    r = httpx.post(f"{intake}/api/v1/feedback", json={"station": "KZ01", "content": "路灯\u0000坏了"})
    assert r.status_code == 422 and r.json()["detail"]["field"] == "content"
    # Where no contract stands before the database (a staff member's note), PostgreSQL's refusal is a 422.
    receipt = httpx.post(
        f"{intake}/api/v1/feedback", json={"station": "KZ02", "content": "新华街路口红绿灯不亮"}
    ).json()
    leader = {"Authorization": f"Bearer {stack['credentials']['KZ02-LD']['token']}"}
    case = f"{stack['urls']['mediation']}/api/v1/cases/{receipt['tracking_no']}"
    for _ in range(100):
        if (found := httpx.get(case, headers=leader)).status_code == 200 and found.json()["assignee_id"]:
            break
        time.sleep(0.1)
    holder = {"Authorization": f"Bearer {stack['credentials'][found.json()['assignee_id']]['token']}"}
    assert httpx.post(f"{case}/accept", json={}, headers=holder).status_code == 200
    r = httpx.post(f"{case}/note", json={"text": "已联系\u0000交警"}, headers=holder)
    assert r.status_code == 422 and r.json()["detail"]["error"] == "invalid_characters", r.text


def test_framework_errors_have_the_same_shape_as_every_other(stack):
    r = httpx.post(
        f"{stack['urls']['intake']}/api/v1/mailbox/items",
        content=b"\xff{not json",
        headers={"content-type": "application/json", "Authorization": "Bearer fq_x"},
    )
    assert r.status_code in (400, 401, 422) and isinstance(r.json()["detail"], dict)
    r = httpx.get(f"{stack['urls']['triage']}/no/such/path")
    assert r.status_code == 404 and r.json()["detail"]["error"] == "not_found"

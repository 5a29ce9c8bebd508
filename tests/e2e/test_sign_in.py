"""People sign in to the console (issue 15, DESIGN 4.8) and tokens that stop working: through
the running services, with real cookies, CSRF tokens and the `fengqiao token` commands."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.helpers import sql, token

FENGQIAO = str(Path(sys.executable).parent / "fengqiao")


def login_form(client: httpx.Client) -> str:
    """Open the sign-in page; returns the form's CSRF token (its twin is in the cookie)."""
    r = client.get("/login")
    assert r.status_code == 200
    assert 'name="username"' in r.text and 'name="password"' in r.text
    found = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
    assert found
    return found.group(1)


def sign_in(client: httpx.Client, username: str, password: str, **extra: str) -> httpx.Response:
    csrf = login_form(client)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": csrf, **extra})


def choose_password(client: httpx.Client, current: str, new: str) -> httpx.Response:
    """Set a new password on the password page of a signed-in client."""
    form = client.get("/console/password")
    return client.post(
        "/console/password",
        data={
            "csrf_token": page_csrf(form.text),
            "current_password": current,
            "new_password": new,
            "confirm_password": new,
        },
    )


def page_csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


@pytest.fixture
def console(stack):
    with httpx.Client(base_url=stack["urls"]["mediation"], timeout=10) as client:
        yield client


def test_an_officer_signs_in_sees_their_queue_and_signs_out(stack, console):
    me = stack["credentials"]["KZ01-P2"]
    assert me["username"] == "kz01-p2" and me["password"]

    r = console.get("/console/")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/console/"

    r = sign_in(console, me["username"], me["password"])
    assert r.status_code == 303 and r.headers["location"] == "/console/"
    cookie = r.headers["set-cookie"]
    assert "fq_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")

    r = console.get("/console/")
    assert r.status_code == 200, r.text
    assert "刘洋" in r.text and "我的待办" in r.text
    assert r.headers["cache-control"] == "no-store"

    r = console.post("/logout", data={"csrf_token": page_csrf(r.text)})
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert console.get("/console/").status_code == 303  # the session is gone


def test_a_wrong_password_and_an_unknown_name_get_the_same_refusal(stack, console):
    me = stack["credentials"]["KZ01-P3"]
    wrong = sign_in(console, me["username"], "not-the-password")
    unknown = sign_in(console, "nobody-here", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    assert "用户名或密码错误" in wrong.text and "用户名或密码错误" in unknown.text
    assert "fq_session" not in wrong.headers.get("set-cookie", "")


def test_the_sign_in_form_refuses_a_post_without_its_csrf_twin(stack):
    me = stack["credentials"]["KZ01-P3"]
    with httpx.Client(base_url=stack["urls"]["mediation"], timeout=10) as stranger:
        r = stranger.post("/login", data={"username": me["username"], "password": me["password"], "csrf_token": "x"})
    assert r.status_code == 403 and "页面已过期" in r.text
    assert "fq_session" not in r.headers.get("set-cookie", "")


def test_sign_out_needs_the_session_csrf_token(stack, console):
    me = stack["credentials"]["KZ01-P4"]
    sign_in(console, me["username"], me["password"])
    r = console.post("/logout", data={"csrf_token": "forged"})
    assert r.status_code == 403
    assert console.get("/console/").status_code == 200  # still signed in


def test_five_failures_lock_the_name_even_for_the_right_password(stack, console):
    me = stack["credentials"]["KZ02-P4"]
    statuses = [sign_in(console, me["username"], f"guess-{i}").status_code for i in range(5)]
    assert statuses == [401, 401, 401, 401, 401]
    r = sign_in(console, me["username"], me["password"])
    assert r.status_code == 429 and "锁定" in r.text and int(r.headers["retry-after"]) > 0


def test_next_goes_only_to_console_pages(stack, console):
    me = stack["credentials"]["KZ02-P3"]
    for hostile in ("//evil.example/console/", "https://evil.example/", "/console/..//evil", "/login"):
        console.cookies.clear()
        r = sign_in(console, me["username"], me["password"], next=hostile)
        assert r.status_code == 303 and r.headers["location"] == "/console/", hostile


def test_an_idle_session_ends(stack, infra, console):
    me = stack["credentials"]["KZ02-P2"]
    sign_in(console, me["username"], me["password"])
    assert console.get("/console/").status_code == 200
    sql(
        infra.dsn,
        "UPDATE mediation.sessions SET last_seen_at = now() - interval '31 minutes' WHERE staff_id = $1",
        "KZ02-P2",
    )
    assert console.get("/console/").status_code == 303


def test_a_reset_password_must_be_changed_first_and_the_change_ends_other_sessions(stack, infra):
    me = stack["credentials"]["KZ02-MD"]
    url = stack["urls"]["mediation"]
    with httpx.Client(base_url=url, timeout=10) as laptop, httpx.Client(base_url=url, timeout=10) as phone:
        sql(infra.dsn, "UPDATE mediation.accounts SET must_change = true WHERE staff_id = $1", "KZ02-MD")
        r = sign_in(laptop, me["username"], me["password"])
        assert r.headers["location"] == "/console/password"
        assert laptop.get("/console/").headers["location"] == "/console/password"  # nothing else first
        sign_in(phone, me["username"], me["password"])

        form = laptop.get("/console/password")
        assert "请先设置您自己的密码" in form.text
        csrf = page_csrf(form.text)
        short = laptop.post(
            "/console/password",
            data={
                "csrf_token": csrf,
                "current_password": me["password"],
                "new_password": "short",
                "confirm_password": "short",
            },
        )
        assert short.status_code == 422 and "至少 10 位" in short.text
        new = "河边的柳树-2026-秋"
        r = laptop.post(
            "/console/password",
            data={"csrf_token": csrf, "current_password": me["password"], "new_password": new, "confirm_password": new},
        )
        assert r.status_code == 303 and r.headers["location"].startswith("/console/")
        assert laptop.get("/console/").status_code == 200
        assert phone.get("/console/").status_code == 303  # the other session ended
    with httpx.Client(base_url=url, timeout=10) as again:
        assert sign_in(again, me["username"], me["password"]).status_code == 401
        assert sign_in(again, me["username"], new).headers["location"] == "/console/"


def _fengqiao(infra, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": infra.dsn}
    return subprocess.run([FENGQIAO, *args], env=env, capture_output=True, text=True, timeout=60)


# A route of each service that any staff token may call (integration tokens get 401 from notify's
# inbox, which is a person's: that service is left out for them).
STAFF_ROUTES = {
    "intake": "/api/v1/feedback/NO-SUCH",
    "triage": "/api/v1/triage/alerts",
    "mediation": "/api/v1/cases?limit=1",
    "notify": "/api/v1/inbox",
}


def _accepted_everywhere(stack, headers: dict, routes: dict = STAFF_ROUTES, timeout: float = 10) -> None:
    """Wait until every service knows the token (it answers anything but 401)."""
    deadline = time.monotonic() + timeout
    pending = dict(routes)
    while pending:
        for name, path in list(pending.items()):
            if httpx.get(stack["urls"][name] + path, headers=headers, timeout=5).status_code != 401:
                del pending[name]
        assert time.monotonic() < deadline, f"the token never reached {sorted(pending)}"
        time.sleep(0.05)


def _refused_everywhere(stack, headers: dict, routes: dict = STAFF_ROUTES, timeout: float = 10) -> float:
    """Seconds until every service answers 401 to `headers`."""
    start = time.monotonic()
    pending = dict(routes)
    while pending:
        for name, path in list(pending.items()):
            if httpx.get(stack["urls"][name] + path, headers=headers, timeout=5).status_code == 401:
                del pending[name]
        assert time.monotonic() - start < timeout, f"still accepted by {sorted(pending)}"
        time.sleep(0.05)
    return time.monotonic() - start


def test_a_token_made_by_the_command_expires_and_is_revoked_everywhere(stack, infra):
    made = _fengqiao(infra, "token", "create", "--staff-id", "KZ01-P4", "--expires-days", "30", "--label", "测试")
    assert made.returncode == 0, made.stderr
    value = made.stdout.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {value}"}
    _accepted_everywhere(stack, headers)

    listed = _fengqiao(infra, "token", "list")
    line = next(row for row in listed.stdout.splitlines() if "KZ01-P4" in row and "测试" in row)
    token_id = line.split("\t")[0]
    assert "live" in line and value not in listed.stdout

    revoked = _fengqiao(infra, "token", "revoke", token_id)
    assert revoked.returncode == 0 and token_id in revoked.stdout
    print(f"revocation reached all four services in {_refused_everywhere(stack, headers):.2f} s")
    again = _fengqiao(infra, "token", "revoke", token_id)
    assert again.returncode != 0 and "no such live token" in again.stderr


def test_an_expired_token_is_refused(stack, infra):
    made = _fengqiao(infra, "token", "create", "--staff-id", "KZ01-P3", "--label", "expiring")
    value = made.stdout.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {value}"}
    _accepted_everywhere(stack, headers)
    for schema in ("intake", "triage", "mediation", "notify"):
        sql(
            infra.dsn,
            f"UPDATE {schema}.api_tokens SET expires_at = now() - interval '1 second' WHERE label = 'expiring'",
        )
    _refused_everywhere(stack, headers, timeout=2)


def test_a_token_acts_with_its_owners_current_state(stack, infra):
    """A deactivated person's token stops at every service as soon as the directory says so."""
    headers = token(stack, "KZ02-P1")
    _accepted_everywhere(stack, headers)
    for schema in ("intake", "triage", "mediation", "notify"):
        sql(infra.dsn, f"UPDATE {schema}.staff SET active = false WHERE staff_id = 'KZ02-P1'")
    try:
        _refused_everywhere(stack, headers, timeout=2)
    finally:
        for schema in ("intake", "triage", "mediation", "notify"):
            sql(infra.dsn, f"UPDATE {schema}.staff SET active = true WHERE staff_id = 'KZ02-P1'")


def test_guesses_sent_all_at_once_check_no_more_passwords_than_the_lockout_allows(stack):
    """Each attempt is counted before its password is checked: 20 parallel guesses, at most five
    of them are checked (401), the rest are refused as locked (429), and so is the right password."""
    from concurrent.futures import ThreadPoolExecutor

    me = stack["credentials"]["KZ02-P1"]
    url = stack["urls"]["mediation"]
    clients = [httpx.Client(base_url=url, timeout=30) for _ in range(20)]
    try:
        forms = [login_form(c) for c in clients]

        def guess(i: int) -> int:
            data = {"username": me["username"], "password": f"guess-{i}", "csrf_token": forms[i]}
            return clients[i].post("/login", data=data).status_code

        with ThreadPoolExecutor(max_workers=20) as pool:
            statuses = list(pool.map(guess, range(20)))
    finally:
        for c in clients:
            c.close()
    assert statuses.count(401) <= 5 and statuses.count(401) + statuses.count(429) == 20, statuses
    with httpx.Client(base_url=url, timeout=10) as owner:
        assert sign_in(owner, me["username"], me["password"]).status_code == 429


def test_guessing_the_current_password_from_an_open_session_is_limited_too(stack, console):
    me = stack["credentials"]["KZ02-IN"]
    page = sign_in(console, me["username"], me["password"])
    assert page.status_code == 303
    csrf = page_csrf(console.get("/console/password").text)
    wrong = [
        console.post(
            "/console/password",
            data={"csrf_token": csrf, "current_password": f"guess-{i}", "new_password": "x", "confirm_password": "x"},
        )
        for i in range(6)
    ]
    assert [r.status_code for r in wrong] == [422] * 6
    assert "当前密码不正确" in wrong[0].text and "锁定" in wrong[5].text

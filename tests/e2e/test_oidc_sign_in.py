"""OpenID Connect sign-in with a bureau's own identity provider (issue 15): a small provider in
the test (discovery, JWKS, /authorize, /token with an RS256 ID token signed by a key made here)
and a mediation process configured for it, both on real HTTP."""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from fengqiao.devstack import free_port, start_service, stop_process, wait_ready
from tests.e2e.helpers import sql


class Provider:
    """An OpenID provider: /authorize signs in whoever `user` names and sends the browser back."""

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key"})
        self.user = "kz01-p2"
        self.nonce_override: str | None = None
        self.codes: dict[str, dict] = {}
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _json(self, data: dict, status: int = 200) -> None:
                body = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    self._json(
                        {
                            "issuer": provider.url,
                            "authorization_endpoint": f"{provider.url}/authorize",
                            "token_endpoint": f"{provider.url}/token",
                            "jwks_uri": f"{provider.url}/jwks",
                        }
                    )
                elif url.path == "/jwks":
                    self._json({"keys": [provider.key.as_dict(private=False)]})
                elif url.path == "/authorize":
                    assert q["response_type"] == "code" and q["code_challenge_method"] == "S256"
                    code = secrets.token_urlsafe(16)
                    provider.codes[code] = q
                    self.send_response(302)
                    self.send_header(
                        "Location", f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}"
                    )
                    self.end_headers()
                else:
                    self._json({}, 404)

            def do_POST(self) -> None:
                form = {
                    k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()).items()
                }
                asked = provider.codes.pop(form.get("code", ""), None)
                if asked is None or "code_verifier" not in form:
                    self._json({"error": "invalid_grant"}, 400)
                    return
                now = int(time.time())
                claims = {
                    "iss": provider.url,
                    "aud": asked["client_id"],
                    "sub": provider.user,
                    "preferred_username": provider.user,
                    "iat": now,
                    "exp": now + 300,
                    "nonce": provider.nonce_override or asked["nonce"],
                }
                id_token = jwt.encode({"alg": "RS256", "kid": "test-key"}, claims, provider.key)
                self._json({"access_token": "at", "token_type": "Bearer", "id_token": id_token})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def oidc(stack, infra):
    provider = Provider()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": infra.dsn,
        "KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap,
        "MEDIATION_PORT": str(port),
        "OIDC_ISSUER": provider.url,
        "OIDC_CLIENT_ID": "fengqiao-console",
        "OIDC_CLIENT_SECRET": "s3cret-of-the-test",
        "OIDC_REDIRECT_BASE": url,
        "RATE_LIMIT_LOGIN": "100000/minute",
    }
    proc = start_service("mediation", env, infra.workdir / "mediation-oidc.log")
    try:
        assert not wait_ready({"mediation": url}, timeout=60)
        yield {"provider": provider, "url": url, "log": infra.workdir / "mediation-oidc.log"}
    finally:
        stop_process(proc)
        provider.server.shutdown()


def through_provider(oidc, client: httpx.Client) -> httpx.Response:
    """Click the link on the sign-in page, follow the provider, return mediation's answer."""
    page = client.get("/login")
    assert "使用统一身份认证登录" in page.text
    r = client.get("/login/oidc", params={"next": "/console/"})
    assert r.status_code == 303 and r.headers["location"].startswith(oidc["provider"].url + "/authorize")
    cookie = r.headers["set-cookie"]
    assert "fq_oidc=" in cookie and "HttpOnly" in cookie and "lax" in cookie.lower()
    back = httpx.get(r.headers["location"])  # the provider, in the same browser
    assert back.status_code == 302
    return client.get(back.headers["location"])


def test_a_known_active_user_signs_in_through_the_provider_and_reaches_the_console(oidc):
    oidc["provider"].user = "kz01-p2"
    with httpx.Client(base_url=oidc["url"], timeout=10) as client:
        r = through_provider(oidc, client)
        assert r.status_code == 303 and r.headers["location"] == "/console/", r.text
        assert "fq_session=" in r.headers["set-cookie"]
        page = client.get("/console/")
        assert page.status_code == 200 and "刘洋" in page.text and "我的待办" in page.text
    assert "eyJ" not in oidc["log"].read_text()  # nothing of a token in the logs


def test_a_wrong_state_a_wrong_nonce_and_an_unknown_user_are_refused_in_chinese(oidc):
    provider = oidc["provider"]
    with httpx.Client(base_url=oidc["url"], timeout=10) as client:
        # a callback with a state that is not this browser's
        client.get("/login/oidc")
        r = client.get("/login/oidc/callback", params={"code": "x", "state": "forged"})
        assert r.status_code == 403 and "登录请求已失效或不匹配" in r.text
        assert "fq_session" not in r.headers.get("set-cookie", "")

        provider.user, provider.nonce_override = "kz01-p2", "not-the-nonce"
        r = through_provider(oidc, client)
        assert r.status_code == 403 and "身份凭证无效" in r.text
        provider.nonce_override = None

        provider.user = "nobody-we-know"
        r = through_provider(oidc, client)
        assert r.status_code == 403 and "没有对应的工作人员" in r.text
        assert client.get("/console/").status_code == 303


def test_a_deactivated_user_is_refused(oidc, infra):
    sql(
        infra.dsn,
        "INSERT INTO mediation.staff (staff_id, station, name, role, active) "
        "VALUES ('KZ01-OIDC-GONE', 'KZ01', '离职测试', 'officer', false)",
    )
    sql(
        infra.dsn,
        "INSERT INTO mediation.accounts (staff_id, username, password_hash) VALUES ('KZ01-OIDC-GONE', 'gone-one', 'x')",
    )
    oidc["provider"].user = "gone-one"
    with httpx.Client(base_url=oidc["url"], timeout=10) as client:
        r = through_provider(oidc, client)
        assert r.status_code == 403 and "已停用" in r.text
        assert client.get("/console/").status_code == 303

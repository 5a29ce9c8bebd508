"""OpenID Connect sign-in with the bureau's own identity provider (issue 15): the authorization
code flow with PKCE (S256), `state` and `nonce`. authlib builds the request (PKCE, the grant URI);
the ID token is checked with joserfc, authlib's JOSE implementation (authlib.jose is deprecated in
authlib 1.9): signature against the provider's JWKS (asymmetric algorithms only), issuer,
audience, expiry and nonce.

The flow's secrets (state, nonce, code verifier, where to go next) travel in a short-lived
HttpOnly cookie signed with a key derived from the client secret, so no server-side row is needed.
Nothing of a token is ever logged."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from fengqiao.settings import Settings

FLOW_COOKIE = "fq_oidc"
FLOW_COOKIE_PATH = "/login/oidc"
FLOW_TTL_S = 600  # the person has ten minutes at the provider
HTTP_TIMEOUT_S = 2.0  # each call to the provider, well within the request timeout
ALGORITHMS = ["RS256", "PS256", "ES256"]  # never "none" nor a shared-secret HMAC
LEEWAY_S = 60
MAX_COOKIE = 2048
UNAVAILABLE = "统一身份认证服务暂时无法访问，请稍后再试或使用用户名密码登录。"


class OidcRefused(Exception):
    """The sign-in cannot go on; `message` is Chinese, for the page."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(reason)
        self.message = message
        self.reason = reason  # a short code for the log, never token content


@dataclass(frozen=True)
class Flow:
    state: str
    nonce: str
    verifier: str
    next_url: str


class OidcClient:
    def __init__(self, settings: Settings) -> None:
        assert settings.oidc_issuer and settings.oidc_client_secret
        self.issuer = settings.oidc_issuer.rstrip("/")
        self.client_id = settings.oidc_client_id
        self.secret = settings.oidc_client_secret.get_secret_value()
        self.claim = settings.oidc_staff_claim
        self.redirect_uri = settings.oidc_redirect_base.rstrip("/") + "/login/oidc/callback"
        self._key = hmac.new(self.secret.encode(), b"fengqiao/oidc/flow-cookie", hashlib.sha256).digest()
        self._metadata: dict[str, Any] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcClient | None:
        if not settings.oidc_issuer:
            return None
        if not settings.oidc_client_id or settings.oidc_client_secret is None:
            raise SystemExit("mediation: OIDC_ISSUER needs OIDC_CLIENT_ID and OIDC_CLIENT_SECRET")
        return cls(settings)

    # -- the flow cookie -----------------------------------------------------------------------

    def new_flow(self, next_url: str) -> Flow:
        return Flow(generate_token(32), generate_token(32), generate_token(64), next_url)

    def seal(self, flow: Flow) -> str:
        body = json.dumps(
            {"s": flow.state, "n": flow.nonce, "v": flow.verifier, "x": flow.next_url, "t": int(time.time())},
            separators=(",", ":"),
        ).encode()
        payload = base64.urlsafe_b64encode(body).decode().rstrip("=")
        mac = hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()
        return f"{payload}.{mac}"

    def open(self, cookie: str | None, state: str | None) -> Flow:
        """The flow of this browser, if the cookie is ours, fresh and its state is the one returned."""
        refused = OidcRefused("登录请求已失效或不匹配，请重新登录。", "bad_state")
        if not cookie or not state or len(cookie) > MAX_COOKIE or "." not in cookie:
            raise refused
        payload, mac = cookie.rsplit(".", 1)
        expected = hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, expected):
            raise refused
        try:
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            flow = Flow(str(data["s"]), str(data["n"]), str(data["v"]), str(data["x"]))
            issued = int(data["t"])
        except (ValueError, KeyError, TypeError):
            raise refused from None
        if not 0 <= time.time() - issued <= FLOW_TTL_S:
            raise refused
        if not hmac.compare_digest(flow.state.encode(), state.encode()):
            raise refused
        return flow

    # -- the provider --------------------------------------------------------------------------

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            data = await self._get_json(f"{self.issuer}/.well-known/openid-configuration")
            if str(data.get("issuer", "")).rstrip("/") != self.issuer:
                raise OidcRefused("统一身份认证服务配置有误，请联系系统管理员。", "issuer_mismatch")
            for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(data.get(key), str):
                    raise OidcRefused("统一身份认证服务配置有误，请联系系统管理员。", "discovery_incomplete")
            self._metadata = data
        return self._metadata

    async def authorization_url(self, flow: Flow) -> str:
        meta = await self.metadata()
        uri: str = prepare_grant_uri(
            meta["authorization_endpoint"],
            self.client_id,
            "code",
            redirect_uri=self.redirect_uri,
            scope="openid profile",
            state=flow.state,
            nonce=flow.nonce,
            code_challenge=create_s256_code_challenge(flow.verifier),
            code_challenge_method="S256",
        )
        return uri

    async def username(self, flow: Flow, code: str) -> str:
        """Exchange the code, check the ID token; the user name its claim names."""
        meta = await self.metadata()
        answer = await self._post_json(
            meta["token_endpoint"],
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": flow.verifier,
            },
        )
        id_token = answer.get("id_token")
        if not isinstance(id_token, str) or len(id_token) > 16_384:
            raise OidcRefused("统一身份认证未返回有效的身份凭证，请重新登录。", "no_id_token")
        keys = await self._get_json(meta["jwks_uri"])
        try:
            token = jwt.decode(id_token, KeySet.import_key_set(keys), algorithms=ALGORITHMS)  # type: ignore[arg-type]
            jwt.JWTClaimsRegistry(
                leeway=LEEWAY_S,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.client_id},
                exp={"essential": True},
                nonce={"essential": True, "value": flow.nonce},
            ).validate(token.claims)
        except (JoseError, ValueError, KeyError, TypeError):
            raise OidcRefused("统一身份认证的身份凭证无效，请重新登录。", "invalid_id_token") from None
        name = token.claims.get(self.claim)
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise OidcRefused("统一身份认证的账号在本系统中没有对应的工作人员，请联系系统管理员。", "no_claim")
        return name.strip()

    async def _get_json(self, url: str) -> dict[str, Any]:
        return await self._call(url, None)

    async def _post_json(self, url: str, form: dict[str, str]) -> dict[str, Any]:
        return await self._call(url, form)

    async def _call(self, url: str, form: dict[str, str] | None) -> dict[str, Any]:
        unavailable = OidcRefused(UNAVAILABLE, "provider_unavailable")
        try:
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S, follow_redirects=False) as client:
                if form is None:
                    r = await client.get(url)
                else:  # client_secret_basic (RFC 6749 2.3.1)
                    r = await client.post(url, data=form, auth=(self.client_id, self.secret))
        except httpx.HTTPError:
            raise unavailable from None
        if r.status_code != 200 or len(r.content) > 256 * 1024:
            if form is not None and 400 <= r.status_code < 500:
                raise OidcRefused("统一身份认证拒绝了本次登录，请重新登录。", "code_refused")
            raise unavailable
        try:
            data = r.json()
        except ValueError:
            raise unavailable from None
        if not isinstance(data, dict):
            raise unavailable
        return data

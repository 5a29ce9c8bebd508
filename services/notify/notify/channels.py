"""Channel adapters: each sends one message and says whether a failure is worth retrying.

- `SmsGateway`: a provider-neutral HTTP SMS gateway (URL, auth header and request body template
  in settings).
- `Mailer`: SMTP through aiosmtplib, multipart text + HTML, UTF-8 (Chinese subjects become
  RFC 2047 encoded words).
- `WebhookSender`: JSON CloudEvents signed per Standard Webhooks (webhook-id, webhook-timestamp,
  webhook-signature = v1,base64(HMAC-SHA256(secret, id.timestamp.body))), only to addresses the
  `WebhookPolicy` allows, checked at each send.

None of them logs an address or a message text."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Protocol

import aiosmtplib
import httpx
import structlog
from jinja2 import Environment, StrictUndefined

from notify.addresses import AddressRefused, WebhookPolicy
from notify.config import NotifySettings

log = structlog.get_logger(__name__)


class TemporaryFailure(Exception):
    """Worth another try later (timeouts, refused connections, 5xx, 429, SMTP 4xx)."""


class PermanentFailure(Exception):
    """Will not succeed by waiting (the gateway refused the request, a bad address)."""


@dataclass(frozen=True)
class Outgoing:
    delivery_id: int
    channel: str
    recipient: str  # phone (E.164), e-mail address, or webhook URL
    subject: str | None
    body: str  # SMS / e-mail text, or the webhook's JSON body
    html: str | None = None
    secret: str | None = None  # webhook signing secret ("whsec_" + base64)
    event_id: str | None = None


class Sender(Protocol):
    """A channel's adapter: SmsGateway, Mailer, WebhookSender."""

    async def send(self, message: Outgoing) -> None: ...


def _http_failure(status: int, what: str) -> Exception:
    if status in (408, 425, 429) or status >= 500:
        return TemporaryFailure(f"{what} answered HTTP {status}")
    return PermanentFailure(f"{what} refused the request (HTTP {status})")


class SmsGateway:
    channel = "sms"

    def __init__(self, settings: NotifySettings, client: httpx.AsyncClient | None = None) -> None:
        if not settings.sms_gateway_url:
            raise ValueError("SMS_GATEWAY_URL is not set")
        if settings.sms_gateway_format not in ("json", "form"):
            raise ValueError("SMS_GATEWAY_FORMAT must be json or form")
        self.url = settings.sms_gateway_url
        self.format = settings.sms_gateway_format
        self.headers = {}
        if settings.sms_gateway_auth:
            self.headers[settings.sms_gateway_auth_header] = settings.sms_gateway_auth.get_secret_value()
        self.body = Environment(undefined=StrictUndefined, autoescape=False).from_string(settings.sms_gateway_body)
        self.ok_field, self.ok_value = settings.sms_gateway_ok_field, settings.sms_gateway_ok_value
        self.client = client or httpx.AsyncClient(timeout=settings.sms_gateway_timeout_s)

    def request_body(self, message: Outgoing) -> dict:
        rendered = self.body.render(to=message.recipient, text=message.body, ref=f"fq-{message.delivery_id}")
        body = json.loads(rendered)
        if not isinstance(body, dict):
            raise ValueError("SMS_GATEWAY_BODY must render a JSON object")
        return body

    async def send(self, message: Outgoing) -> None:
        body = self.request_body(message)
        try:
            if self.format == "form":
                response = await self.client.post(
                    self.url, data={k: str(v) for k, v in body.items()}, headers=self.headers
                )
            else:
                response = await self.client.post(self.url, json=body, headers=self.headers)
        except httpx.TransportError as exc:
            raise TemporaryFailure(f"SMS gateway unreachable ({type(exc).__name__})") from exc
        if response.status_code >= 300:
            raise _http_failure(response.status_code, "SMS gateway")
        if self.ok_field:
            try:
                value = response.json().get(self.ok_field)
            except (ValueError, AttributeError) as exc:
                raise TemporaryFailure("SMS gateway answered without a JSON object") from exc
            if str(value) != str(self.ok_value):
                raise PermanentFailure(f"SMS gateway answered {self.ok_field}={str(value)[:40]}")

    async def aclose(self) -> None:
        await self.client.aclose()


class Mailer:
    channel = "email"

    def __init__(self, settings: NotifySettings) -> None:
        if not settings.smtp_host:
            raise ValueError("NOTIFY_SMTP_HOST is not set")
        if settings.smtp_security not in ("none", "starttls", "tls"):
            raise ValueError("NOTIFY_SMTP_SECURITY must be none, starttls or tls")
        self.settings = settings

    def message(self, message: Outgoing, now: datetime) -> EmailMessage:
        mail = EmailMessage()  # policy: SMTP-safe, UTF-8 headers become RFC 2047 encoded words
        mail["From"] = self.settings.mail_from
        mail["To"] = message.recipient
        mail["Subject"] = message.subject or ""
        mail["Date"] = format_datetime(now)
        # Stable per delivery: a resent message is recognisably the same one.
        domain = self.settings.mail_from.rpartition("@")[2] or "fengqiao"
        mail["Message-ID"] = f"<fq-{message.delivery_id}.{message.event_id or 'x'}@{domain}>"
        mail.set_content(message.body, charset="utf-8")
        if message.html:
            mail.add_alternative(message.html, subtype="html", charset="utf-8")
        return mail

    async def send(self, message: Outgoing) -> None:
        s = self.settings
        mail = self.message(message, datetime.now().astimezone())
        try:
            await aiosmtplib.send(
                mail,
                hostname=s.smtp_host,
                port=s.smtp_port,
                timeout=s.smtp_timeout_s,
                username=s.smtp_username or None,
                password=(s.smtp_password.get_secret_value() or None) if s.smtp_password else None,
                use_tls=s.smtp_security == "tls",
                start_tls=s.smtp_security == "starttls",
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            if all(400 <= c < 500 for c in codes):
                raise TemporaryFailure(f"SMTP recipient deferred ({codes[0]})") from exc
            raise PermanentFailure(f"SMTP recipient refused ({codes[0] if codes else '?'})") from exc
        except aiosmtplib.SMTPResponseException as exc:
            if 400 <= exc.code < 500:
                raise TemporaryFailure(f"SMTP server deferred ({exc.code})") from exc
            raise PermanentFailure(f"SMTP server refused ({exc.code})") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise TemporaryFailure(f"SMTP server unreachable ({type(exc).__name__})") from exc

    async def aclose(self) -> None:
        pass


def new_webhook_secret() -> str:
    import secrets

    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign_webhook(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """Standard Webhooks signature header value."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class WebhookSender:
    channel = "webhook"

    def __init__(
        self, settings: NotifySettings, client: httpx.AsyncClient | None = None, policy: WebhookPolicy | None = None
    ) -> None:
        self.policy = policy or WebhookPolicy.from_setting(settings.webhook_allowed_hosts)
        # Redirects are not followed: a public URL could otherwise send us to an internal one.
        self.client = client or httpx.AsyncClient(timeout=settings.webhook_timeout_s, follow_redirects=False)

    def headers(self, message: Outgoing, now: datetime) -> dict[str, str]:
        timestamp = int(now.timestamp())  # the receiver rejects stale ones: replay protection
        msg_id = message.event_id or f"fq-{message.delivery_id}"
        return {
            "content-type": "application/cloudevents+json; charset=utf-8",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign_webhook(message.secret or "", msg_id, timestamp, message.body),
        }

    async def send(self, message: Outgoing) -> None:
        """The errors say only a reason code (webhook_unreachable, webhook_rejected, ...): whoever
        reads them must not learn which internal ports are open or what answers there."""
        try:
            target = await self.policy.check(message.recipient)
        except AddressRefused as exc:
            log.warning("webhook_address_refused", delivery_id=message.delivery_id, reason=exc.reason)
            if exc.reason == "unresolvable_host":  # DNS may be back later
                raise TemporaryFailure("webhook_unresolvable_host") from None
            raise PermanentFailure(f"webhook_{exc.reason}") from None
        url = httpx.URL(message.recipient)
        headers = self.headers(message, datetime.now().astimezone())  # the wall clock: receivers check it
        # Connect to the address just checked, not to the name (a second lookup could answer
        # differently: DNS rebinding); the name still goes in Host and in TLS (SNI, certificate).
        headers["host"] = url.netloc.decode("ascii")
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        try:
            # Streamed and never read: a receiver's answer, however large, costs nothing.
            async with self.client.stream(
                "POST",
                url.copy_with(host=str(target.address)),
                content=message.body.encode(),
                headers=headers,
                extensions=extensions,
            ) as response:
                status = response.status_code
        except httpx.TransportError as exc:
            log.warning("webhook_unreachable", delivery_id=message.delivery_id, error=type(exc).__name__)
            raise TemporaryFailure("webhook_unreachable") from exc
        if status >= 300:
            log.warning("webhook_rejected", delivery_id=message.delivery_id, status=status)
            failure = _http_failure(status, "webhook endpoint")
            raise type(failure)("webhook_rejected")

    async def aclose(self) -> None:
        await self.client.aclose()

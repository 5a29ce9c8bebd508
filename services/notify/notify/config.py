"""Notify's own settings (environment), on top of the platform's `Settings`. Every channel is
optional: a channel without settings is "not configured" and its deliveries fail at once, visibly
(counted, shown to the leader, kept for a manual resend), instead of piling up unseen."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# The default request of the provider-neutral SMS gateway adapter: a JSON object rendered with
# Jinja2. Variables: to (E.164 phone), text, ref (our delivery id, for the gateway's dedup).
DEFAULT_SMS_BODY = '{"to": {{ to | tojson }}, "text": {{ text | tojson }}, "ref": {{ ref | tojson }}}'


class NotifySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    # -- SMS through an HTTP gateway -------------------------------------------------------------
    sms_gateway_url: str | None = Field(default=None, alias="SMS_GATEWAY_URL")
    # Sent as the header SMS_GATEWAY_AUTH_HEADER (e.g. "Bearer abc" for Authorization).
    sms_gateway_auth: SecretStr | None = Field(default=None, alias="SMS_GATEWAY_AUTH")
    sms_gateway_auth_header: str = Field(default="Authorization", alias="SMS_GATEWAY_AUTH_HEADER")
    # The request body template (Jinja2); JSON by default. With SMS_GATEWAY_FORMAT=form the template
    # must render a JSON object whose fields are sent form-encoded.
    sms_gateway_body: str = Field(default=DEFAULT_SMS_BODY, alias="SMS_GATEWAY_BODY")
    sms_gateway_format: str = Field(default="json", alias="SMS_GATEWAY_FORMAT")  # json | form
    # Optional check of a 2xx JSON answer, e.g. SMS_GATEWAY_OK_FIELD=code SMS_GATEWAY_OK_VALUE=0.
    sms_gateway_ok_field: str | None = Field(default=None, alias="SMS_GATEWAY_OK_FIELD")
    sms_gateway_ok_value: str | None = Field(default=None, alias="SMS_GATEWAY_OK_VALUE")
    sms_gateway_timeout_s: float = Field(default=10.0, alias="SMS_GATEWAY_TIMEOUT_S")

    # -- E-mail through SMTP ---------------------------------------------------------------------
    smtp_host: str | None = Field(default=None, alias="NOTIFY_SMTP_HOST")
    smtp_port: int = Field(default=25, alias="NOTIFY_SMTP_PORT")
    smtp_username: str | None = Field(default=None, alias="NOTIFY_SMTP_USERNAME")
    smtp_password: SecretStr | None = Field(default=None, alias="NOTIFY_SMTP_PASSWORD")
    smtp_security: str = Field(default="starttls", alias="NOTIFY_SMTP_SECURITY")  # none | starttls | tls
    smtp_timeout_s: float = Field(default=20.0, alias="NOTIFY_SMTP_TIMEOUT_S")
    mail_from: str = Field(default="fengqiao@localhost", alias="NOTIFY_MAIL_FROM")

    # -- Webhooks --------------------------------------------------------------------------------
    webhook_timeout_s: float = Field(default=10.0, alias="WEBHOOK_TIMEOUT_S")
    # Webhooks go to public addresses only; this comma-separated list names the exceptions: host
    # names, IP addresses or CIDR networks (e.g. "hooks.bureau.internal,10.20.0.0/16").
    webhook_allowed_hosts: str = Field(default="", alias="WEBHOOK_ALLOWED_HOSTS")

    # -- Rules -----------------------------------------------------------------------------------
    retry_base_s: float = Field(default=30.0, alias="DELIVERY_RETRY_BASE_S")
    retry_cap_s: float = Field(default=3600.0, alias="DELIVERY_RETRY_CAP_S")
    max_attempts: int = Field(default=8, alias="DELIVERY_MAX_ATTEMPTS")
    # Per channel: rows claimed per round, and sends in flight at once.
    delivery_batch: int = Field(default=50, alias="DELIVERY_BATCH")
    delivery_concurrency: int = Field(default=8, alias="DELIVERY_CONCURRENCY")
    # Citizen SMS wait through these hours (station time) unless urgent; "off" disables.
    quiet_hours: str = Field(default="21:00-08:00", alias="QUIET_HOURS")
    # Per recipient and channel (citizens and staff; not webhooks), `limits` notation.
    recipient_rate_limit: str = Field(default="3 per 10 minutes;10/day", alias="RECIPIENT_RATE_LIMIT")
    # How long the return-visit survey link in the result message stays valid.
    survey_link_valid_days: int = Field(default=14, alias="SURVEY_LINK_VALID_DAYS")
    # Deployment and per-station templates and profiles (signature, hotline); see docs/operations.md.
    template_dir: Path | None = Field(default=None, alias="NOTIFY_TEMPLATE_DIR")

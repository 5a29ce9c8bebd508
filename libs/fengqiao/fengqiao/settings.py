"""Settings of a Fengqiao process, read once in each composition root and passed down."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, PrivateAttr, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Environment-driven settings. Unset DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS mean
    "use the embedded dev stack" for `fengqiao dev`; a service started with `fengqiao serve`
    needs both."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    database_url: str | None = None
    kafka_bootstrap_servers: str | None = None

    # Where the dev stack keeps its database, logs and credentials.
    fengqiao_home: Path = Field(default=Path(".fengqiao"), alias="FENGQIAO_HOME")
    embedded_pg_port: int = Field(default=54329, alias="FENGQIAO_PG_PORT")

    # A service's HTTP port is `<NAME>_PORT` (INTAKE_PORT...), else the default it registers with
    # (`fengqiao.registry`): the platform knows no service, so they are read by pattern, once, here.
    _ports: dict[str, int] = PrivateAttr(default_factory=dict)
    broker_port: int = Field(default=9092, alias="BROKER_PORT")
    smtp_port: int = Field(default=2525, alias="SMTP_PORT")
    bind_host: str = Field(default="127.0.0.1", alias="BIND_HOST")

    # Tansu holds a fetch until fetch_max_wait_ms expires, so keep it low (DESIGN section 3).
    kafka_fetch_max_wait_ms: int = Field(default=20, alias="KAFKA_FETCH_MAX_WAIT_MS")
    kafka_max_poll_records: int = Field(default=500, alias="KAFKA_MAX_POLL_RECORDS")
    kafka_max_poll_interval_ms: int = Field(default=300_000, alias="KAFKA_MAX_POLL_INTERVAL_MS")
    kafka_topic_partitions: int = Field(default=4, alias="KAFKA_TOPIC_PARTITIONS")
    kafka_replication_factor: int = Field(default=1, alias="KAFKA_REPLICATION_FACTOR")
    # Upper bound of one handler call (and of one batch transaction); well below max_poll_interval.
    handler_timeout_s: float = Field(default=30.0, alias="HANDLER_TIMEOUT_S")
    # In-place attempts for a transient failure before the consumer seeks back and re-polls.
    handler_retry_attempts: int = Field(default=5, alias="HANDLER_RETRY_ATTEMPTS")
    # How many times an unexplained (non-infrastructure) error is retried before dead-lettering.
    handler_error_dead_letter_after: int = Field(default=3, alias="HANDLER_ERROR_DEAD_LETTER_AFTER")

    outbox_batch_size: int = Field(default=500, alias="OUTBOX_BATCH_SIZE")
    outbox_poll_interval_s: float = Field(default=1.0, alias="OUTBOX_POLL_INTERVAL_S")
    outbox_retention_hours: float = Field(default=72.0, alias="OUTBOX_RETENTION_HOURS")
    # Inbox rows are the duplicate filter: keep them well beyond the topics' retention.
    inbox_retention_days: float = Field(default=30.0, alias="INBOX_RETENTION_DAYS")

    # Every HTTP request is answered within this time: past it, 503 with Retry-After (a frozen
    # database must not hold a citizen's submission until the client gives up).
    request_timeout_s: float = Field(default=4.5, alias="REQUEST_TIMEOUT_S")
    # Largest request body a route accepts unless its service says otherwise; refused with 413 before
    # it is read.
    max_request_bytes: int = Field(default=256 * 1024, alias="MAX_REQUEST_BYTES")

    db_pool_min: int = Field(default=1, alias="DB_POOL_MIN")
    db_pool_max: int = Field(default=10, alias="DB_POOL_MAX")

    log_level: str = Field(default="INFO", alias="LOG_LEVEL")
    log_format: str = Field(default="json", alias="LOG_FORMAT")

    # Keys for personal data at rest: "kid:base64key[,kid:base64key]", the first encrypts.
    pii_keys: SecretStr | None = Field(default=None, alias="FENGQIAO_PII_KEYS")
    # Key of the blind index (keyed hash) used to find the same phone number again; never rotates.
    pii_index_key: SecretStr | None = Field(default=None, alias="FENGQIAO_PII_INDEX_KEY")
    # Signs the links sent to citizens (survey); shared by notify (signs) and intake (verifies).
    link_key: SecretStr | None = Field(default=None, alias="FENGQIAO_LINK_KEY")

    # Per client address, on public endpoints (limits notation, ";" separates several windows).
    rate_limit_submit: str = Field(default="20/minute;500/day", alias="RATE_LIMIT_SUBMIT")
    rate_limit_track: str = Field(default="30/minute;1000/day", alias="RATE_LIMIT_TRACK")
    # Sign-in attempts per client address (the per-name lockout is in mediation.signin).
    rate_limit_login: str = Field(default="20/minute;300/day", alias="RATE_LIMIT_LOGIN")
    # Reverse proxies whose X-Forwarded-For is trusted, comma-separated addresses.
    trusted_proxies: str = Field(default="", alias="TRUSTED_PROXIES")

    # Public base URL of intake, used in links sent to citizens.
    public_base_url: str = Field(default="http://127.0.0.1:8080", alias="PUBLIC_BASE_URL")
    # Console session cookies carry `Secure` (sent over HTTPS only); the dev stack turns it off.
    cookie_secure: bool = Field(default=True, alias="FENGQIAO_COOKIE_SECURE")

    # How often an open console queue asks for new assignments (seconds).
    console_refresh_s: int = Field(default=30, ge=2, le=3600, alias="CONSOLE_REFRESH_S")

    # OpenID Connect sign-in to the console with the bureau's own identity provider (off unless
    # OIDC_ISSUER is set; discovery at `{issuer}/.well-known/openid-configuration`).
    oidc_issuer: str | None = Field(default=None, alias="OIDC_ISSUER")
    oidc_client_id: str = Field(default="", alias="OIDC_CLIENT_ID")
    oidc_client_secret: SecretStr | None = Field(default=None, alias="OIDC_CLIENT_SECRET")
    # The ID token's claim that holds the person's user name (mediation `accounts.username`).
    oidc_staff_claim: str = Field(default="preferred_username", alias="OIDC_STAFF_CLAIM")
    # Mediation's public base URL: the provider sends the browser back to `{base}/login/oidc/callback`.
    oidc_redirect_base: str = Field(default="http://127.0.0.1:8081", alias="OIDC_REDIRECT_BASE")

    # Where the console (mediation) calls intake's and notify's APIs, server side, with the signed-in
    # person's session-bound token (issue 16). Unset: the dev stack's ports on this host.
    intake_url: str | None = Field(default=None, alias="INTAKE_URL")
    notify_url: str | None = Field(default=None, alias="NOTIFY_URL")

    def model_post_init(self, _context: object) -> None:
        self._ports = {
            key[: -len("_PORT")].lower(): int(value)
            for key, value in os.environ.items()
            if key.upper().endswith("_PORT") and value.strip().isdigit()
        }

    def require_infrastructure(self) -> tuple[str, str]:
        if not self.database_url or not self.kafka_bootstrap_servers:
            raise SystemExit(
                "DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS must be set to run a single service; "
                "`fengqiao dev` starts an embedded stack and sets them for you."
            )
        return self.database_url, self.kafka_bootstrap_servers

    def service_port(self, service: str, default: int) -> int:
        """The HTTP port of `service`: `<SERVICE>_PORT` if set, else `default`."""
        return self._ports.get(service.lower(), default)

    def intake_base_url(self) -> str:
        return (self.intake_url or f"http://127.0.0.1:{self.service_port('intake', 8080)}").rstrip("/")

    def notify_base_url(self) -> str:
        return (self.notify_url or f"http://127.0.0.1:{self.service_port('notify', 8083)}").rstrip("/")

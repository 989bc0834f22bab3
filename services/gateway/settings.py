"""Settings of the gateway API and its projector (env prefix `GATEWAY_`)."""

import secrets
from decimal import Decimal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings

# A per-process random secret is fine for one development process; several replicas (or tokens
# that must survive a restart) need GATEWAY_JWT_SECRET, and production refuses to start without it.
_EPHEMERAL_SECRET = SecretStr(secrets.token_urlsafe(48))


class GatewaySettings(ServiceSettings):
    """Everything the gateway API and the projector read from the environment."""

    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_", env_file=".env", extra="ignore", populate_by_name=True
    )

    service_name: str = "gateway"
    http_host: str = "127.0.0.1"
    http_port: int = Field(8000, description="Port of the REST API.")
    projector_http_port: int = Field(8105, description="Health/metrics port of the projector.")
    jobs_http_port: int = Field(8107, description="Health/metrics port of the review jobs process.")

    jwt_secret: SecretStr | None = Field(
        None, description="HMAC key of the JWTs (required in production)."
    )
    jwt_algorithm: str = "HS256"
    jwt_issuer: str = "loan-engine"
    access_token_seconds: int = Field(900, gt=0, description="Lifetime of an access token.")
    refresh_token_seconds: int = Field(
        7 * 24 * 3600, gt=0, description="Lifetime of a refresh token."
    )

    admin_username: str | None = Field(None, description="First admin, created at first start.")
    admin_password: SecretStr | None = Field(None, description="Password of the first admin.")
    admin_email: str = Field("admin@localhost", description="E-mail of the first admin.")

    upload_max_bytes: int = Field(200 * 1024 * 1024, gt=0, description="Largest upload accepted.")
    run_wait_max_seconds: int = Field(300, gt=0, description="Longest `?wait=` on a run request.")
    run_wait_poll_seconds: float = Field(0.25, gt=0, description="How often `?wait=` looks.")
    db_pool_size: int = Field(10, gt=0, description="Database connections of one API process.")
    triage_wait_seconds: float = Field(
        30.0, gt=0, description="How long an exception action waits for the projector's fold."
    )
    audit_enabled: bool = Field(True, description="Publish an audit.v1 event per write action.")
    review_wait_seconds: float = Field(
        30.0, gt=0, description="How long a review action waits for the projector's fold."
    )
    review_sla_hours: Decimal = Field(
        Decimal(8), gt=0, description="Hours from opening a review case to its SLA deadline."
    )
    review_warning_hours: Decimal = Field(
        Decimal(2), ge=0, description="A case is approaching its SLA this many hours before."
    )
    review_auto_approve_min: int = Field(
        850,
        ge=0,
        le=1000,
        description=(
            "The auto-approve score that ranks the queue (a decision is weighed against "
            "the band of the policy that routed its loan)."
        ),
    )
    review_auto_decline_max: int = Field(
        600,
        ge=0,
        le=1000,
        description=(
            "The auto-decline score that ranks the queue (a decision is weighed against "
            "the band of the policy that routed its loan)."
        ),
    )
    review_amount_cap: Decimal = Field(
        Decimal(3_000_000), gt=0, description="A loan amount that counts fully in the priority."
    )
    review_auto_assign_hours: Decimal = Field(
        Decimal(2), ge=0, description="A pending case this near its deadline is auto-assigned."
    )
    review_jobs_enabled: bool = Field(
        False,
        description="Additionally run the review jobs (cases, SLA, auto-assign, notifications, "
        "webhooks) inside the API process, for a single-process deployment; they run in a "
        "process of their own otherwise (`python -m services.gateway.review.main`).",
    )
    review_job_seconds: float = Field(10.0, gt=0, description="How often the review jobs run.")
    review_republish_seconds: float = Field(
        300.0,
        gt=0,
        description=(
            "A case opening or auto decision published but not yet in the read models is not"
            " published again for this long (a lagging projector is not fed its backlog again)."
        ),
    )
    notification_lookback_hours: Decimal = Field(
        Decimal(24), gt=0, description="Runs finished this recently are notified of."
    )
    webhook_timeout_seconds: float = Field(
        10.0, gt=0, description="How long one webhook POST may take."
    )
    webhook_max_attempts: int = Field(
        8, ge=1, description="Webhook POSTs tried before a delivery is marked failed."
    )
    webhook_backoff_seconds: float = Field(
        30.0, gt=0, description="Wait before the first webhook retry; doubles each time (1 h cap)."
    )

    projector_max_records: int = Field(
        200, gt=0, description="Kafka records the projector writes in one transaction."
    )
    projector_chunk_bytes: int = Field(
        16 * 1024 * 1024,
        gt=0,
        description="A chunk stops growing once its records' values reach this many bytes "
        "(memory stays bounded behind a backlog of large records).",
    )
    projector_poll_ms: int = Field(200, gt=0, description="How long one poll waits for records.")
    projector_fetch_max_bytes: int = Field(
        16 * 1024 * 1024,
        gt=0,
        description="Bytes (compressed) one fetch brings at most.",
    )
    projector_partition_fetch_bytes: int = Field(
        1024 * 1024,
        gt=0,
        description="Bytes (compressed) one fetch brings of a partition at most. The consumer "
        "keeps what it fetched of every partition until it is read, so its memory is about this "
        "times the partitions behind: replaying a million scored loans peaked at 485 MB with "
        "4 MiB (and 64 MiB fetches), 300-319 MB with 1 MiB, at the same speed.",
    )
    projector_fetch_min_bytes: int = Field(
        1024 * 1024,
        gt=0,
        description="A fetch waits for this many bytes (or `projector_fetch_wait_ms`): during a "
        "run the projector writes a few large chunks, not one transaction per batch.",
    )
    projector_fetch_wait_ms: int = Field(
        100, ge=0, description="The longest a fetch waits for `projector_fetch_min_bytes`."
    )
    projector_bulk_records: int = Field(
        500,
        gt=0,
        description="A replay from nothing of at least this many records drops the loan tables' "
        "secondary indexes and builds them again once caught up.",
    )

    # Hardening (SPEC §5): security headers, request body limits, rate limits.
    hsts_seconds: int = Field(
        0, ge=0, description="Strict-Transport-Security max-age; 0 sends none (plain HTTP)."
    )
    max_body_bytes: int = Field(
        1024 * 1024, gt=0, description="Largest request body outside uploads (413 beyond)."
    )
    rate_limit_enabled: bool | None = Field(
        None, description="Whether rate limits apply; unset: everywhere but `environment=test`."
    )
    rate_limit_storage: str = Field(
        "memory://",
        description=(
            "`limits` storage URI; `redis://host:6379` lets replicas share limits (while it is"
            " down, requests go unlimited and each logs an error; an unusable URI stops startup)."
        ),
    )
    rate_limit_login: str = Field("10/minute", description="Logins per client IP.")
    forwarded_allow_ips: str | None = Field(
        None,
        description=(
            "Proxies trusted to say who the client is (X-Forwarded-For/-Proto): comma-separated"
            " addresses or networks, `*` for any. Unset: none, the peer address is the client"
            " (so the per-IP login limit cannot be dodged with a made-up header)."
        ),
    )
    rate_limit_runs: str = Field("5/minute", description="Pipeline run requests per user.")
    rate_limit_uploads: str = Field("20/minute", description="File uploads per user.")
    rate_limit_api: str = Field("100/minute", description="Other API requests per user.")

    @model_validator(mode="after")
    def _require_secret_in_production(self) -> "GatewaySettings":
        if self.jwt_secret is None and self.environment == "production":
            raise ValueError("GATEWAY_JWT_SECRET must be set in production")
        return self

    @property
    def rate_limited(self) -> bool:
        """Whether rate limits apply: as configured, else everywhere but the `test` environment
        (where one client makes every request of a suite)."""
        if self.rate_limit_enabled is None:
            return self.environment != "test"
        return self.rate_limit_enabled

    @property
    def signing_key(self) -> str:
        """The JWT key: the configured secret, else this process's random one."""
        return (self.jwt_secret or _EPHEMERAL_SECRET).get_secret_value()

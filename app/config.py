"""Settings, read once from the environment (prefix ``PROXY_``) and an optional ``.env`` file.

Nothing here runs at import time: call :func:`get_settings` (cached) or build ``Settings(...)``
directly in tests and pass it to ``create_app``. Secrets are ``SecretStr`` so that they never
appear in ``repr()`` or log lines; ECS injects them from Secrets Manager by ``valueFrom``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

FallbackPolicy = Literal["anthropic_first", "bedrock_only", "anthropic_only"]


class Settings(BaseSettings):
    """Every knob of the proxy. Units are in the names (``_s`` seconds, ``_bytes`` bytes)."""

    model_config = SettingsConfigDict(env_prefix="PROXY_", env_file=".env", extra="ignore")

    # --- upstream: Anthropic -------------------------------------------------------------
    anthropic_base_url: str = "https://api.anthropic.com"
    connect_timeout_s: float = Field(10.0, gt=0)
    # Claude Code itself waits 600 s for a response; a shorter read timeout would cut long thinking turns.
    read_timeout_s: float = Field(600.0, gt=0)
    max_request_body_bytes: int = Field(32 * 1024 * 1024, gt=0)  # Anthropic's own 32 MB limit
    max_upstream_connections: int = Field(1000, gt=0)

    # --- store ------------------------------------------------------------------------------
    mongodb_url: SecretStr | None = None  # unset: embedded in-process store (mongomock-motor), lost on exit
    mongodb_database: str = "claude_code_proxy"

    # --- secrets and admin -------------------------------------------------------------------
    secret_key: SecretStr | None = None  # HMAC pepper for access keys; signing key for admin tokens/cookies
    admin_username: str = "admin"
    admin_password: SecretStr | None = None
    admin_token_ttl_s: int = Field(12 * 3600, gt=0)
    public_base_url: str | None = None  # how clients reach the proxy, for printed snippets
    # Dashboard cookie's Secure flag. Unset: Secure exactly when the request came over HTTPS (the
    # scheme uvicorn reports; behind a load balancer run `serve --proxy-headers --forwarded-allow-ips`).
    # true: always Secure (browsers then drop it on plain HTTP except localhost); false: never.
    cookie_secure: bool | None = None

    # --- access keys ------------------------------------------------------------------------
    key_cache_ttl_s: float = Field(30.0, ge=0, le=30)
    key_rotate_grace_s: int = Field(0, ge=0)
    last_used_write_interval_s: float = Field(60.0, ge=0)

    # --- usage write path -------------------------------------------------------------------
    usage_flush_interval_s: float = Field(1.0, gt=0)
    usage_batch_size: int = Field(500, gt=0)
    usage_queue_max: int = Field(100_000, gt=0)
    usage_event_ttl_days: int = Field(90, gt=0)
    pricing_overrides: dict[str, dict[str, float]] = Field(default_factory=dict)  # see docs/usage.md
    usage_minute_bucket_ttl_days: int = Field(3, gt=0)
    usage_hour_bucket_ttl_days: int = Field(93, gt=0)  # also bounds day/week/month views outside UTC
    usage_retry_max_backoff_s: float = Field(30.0, gt=0)
    usage_sweep_interval_s: float = Field(300.0, gt=0)  # finish batches a crashed replica left half-folded
    usage_sweep_grace_s: float = Field(3600.0, gt=0)
    quotas_enabled: bool = True
    quota_cache_ttl_s: float = Field(1.0, ge=0)  # reuse of a store read of window usage
    quota_store_timeout_s: float = Field(1.0, gt=0)  # per store call on the request path; then fail open

    # --- Bedrock fallback -------------------------------------------------------------------
    bedrock_region: str = "us-east-1"
    bedrock_endpoint_url: str | None = None  # override for tests / VPC endpoints
    bedrock_connect_timeout_s: float = Field(10.0, gt=0)
    bedrock_read_timeout_s: float = Field(600.0, gt=0)
    bedrock_inference_profile_prefix: str = "us"  # us | eu | apac | global
    bedrock_model_map: dict[str, str] = Field(default_factory=dict)  # Anthropic id -> Bedrock id / profile
    bedrock_ping_interval_s: float = Field(10.0, gt=0)  # SSE ping while Bedrock is silent
    kms_key_id: str | None = None  # unset: Bedrock API keys encrypted with a key derived from secret_key
    kms_endpoint_url: str | None = None
    force_fallback: bool = False  # send every request to Bedrock (testing)
    default_fallback_policy: FallbackPolicy = "anthropic_first"
    fallback_on_auth_errors: bool = False  # 401/403 from Anthropic go to Bedrock too
    cooldown_default_s: float = Field(60.0, gt=0)
    cooldown_max_s: float = Field(3600.0, gt=0)
    circuit_failure_threshold: int = Field(3, gt=0)
    circuit_window_s: float = Field(30.0, gt=0)
    circuit_open_s: float = Field(30.0, gt=0)
    cooldown_cache_ttl_s: float = Field(2.0, ge=0)

    # --- store outages, admin sessions, API docs (issue 10, branch authstore) ----------------
    # Known access keys keep working from their last good lookup this long while the store fails.
    key_stale_grace_s: float = Field(900.0, ge=0)
    # `serve` waits this long for an unreachable store at start (ping with backoff), then exits 1.
    store_startup_timeout_s: float = Field(30.0, ge=0)
    api_docs_enabled: bool = False  # /docs, /redoc and /openapi.json

    # --- operations -------------------------------------------------------------------------
    log_level: str = "INFO"
    metrics_token: SecretStr | None = None  # bearer token for /metrics; unset: /metrics only from loopback

    @field_validator("anthropic_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def embedded_store(self) -> bool:
        """True when no MongoDB URL is set and the in-process mongomock-motor store is used."""
        return self.mongodb_url is None


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first call."""
    return Settings()

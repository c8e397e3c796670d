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
    # Anthropic upstream (the Messages API's base URL).
    anthropic_base_url: str = "https://api.anthropic.com"
    # Upstream connect timeout, TCP + TLS (s).
    connect_timeout_s: float = Field(10.0, gt=0)
    # Claude Code itself waits 600 s for a response; a shorter read timeout would cut long thinking turns.
    read_timeout_s: float = Field(600.0, gt=0)
    max_request_body_bytes: int = Field(32 * 1024 * 1024, gt=0)  # Anthropic's own 32 MB limit
    # Pooled connections to Anthropic per replica.
    max_upstream_connections: int = Field(1000, gt=0)

    # --- store ------------------------------------------------------------------------------
    mongodb_url: SecretStr | None = None  # unset: embedded in-process store (mongomock-motor), lost on exit
    # Database name.
    mongodb_database: str = "claude_code_proxy"

    # --- secrets and admin -------------------------------------------------------------------
    secret_key: SecretStr | None = None  # HMAC pepper for access keys; signing key for admin tokens/cookies
    # The local admin account's login.
    admin_username: str = "admin"
    # The local admin password, stored as an argon2id hash; generated on the embedded store, required otherwise.
    admin_password: SecretStr | None = None
    # Admin bearer token and dashboard session lifetime (s).
    admin_token_ttl_s: int = Field(12 * 3600, gt=0)
    public_base_url: str | None = None  # how clients reach the proxy, for printed snippets
    # Dashboard cookie's Secure flag. Unset: Secure exactly when the request came over HTTPS (the
    # scheme uvicorn reports; behind a load balancer run `serve --proxy-headers --forwarded-allow-ips`).
    # true: always Secure (browsers then drop it on plain HTTP except localhost); false: never.
    cookie_secure: bool | None = None

    # --- access keys ------------------------------------------------------------------------
    # In-process access-key cache (≤ 30 s); rotate/revoke drop an entry at once on the replica that did it.
    key_cache_ttl_s: float = Field(30.0, ge=0, le=30)
    # How long a rotated key keeps working (s).
    key_rotate_grace_s: int = Field(0, ge=0)
    # `last_used_at` is written at most this often per key (s).
    last_used_write_interval_s: float = Field(60.0, ge=0)

    # --- usage write path -------------------------------------------------------------------
    # Usage events are written in batches at least this often (s).
    usage_flush_interval_s: float = Field(1.0, gt=0)
    # Usage events per write.
    usage_batch_size: int = Field(500, gt=0)
    # Bounded in-memory usage queue (events); past it events are dropped and counted.
    usage_queue_max: int = Field(100_000, gt=0)
    # Raw usage events retention (days; buckets are kept by their own TTLs).
    usage_event_ttl_days: int = Field(90, gt=0)
    pricing_overrides: dict[str, dict[str, float]] = Field(default_factory=dict)  # see docs/usage.md
    # Minute buckets retention (days).
    usage_minute_bucket_ttl_days: int = Field(3, gt=0)
    usage_hour_bucket_ttl_days: int = Field(93, gt=0)  # also bounds day/week/month views outside UTC
    # Cap of the backoff between retries of a failed usage write (s).
    usage_retry_max_backoff_s: float = Field(30.0, gt=0)
    usage_sweep_interval_s: float = Field(300.0, gt=0)  # finish batches a crashed replica left half-folded
    # A batch left half-folded this long is finished by the sweep (s).
    usage_sweep_grace_s: float = Field(3600.0, gt=0)
    # Check per-key and per-user limits (docs/usage.md#quotas-and-rate-limits).
    quotas_enabled: bool = True
    quota_store_timeout_s: float = Field(1.0, gt=0)  # per store call on the request path; then fail open
    # --- Quota leases (app/usage/lease_book.py; docs/usage.md "Quotas and rate limits") ---------
    quota_lease_ttl_s: float = Field(30.0, gt=0)  # a replica renews its slice of a counter this often
    quota_lease_slice_fraction: float = Field(0.1, gt=0, le=1)  # largest slice, as a share of the limit
    quota_sync_interval_s: float = Field(1.0, gt=0)  # background: report spent counts, return expired leases
    quota_degraded_s: float = Field(10.0, gt=0)  # after a store error, count locally this long

    # --- Bedrock fallback -------------------------------------------------------------------
    # Bedrock region.
    bedrock_region: str = "us-east-1"
    bedrock_endpoint_url: str | None = None  # override for tests / VPC endpoints
    # Bedrock connect timeout (s).
    bedrock_connect_timeout_s: float = Field(10.0, gt=0)
    # Longest silence from Bedrock (s).
    bedrock_read_timeout_s: float = Field(600.0, gt=0)
    bedrock_inference_profile_prefix: str = "us"  # us | eu | apac | global
    bedrock_model_map: dict[str, str] = Field(default_factory=dict)  # Anthropic id -> Bedrock id / profile
    bedrock_ping_interval_s: float = Field(10.0, gt=0)  # SSE ping while Bedrock is silent
    kms_key_id: str | None = None  # unset: Bedrock API keys encrypted with a key derived from secret_key
    # KMS endpoint override (tests, VPC endpoints).
    kms_endpoint_url: str | None = None
    force_fallback: bool = False  # send every request to Bedrock (testing)
    # Fallback policy for keys without their own: anthropic_first, bedrock_only or anthropic_only.
    default_fallback_policy: FallbackPolicy = "anthropic_first"
    fallback_on_auth_errors: bool = False  # 401/403 from Anthropic go to Bedrock too
    # Cooldown after a 429 that names no time (s).
    cooldown_default_s: float = Field(60.0, gt=0)
    # Longest cooldown, whatever retry-after says (s).
    cooldown_max_s: float = Field(3600.0, gt=0)
    # 5xx/529/timeouts per credential within circuit_window_s that open the circuit.
    circuit_failure_threshold: int = Field(3, gt=0)
    # Window for counting circuit failures (s).
    circuit_window_s: float = Field(30.0, gt=0)
    # How long an open circuit sends a credential's requests to Bedrock (s).
    circuit_open_s: float = Field(30.0, gt=0)
    # In-process cache of the shared cooldown state (s).
    cooldown_cache_ttl_s: float = Field(2.0, ge=0)

    # --- store outages, admin sessions, API docs (issue 10, branch authstore) ----------------
    # Known access keys keep working from their last good lookup this long while the store fails.
    key_stale_grace_s: float = Field(900.0, ge=0)
    # `serve` waits this long for an unreachable store at start (ping with backoff), then exits 1.
    store_startup_timeout_s: float = Field(30.0, ge=0)
    api_docs_enabled: bool = False  # /docs, /redoc and /openapi.json
    # --- deployment (infra/: set by the Pulumi program's task definition) ---------------------
    # uvicorn's keep-alive; behind a load balancer it must exceed the LB's idle timeout (the stack
    # sets ALB idle + 5 s), or the target closes a connection the LB is about to reuse -> 502.
    keepalive_timeout_s: int = Field(75, gt=0)
    # The store URL from parts, used when mongodb_url is unset and mongodb_host is set
    # (app/store/mongo.py store_url): the password comes from its own secret, so a rotated password
    # reaches new tasks without a second copy in a URL secret.
    mongodb_host: str | None = None
    # Port of PROXY_MONGODB_HOST.
    mongodb_port: int = Field(27017, gt=0, lt=65536)
    # User for the URL built from PROXY_MONGODB_HOST (the stack's application user).
    mongodb_username: str | None = None
    # Its password (from its own secret, read at every start).
    mongodb_password: SecretStr | None = None
    mongodb_options: str = ""  # URL query, e.g. "tls=true&replicaSet=rs0&retryWrites=false"
    mongodb_max_pool_size: int | None = Field(None, gt=0)  # per server; unset: the driver's 100
    # Region of the KMS key that seals Bedrock API keys; unset: bedrock_region (the stack sets its own).
    kms_region: str | None = None
    # --- connection caps (proxy reliability: local limits are not upstream failures) -----------
    # Wait this long for a free pooled connection to Anthropic (of max_upstream_connections), then
    # fall back to Bedrock (reason local_pool_exhausted) or answer 503 overloaded_error.
    upstream_pool_timeout_s: float = Field(10.0, gt=0)
    # Concurrent Bedrock calls and streams per replica. Sized like max_upstream_connections: a 429
    # storm moves every in-flight request of a credential (and a cooldown, all later ones) at once.
    bedrock_max_connections: int = Field(1000, gt=0)
    bedrock_pool_timeout_s: float = Field(10.0, gt=0)  # wait for a free one, then 503 overloaded_error

    # --- InvokeModel as an option (issue 13, branch invoke: app/bedrock/api_choice.py) -------------
    # Models served through InvokeModel with the native body instead of Converse: Anthropic model ids
    # or globs, JSON list (e.g. ["claude-opus-*"]); empty: Converse for all (docs/translation.md#invokemodel).
    bedrock_invoke_models: list[str] = Field(default_factory=list)
    # Models (ids or globs, JSON list; ["*"]: all) whose requests Converse cannot carry (tool search:
    # defer_loading tools, as Claude Code sends) go to InvokeModel, if Bedrock has tool search for the model.
    bedrock_invoke_when_needed_models: list[str] = Field(default_factory=list)

    # --- single sign-on (issue 17, branch sso: app/sso/, docs/sso.md) --------------------------
    # OIDC authorization code + PKCE. Unset issuer: no SSO (the local admin password only).
    # Needs public_base_url: the one redirect URI is {public_base_url}/auth/oidc/callback.
    oidc_issuer: str | None = None  # discovery at {issuer}/.well-known/openid-configuration
    # The OIDC client id registered at the IdP (docs/sso.md).
    oidc_client_id: str | None = None
    # The OIDC client secret.
    oidc_client_secret: SecretStr | None = None
    # Scopes asked of the IdP.
    oidc_scopes: str = "openid email profile"
    oidc_groups_claim: str = "groups"  # ID token (or userinfo) claim with the person's IdP groups
    oidc_admin_groups: str = ""  # comma-separated IdP groups whose members are dashboard admins
    # IdP group -> proxy group(s), JSON: {"eng-all": "engineering", "ml": ["engineering", "research"]}.
    # Empty: proxy groups = IdP groups. Set: only mapped groups, unmapped IdP groups are dropped.
    oidc_group_map: dict[str, str | list[str]] = Field(default_factory=dict)
    # Comma-separated e-mail domains allowed to sign in (empty: whoever the IdP lets through). Set
    # it for IdPs that do not restrict the app to assigned people (Google outside "Internal" apps).
    oidc_allowed_email_domains: str = ""
    oidc_local_admin_enabled: bool = True  # break-glass admin password (false: SSO only)
    oidc_session_idle_timeout_s: int = Field(1800, gt=0)  # SSO sessions end after this long unused
    oidc_http_timeout_s: float = Field(10.0, gt=0)  # discovery, JWKS, token and userinfo calls
    oidc_jwks_cache_ttl_s: float = Field(3600.0, ge=0)  # signing keys kept; an unknown kid refetches
    oidc_jwks_min_refetch_s: float = Field(10.0, ge=0)  # at most one unknown-kid refetch this often
    oidc_clock_leeway_s: int = Field(60, ge=0, le=300)  # for exp / iat / nbf
    self_service_enabled: bool = True  # /me: developers create, rotate and revoke their own keys
    self_service_max_keys: int = Field(3, ge=0)  # active keys per user that /me may hold

    # --- team governance (issue 14, branch govern: app/governance/, docs/governance.md) ---------
    org_time_zone: str = "UTC"  # IANA zone of the spend-limit periods (daily / weekly / monthly)
    spend_limits_fail_closed: bool = False  # true: a store error refuses capped requests (503), not admits
    alert_webhook_url: SecretStr | None = None  # Slack-compatible incoming webhook for spend alerts
    alert_check_interval_s: float = Field(5.0, gt=0)  # how often touched spend counters are checked
    governance_refresh_s: float = Field(5.0, gt=0)  # reload of the groups / spend-limits tables

    # --- pricing (issue 14 section 1, branch pricing: app/usage/pricing.py, docs/usage.md) -------
    # A model with no price in any layer (admin overrides > pricing_overrides > shipped table) is
    # billed at this conservative tier (USD per million tokens; cache rates follow input), flagged
    # cost_estimated and logged once per id. Never 0: an unknown model must not spend for free.
    unknown_model_input_usd_per_mtok: float = Field(5.0, gt=0)
    unknown_model_output_usd_per_mtok: float = Field(25.0, gt=0)  # output tokens of an unknown model (USD per million)
    price_refresh_s: float = Field(30.0, gt=0)  # how often a replica re-reads admin price overrides

    # --- operations -------------------------------------------------------------------------
    # Log level (JSON lines on stdout).
    log_level: str = "INFO"
    metrics_token: SecretStr | None = None  # bearer token for /metrics; unset: /metrics only from loopback

    @field_validator("anthropic_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def embedded_store(self) -> bool:
        """True when neither a MongoDB URL nor a host is set and the in-process mongomock-motor store is used."""
        return self.mongodb_url is None and self.mongodb_host is None


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first call."""
    return Settings()

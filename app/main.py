"""``create_app(settings=None) -> FastAPI``: routes, error handlers, and a lifespan that opens
(and on shutdown drains and closes) the store, the upstream client and the usage recorder."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from app.admin.model_map import ModelMapAdmin
from app.admin.lifecycle_routes import router as lifecycle_router
from app.admin.routes import router as admin_router
from app.admin.service import AdminService
from app.auth.access import AccessKeyResolver
from app.auth.admin import AdminAuth
from app.auth.metrics import watch_auth
from app.bedrock.api_choice import ApiChoice
from app.bedrock.clients import BedrockClients
from app.bedrock.credentials import BedrockKeys
from app.bedrock.models import MODELS
from app.bedrock.runtime import BedrockRuntime
from app.bootstrap import ConfigError, embedded_banner, print_banner, resolve_secrets
from app.config import Settings, get_settings
from app.crypto.envelope import make_cipher
from app.errors import ApiError, InvalidRequest, NotFound, ProxyError, error_body
from app.governance import build_governance
from app.governance.http import RequestIdMiddleware
from app.governance.routes import router as governance_router
from app.proxy.anthropic import AnthropicUpstream
from app.proxy.asgi import MessagesASGI
from app.proxy.bedrock import BedrockUpstream
from app.proxy.cooldowns import CooldownTracker
from app.proxy.drain import Drain, DrainMiddleware
from app.proxy.forward import FallbackOptions, Forwarder
from app.proxy.responses import error_response
from app.proxy.routes import router as proxy_router
from app.services import Services
from app.sso import build_sso
from app.sso.me import router as me_router
from app.sso.routes import router as sso_router
from app.store.access_keys import AccessKeyRepository
from app.store.audit import INDEXES as AUDIT_INDEXES
from app.store.audit import AuditRepository
from app.store.cooldowns import INDEXES as COOLDOWN_INDEXES
from app.store.cooldowns import CooldownRepository
from app.store.leases import INDEXES as LEASE_INDEXES
from app.store.leases import LeaseRepository
from app.store.model_map import ModelMapCache, ModelMapRepository
from app.store.admins import INDEXES as ADMIN_INDEXES
from app.store.admins import AdminRepository, AdminSessionRepository, LoginAttemptRepository
from app.store.mongo import (STORE_ERRORS, StoreUnreachable, describe_store_error, ensure_indexes, open_store,
                             redact_url, store_url)
from app.store.usage import ensure_usage_indexes
from app.store.usage_reads import UsageReader
from app.store.usage_write import UsageWriter
from app.store.users import UserRepository
from app.ui.routes import router as ui_router
from app.usage.admission import QuotaAdmission
from app.records.buckets import Retention
from app.usage.lease_book import LeaseBook
from app.usage.ledger import PendingUsage
from app.usage.metrics import InFlightMiddleware, ProxyMetrics
from app.usage.pricing import Price, PriceTable
from app.usage.recorder import UsageRecorder
from app.usage.routes import router as usage_router

log = logging.getLogger(__name__)

READY_PING_TIMEOUT_S = 2.0


async def build_services(settings: Settings, *, metrics: ProxyMetrics | None = None,
                         drain: Drain | None = None) -> Services:
    """Open everything one app instance needs. Raises ConfigError for missing secrets or bad
    ``pricing_overrides``. ``metrics``: the app's registry (created here when not given);
    ``drain``: the app's shutdown state (see app/proxy/drain.py)."""
    secrets = resolve_secrets(settings)
    try:
        pricing = PriceTable(settings.pricing_overrides, unknown_price=Price.of(
            settings.unknown_model_input_usd_per_mtok, settings.unknown_model_output_usd_per_mtok))
    except ValueError as exc:
        raise ConfigError(f"PROXY_PRICING_OVERRIDES: {exc}") from None
    try:
        url = store_url(settings)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    store = open_store(url, settings.mongodb_database, max_pool_size=settings.mongodb_max_pool_size)
    try:
        await ensure_indexes(store.db, {**COOLDOWN_INDEXES, **ADMIN_INDEXES, **LEASE_INDEXES,
                                        **AUDIT_INDEXES})
        await ensure_usage_indexes(store.db, event_ttl_days=settings.usage_event_ttl_days)
    except STORE_ERRORS as exc:
        store.close()
        raise StoreUnreachable(f"cannot prepare the store at {redact_url(url or '')} "
                               f"({describe_store_error(exc)}); check PROXY_MONGODB_URL") from None
    users, keys = UserRepository(store.db), AccessKeyRepository(store.db)
    usage = UsageWriter(store.db, retention=Retention(minute_days=settings.usage_minute_bucket_ttl_days,
                                                     hour_days=settings.usage_hour_bucket_ttl_days))
    audit = AuditRepository(store.db)
    resolver = AccessKeyResolver(keys, users, secrets.secret_key, cache_ttl_s=settings.key_cache_ttl_s,
                                 last_used_interval_s=settings.last_used_write_interval_s,
                                 stale_grace_s=settings.key_stale_grace_s)
    admin_auth = AdminAuth(AdminRepository(store.db), AdminSessionRepository(store.db),
                           LoginAttemptRepository(store.db), settings.admin_username, secrets.secret_key,
                           token_ttl_s=settings.admin_token_ttl_s)
    try:
        await admin_auth.ensure_account(secrets.admin_password)
    except STORE_ERRORS as exc:
        store.close()
        raise StoreUnreachable(f"cannot read the admin account from the store at {redact_url(url or '')} "
                               f"({describe_store_error(exc)})") from None
    upstream = AnthropicUpstream(settings.anthropic_base_url, connect_timeout_s=settings.connect_timeout_s,
                                 read_timeout_s=settings.read_timeout_s,
                                 max_connections=settings.max_upstream_connections,
                                 pool_timeout_s=settings.upstream_pool_timeout_s)
    metrics = metrics or ProxyMetrics()
    metrics.pricing = pricing
    pending = PendingUsage()

    async def sweep() -> int:
        return await usage.sweep(grace_s=settings.usage_sweep_grace_s)

    recorder = UsageRecorder(usage.write_batch, batch_size=settings.usage_batch_size,
                             flush_interval_s=settings.usage_flush_interval_s, queue_max=settings.usage_queue_max,
                             max_backoff_s=settings.usage_retry_max_backoff_s, price=pricing.price_event,
                             observers=(metrics.observe,), ledger=pending, sweep=sweep,
                             sweep_interval_s=settings.usage_sweep_interval_s,
                             dead_letter=usage.dead_letter)  # issue 10: unwritable events go here
    metrics.watch(recorder)
    usage_reader = UsageReader(store.db)
    quotas = QuotaAdmission(usage_reader, quota_leases(settings, LeaseRepository(store.db)), pending, pricing=pricing,
                            store_timeout_s=settings.quota_store_timeout_s,
                            on_reject=metrics.quota_rejected) if settings.quotas_enabled else None
    governance = await build_governance(settings, db=store.db, users=users, access_keys=keys, usage=usage_reader,
                                        audit=audit, resolver=resolver, pricing=pricing,
                                        secret_key=secrets.secret_key)  # groups, spend limits (issue 14)
    cipher = make_cipher(secrets.secret_key, kms_key_id=settings.kms_key_id,
                         region=settings.kms_region or settings.bedrock_region,
                         kms_endpoint_url=settings.kms_endpoint_url)
    bedrock_runtime = BedrockRuntime(BedrockClients(
        settings.bedrock_region, endpoint_url=settings.bedrock_endpoint_url,
        connect_timeout_s=settings.bedrock_connect_timeout_s, read_timeout_s=settings.bedrock_read_timeout_s,
        max_connections=settings.bedrock_max_connections, pool_timeout_s=settings.bedrock_pool_timeout_s))
    metrics.watch_bedrock(bedrock_runtime.clients)
    model_map_repo = ModelMapRepository(store.db)
    model_map = ModelMapCache(model_map_repo, settings.bedrock_model_map)
    bedrock_keys = BedrockKeys(keys, cipher)
    bedrock = BedrockUpstream(bedrock_runtime, bedrock_keys, model_map=model_map,
                              profile_prefix=settings.bedrock_inference_profile_prefix,
                              ping_interval_s=settings.bedrock_ping_interval_s, drain=drain,
                              api_choice=ApiChoice(tuple(settings.bedrock_invoke_models),
                                                   tuple(settings.bedrock_invoke_when_needed_models)))
    services = Services(
        settings=settings, store=store, users=users, access_keys=keys, usage=usage, audit=audit,
        admin=AdminService(users, keys, audit, resolver, secrets.secret_key,
                           rotate_grace_s=settings.key_rotate_grace_s, cipher=cipher,
                           on_bedrock_key_change=bedrock_keys.forget, admin_auth=admin_auth),
        resolver=resolver, admin_auth=admin_auth, upstream=upstream, recorder=recorder,
        forwarder=Forwarder(upstream, recorder, secret_key=secrets.secret_key, admission=governance.admission(quotas),
                            bedrock=bedrock,
                            cooldowns=CooldownTracker(CooldownRepository(store.db),
                                                      cache_ttl_s=settings.cooldown_cache_ttl_s,
                                                      failure_threshold=settings.circuit_failure_threshold,
                                                      window_s=settings.circuit_window_s,
                                                      open_s=settings.circuit_open_s),
                            options=fallback_options(settings), drain=drain),
        secret_key=secrets.secret_key, metrics=metrics, pricing=pricing, quotas=quotas,
        bedrock_runtime=bedrock_runtime, cipher=cipher,
        model_map=ModelMapAdmin(model_map_repo, model_map, audit, settings_map=settings.bedrock_model_map,
                                profile_prefix=settings.bedrock_inference_profile_prefix,
                                known_models=tuple(MODELS)), governance=governance)
    await _add_governance(services, pricing)  # issue 14: price overrides, user lifecycle
    services.sso = await build_sso(settings, services)  # single sign-on (app/sso); None without PROXY_OIDC_ISSUER
    if services.sso is not None:
        # SSO groups -> the proxy's group ids; with an explicit group map, missing targets are created.
        services.sso.group_ids = partial(governance.groups.ids_for, create_missing=bool(settings.oidc_group_map))
    watch_auth(metrics.registry, services)
    if store.embedded:
        log.warning("embedded in-memory store: all data is lost on exit; set PROXY_MONGODB_URL")
        await _seed_demo(services, generated_password=secrets.admin_password if secrets.generated else None)
    return services


async def _add_governance(services: Services, pricing: PriceTable) -> None:
    """Issue 14 sections 1 and 4 (branch pricing): the unique e-mail and session indexes, admin
    price overrides (loaded now, refreshed every ``price_refresh_s``) and the user lifecycle."""
    from app.admin.lifecycle import UserLifecycle
    from app.admin.pricing import PricingAdmin
    from app.store.prices import PriceRepository
    from app.store.reports import INDEXES as REPORT_INDEXES
    from app.store.users import DuplicateEmails, ensure_user_indexes

    db = services.store.db
    try:
        await ensure_user_indexes(db)
    except DuplicateEmails as exc:
        services.store.close()
        raise ConfigError(str(exc)) from None
    await ensure_indexes(db, REPORT_INDEXES)
    services.pricing_admin = PricingAdmin(PriceRepository(db), pricing, services.audit,
                                          refresh_s=services.settings.price_refresh_s)
    await services.pricing_admin.refresh()
    services.pricing_admin.start()
    services.lifecycle = UserLifecycle(services.admin, services.secret_key)


def quota_leases(settings: Settings, repo: LeaseRepository) -> LeaseBook:
    return LeaseBook(repo, lease_ttl_s=settings.quota_lease_ttl_s, slice_fraction=settings.quota_lease_slice_fraction,
                     sync_interval_s=settings.quota_sync_interval_s, store_timeout_s=settings.quota_store_timeout_s,
                     degraded_s=settings.quota_degraded_s)


def fallback_options(settings: Settings) -> FallbackOptions:
    return FallbackOptions(default_policy=settings.default_fallback_policy, force_fallback=settings.force_fallback,
                           fallback_on_auth_errors=settings.fallback_on_auth_errors,
                           cooldown_default_s=settings.cooldown_default_s, cooldown_max_s=settings.cooldown_max_s)


async def _seed_demo(services: Services, *, generated_password: str | None) -> None:
    from app.admin.service import Actor

    system = Actor(username="system", ip=None)
    # e-mails are unique: a second app on the same embedded store (tests) reuses the demo user
    user = (await services.users.find_by_email("demo@example.com")
            or await services.admin.create_user(system, "demo", "demo@example.com"))
    issued = await services.admin.create_key(system, user["_id"], name="demo")
    services.demo_access_key = issued.key  # type: ignore[attr-defined]
    base_url = services.settings.public_base_url or "http://127.0.0.1:8080"
    print_banner(embedded_banner(base_url=base_url, access_key=issued.key,
                                 admin_username=services.settings.admin_username,
                                 admin_password=generated_password))


async def close_services(services: Services) -> None:
    """Graceful shutdown: flush usage, then close clients."""
    if services.quotas is not None:
        await services.quotas.aclose()  # give quota leases back before the usage flush
    if services.governance is not None:
        await services.governance.aclose()  # spend leases back, pending alerts sent
    await services.recorder.aclose()
    await services.forwarder.request_log.aclose()
    if services.pricing_admin is not None:
        await services.pricing_admin.aclose()
    await services.upstream.aclose()
    if services.bedrock_runtime is not None:
        await services.bedrock_runtime.aclose()
    if services.cipher is not None:
        await services.cipher.aclose()
    if services.sso is not None:
        await services.sso.aclose()
    services.store.close()


class ProxyApp(FastAPI):
    """FastAPI with the proxy's own pure-ASGI middlewares *in front of* FastAPI's stack (``front``:
    Drain -> RequestId -> InFlight -> MessagesASGI -> FastAPI). A Messages call is served by
    ``MessagesASGI`` without passing FastAPI's and Starlette's per-request layers (the telemetry
    check, the server-error, exception-telemetry and body-limit middlewares, each wrapping every
    ``send``): ~15-20 us of CPU per request (issue 16). Every other request goes on to FastAPI as before."""

    front: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        scope["app"] = self  # as Starlette sets it: MessagesASGI reads the services from it
        await self.front(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The ASGI app. Tests pass their own ``Settings``; the CLI passes the environment's."""
    settings = settings or get_settings()
    metrics = ProxyMetrics()  # per app, so apps built in one process (tests) never share series
    drain = Drain()  # told by DrainingServer when shutdown begins (app/proxy/drain.py)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await build_services(settings, metrics=metrics, drain=drain)
        app.state.services = services
        services.recorder.start()
        services.forwarder.request_log.start()
        if services.quotas is not None:
            services.quotas.start()
        services.governance.start()
        try:
            yield
        finally:
            drain.close()
            await close_services(services)

    # /docs, /redoc and /openapi.json describe the whole admin API: off unless PROXY_API_DOCS_ENABLED.
    docs = settings.api_docs_enabled
    app = ProxyApp(title="claude-code-proxy", version="0.1.0", lifespan=lifespan,
                  description="Anthropic Messages API proxy with Bedrock fallback. Admin API under /admin.",
                  docs_url="/docs" if docs else None, redoc_url="/redoc" if docs else None,
                  openapi_url="/openapi.json" if docs else None)
    app.include_router(proxy_router)
    app.include_router(admin_router)
    app.include_router(lifecycle_router)  # issue 14: pricing, user delete/import, sessions, usage CSV
    app.include_router(usage_router)
    app.include_router(ui_router)
    app.include_router(sso_router)  # /auth/oidc/login, /auth/oidc/callback
    app.include_router(me_router)  # /me: developer self-service
    app.include_router(governance_router)  # /admin/groups, /v1/organizations/spend_limits, /v1/models
    fastapi_app = partial(FastAPI.__call__, app)
    app.front = DrainMiddleware(  # outermost: it finishes responses it cut
        RequestIdMiddleware(  # request-id on /admin and /v1/organizations responses
            InFlightMiddleware(
                MessagesASGI(fastapi_app),  # POST /v1/messages... served without FastAPI (issue 16)
                metrics=metrics)),
        drain=drain)
    app.state.drain = drain
    _add_ops_routes(app)
    _add_error_handlers(app)
    return app


def _add_ops_routes(app: FastAPI) -> None:
    @app.get("/health", include_in_schema=False)
    async def health() -> Response:
        """Liveness: the process answers. No store call."""
        return JSONResponse({"status": "ok"})

    @app.get("/ready", include_in_schema=False)
    async def ready(request: Request) -> Response:
        """Readiness: the store answers ``ping`` within 2 s (503 ``{"status": "unavailable",
        "store": false}`` otherwise, without waiting for the driver's own timeout)."""
        ok = await request.app.state.services.store.ping(timeout_s=READY_PING_TIMEOUT_S)
        return JSONResponse({"status": "ok" if ok else "unavailable", "store": ok}, status_code=200 if ok else 503)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProxyError)
    async def proxy_error(_: Request, exc: ProxyError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> Response:
        parts = [f"{'.'.join(str(p) for p in err.get('loc', ()) if p != 'body')}: {err.get('msg')}"
                 for err in exc.errors()]
        return error_response(InvalidRequest("; ".join(parts) or "invalid request"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return error_response(NotFound("no such route"))
        return JSONResponse(error_body("invalid_request_error", str(exc.detail)), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> Response:
        log.error("unhandled error: %s", type(exc).__name__, exc_info=exc)
        return error_response(ApiError("internal proxy error"))

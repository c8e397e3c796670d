"""The long-lived objects of one app instance, built in the lifespan and kept on ``app.state``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.admin.model_map import ModelMapAdmin
from app.admin.service import AdminService
from app.auth.access import AccessKeyResolver
from app.auth.admin import AdminAuth
from app.config import Settings
from app.proxy.anthropic import AnthropicUpstream
from app.proxy.forward import Forwarder
from app.store.access_keys import AccessKeyRepository
from app.store.audit import AuditRepository
from app.store.mongo import Store
from app.store.usage import UsageRepository
from app.store.users import UserRepository
from app.usage.metrics import ProxyMetrics
from app.usage.pricing import PriceTable
from app.usage.admission import QuotaAdmission
from app.usage.recorder import UsageRecorder


@dataclass
class Services:
    """Everything a route may need; one instance per app."""

    settings: Settings
    store: Store
    users: UserRepository
    access_keys: AccessKeyRepository
    usage: UsageRepository
    audit: AuditRepository
    admin: AdminService
    resolver: AccessKeyResolver
    admin_auth: AdminAuth
    upstream: AnthropicUpstream
    recorder: UsageRecorder
    forwarder: Forwarder
    secret_key: bytes
    metrics: ProxyMetrics | None = None
    pricing: PriceTable | None = None
    quotas: QuotaAdmission | None = None  # None when settings.quotas_enabled is false
    bedrock_runtime: Any = None  # app.bedrock.runtime.BedrockRuntime
    cipher: Any = None  # app.crypto.envelope.Cipher (Bedrock API keys)
    model_map: ModelMapAdmin | None = None
    sso: Any = None  # app.sso.service.SsoService when PROXY_OIDC_ISSUER is set (single sign-on)
    governance: Any = None  # app.governance.Governance: groups, spend limits, allow-lists, admin API keys
    # issue 14 sections 1 and 4 (branch pricing): price overrides, user lifecycle
    pricing_admin: Any = None  # app.admin.pricing.PricingAdmin
    lifecycle: Any = None  # app.admin.lifecycle.UserLifecycle

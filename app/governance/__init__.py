"""Team governance: groups, USD spend limits, admin API keys, alerts and model allow-lists.

Modules (docs/governance.md):

- ``periods``: daily / weekly / monthly periods in the org time zone (pure);
- ``resolve``: which caps apply to a user (pure);
- ``cache``: this replica's copy of the groups and spend-limits tables (the request path reads only it);
- ``groups``: ``GroupService`` (create, rename, delete, members, allow-lists; audited);
- ``spend``: ``SpendLimitService`` (the ``/v1/organizations/spend_limits`` API, ``effective``, ``audit``);
- ``enforce``: ``SpendAdmission`` (reserve at admission, settle at the end, 429 ``billing_error``);
- ``alerts``: ``AlertWatcher`` + ``WebhookSender`` (thresholds once per period, off the request path);
- ``admin_keys``: ``AdminApiKeys`` (``x-api-key`` for automation, read-only or read-write);
- ``allowlist``: ``ModelPolicy`` (403 before any upstream call; ``GET /v1/models``);
- ``http``: ``RequestIdMiddleware``; ``routes``: the HTTP API.

:func:`build_governance` makes a :class:`Governance` from the app's services; the Forwarder's
admission is :meth:`Governance.admission` (allow-list, then the quotas, then the spend caps).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.config import Settings
    from app.governance.admin_keys import AdminApiKeys
    from app.governance.alerts import AlertWatcher
    from app.governance.allowlist import ModelPolicy
    from app.governance.cache import GovernanceCache
    from app.governance.enforce import SpendAdmission
    from app.governance.groups import GroupService
    from app.governance.spend import SpendLimitService
    from app.proxy.request import ProxyRequest


class Admissions:
    """The Forwarder's ``Admission``: each check in order (allow-list, quotas, spend caps); the
    first refusal raises. Claims made by earlier checks are settled by ``Forwarder.finish``."""

    def __init__(self, *checks: Any) -> None:
        self.checks = [c for c in checks if c is not None]

    async def check(self, preq: ProxyRequest) -> None:
        for check in self.checks:
            await check.check(preq)


@dataclass
class Governance:
    cache: GovernanceCache
    groups: GroupService
    spend: SpendLimitService
    enforcement: SpendAdmission
    alerts: AlertWatcher
    admin_keys: AdminApiKeys
    models: ModelPolicy

    def admission(self, quotas: Any) -> Admissions:
        return Admissions(self.models, quotas, self.enforcement)

    def start(self) -> None:
        self.cache.start()
        self.enforcement.book.start()
        self.alerts.start()

    async def aclose(self) -> None:
        await self.cache.aclose()
        await self.enforcement.book.aclose()
        await self.alerts.aclose()


async def build_governance(settings: Settings, *, db: Any, users: Any, access_keys: Any, usage: Any, audit: Any,
                           resolver: Any, pricing: Any, secret_key: bytes) -> Governance:
    """Open the governance services on the app's store (indexes created; tables loaded, a store
    failure leaves them empty and stale: fail open unless PROXY_SPEND_LIMITS_FAIL_CLOSED)."""
    from app.bootstrap import ConfigError
    from app.governance.admin_keys import AdminApiKeys
    from app.governance.alerts import AlertWatcher, WebhookSender
    from app.governance.allowlist import ModelPolicy
    from app.governance.cache import GovernanceCache
    from app.governance.enforce import SpendAdmission
    from app.governance.groups import GroupService
    from app.governance.periods import zone
    from app.governance.spend import SpendLimitService
    from app.store import admin_api_keys, alert_state, groups, spend_limits
    from app.store.leases import LeaseRepository
    from app.usage.lease_book import LeaseBook
    from app.store.mongo import ensure_indexes

    try:
        tz = zone(settings.org_time_zone)
    except ValueError as exc:
        raise ConfigError(f"PROXY_ORG_TIME_ZONE: {exc}") from None
    await ensure_indexes(db, {**groups.INDEXES, **spend_limits.INDEXES, **admin_api_keys.INDEXES,
                              **alert_state.INDEXES})
    group_repo, limit_repo = groups.GroupRepository(db), spend_limits.SpendLimitRepository(db)
    cache = GovernanceCache(group_repo, limit_repo, refresh_s=settings.governance_refresh_s)
    await cache.load()
    spend = SpendLimitService(limit_repo, group_repo, users, usage, audit, cache, tz=tz)
    book = LeaseBook(LeaseRepository(db), lease_ttl_s=settings.quota_lease_ttl_s,
                          slice_fraction=settings.quota_lease_slice_fraction,
                          sync_interval_s=settings.quota_sync_interval_s,
                          store_timeout_s=settings.quota_store_timeout_s, degraded_s=settings.quota_degraded_s)
    url = settings.alert_webhook_url.get_secret_value() if settings.alert_webhook_url else None
    alerts = AlertWatcher(book, alert_state.AlertStateRepository(db), audit,
                          webhook=WebhookSender(url) if url else None, interval_s=settings.alert_check_interval_s)
    enforcement = SpendAdmission(cache, book, pricing=pricing, spend_of=spend.spend_of, tz=tz,
                                 fail_closed=settings.spend_limits_fail_closed, alerts=alerts)
    return Governance(cache=cache,
                      groups=GroupService(group_repo, users, access_keys, limit_repo, audit, resolver, cache),
                      spend=spend, enforcement=enforcement, alerts=alerts,
                      admin_keys=AdminApiKeys(admin_api_keys.AdminApiKeyRepository(db), audit, secret_key),
                      models=ModelPolicy(cache))

"""Single sign-on (OpenID Connect) for admins and developers: see docs/sso.md.

:func:`build_sso` is called by app/main.py once the other services exist; it returns None when
``PROXY_OIDC_ISSUER`` is unset. Nothing here talks to the IdP before the first sign-in.
"""

from __future__ import annotations

import logging
from typing import Any

from app.bootstrap import ConfigError
from app.config import Settings

log = logging.getLogger(__name__)


async def build_sso(settings: Settings, services: Any) -> Any:
    """-> ``SsoService`` or None. Raises ConfigError for an incomplete configuration. With
    ``oidc_local_admin_enabled`` false, the admin password stops working and every password
    session and token is revoked."""
    from app.sso.oidc import OidcClient
    from app.sso.service import CALLBACK_PATH, SsoService
    from app.sso.sessions import SsoSessions
    from app.store.identities import INDEXES, IdentityRepository, OidcFlowRepository, SsoSessionRepository

    if not settings.oidc_issuer:
        return None
    missing = [name for name, value in (("PROXY_OIDC_CLIENT_ID", settings.oidc_client_id),
                                        ("PROXY_PUBLIC_BASE_URL", settings.public_base_url)) if not value]
    if missing:
        raise ConfigError(f"PROXY_OIDC_ISSUER is set but {' and '.join(missing)} is not")
    if "openid" not in settings.oidc_scopes.split():
        raise ConfigError("PROXY_OIDC_SCOPES must include openid")
    db = services.store.db
    for collection, models in INDEXES.items():
        await db[collection].create_indexes(models)
    secret = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None
    client = OidcClient(issuer=settings.oidc_issuer, client_id=settings.oidc_client_id or "", client_secret=secret,
                        redirect_uri=settings.public_base_url.rstrip("/") + CALLBACK_PATH,  # type: ignore[union-attr]
                        scopes=settings.oidc_scopes, timeout_s=settings.oidc_http_timeout_s,
                        jwks_ttl_s=settings.oidc_jwks_cache_ttl_s, jwks_min_refetch_s=settings.oidc_jwks_min_refetch_s,
                        leeway_s=settings.oidc_clock_leeway_s)
    sessions = SsoSessions(SsoSessionRepository(db), services.users,
                           idle_timeout_s=settings.oidc_session_idle_timeout_s,
                           absolute_ttl_s=settings.admin_token_ttl_s)
    if not settings.oidc_local_admin_enabled:
        services.admin_auth.password_login_enabled = False
        revoked = await services.admin_auth.logout_everywhere()
        log.warning("single sign-on only: the local admin password is disabled (%d session(s) revoked)", revoked)
    return SsoService(settings, client, IdentityRepository(db), OidcFlowRepository(db), sessions, services.admin)

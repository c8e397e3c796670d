"""Sign-in through the IdP, start to finish: :meth:`SsoService.begin` stores the flow and gives the
IdP URL; :meth:`SsoService.finish` takes the flow (once), redeems the code, validates the ID token,
finds or creates the user (just in time) and starts a session.

Users: an identity (issuer + ``sub``) signs in as one user. At its first sign-in the proxy links it
to a user an admin already created with the same e-mail when the IdP says the e-mail is verified
(``email_verified: true``) and exactly one such unlinked user exists; otherwise it creates a user
(audited ``user.create`` with the person as actor). E-mails are unique among identities. Each
sign-in stores the IdP groups (``idp_groups``) and the mapped proxy ``groups`` on the user (as
group ids of the proxy's groups, matched by name or id; unknown ones are dropped).
A user whose ``status`` is not ``active`` is refused, and so is an e-mail outside
``oidc_allowed_email_domains`` when that is set. Every sign-in is audited (``sso.login``), and
every :meth:`SsoService.logout` (``sso.logout``).
Errors: :class:`SignInRefused` (message for the page), ServiceUnavailable when the store fails.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from app.admin.service import Actor, AdminService
from app.config import Settings
from app.errors import ServiceUnavailable
from app.sso.identity import Identity, SignInRefused, identity_from_claims, parse_group_list
from app.sso.oidc import IdpError, OidcClient
from app.sso.sessions import SsoSession, SsoSessions, store_down
from app.sso.tokens import InvalidIdToken
from app.store.identities import IdentityRepository, OidcFlowRepository
from app.store.mongo import STORE_ERRORS

log = logging.getLogger(__name__)

FLOW_TTL_S = 600
CALLBACK_PATH = "/auth/oidc/callback"


@dataclass(frozen=True)
class SignedIn:
    session: SsoSession
    identity: Identity
    user: dict[str, Any]
    next_path: str


class SsoService:
    def __init__(self, settings: Settings, client: OidcClient, identities: IdentityRepository,
                 flows: OidcFlowRepository, sessions: SsoSessions, admin: AdminService) -> None:
        self.settings, self.client, self.sessions = settings, client, sessions
        self._identities, self._flows, self._admin = identities, flows, admin
        self.admin_groups = parse_group_list(settings.oidc_admin_groups)
        # Mapped group names or ids -> the proxy's group ids (app/governance/groups.py ids_for; set by
        # app/main.py). None keeps the mapped names as they are.
        self.group_ids: Callable[[Iterable[str]], Awaitable[list[str]]] | None = None

    async def aclose(self) -> None:
        await self.client.aclose()

    async def begin(self, next_path: str) -> tuple[str, str]:
        """-> (IdP authorization URL, state). IdpError when discovery fails."""
        request = await self.client.authorization_request()
        try:
            await self._flows.create(request.state, nonce=request.nonce, code_verifier=request.code_verifier,
                                     next_path=next_path,
                                     expires_at=datetime.now(UTC) + timedelta(seconds=FLOW_TTL_S))
        except STORE_ERRORS as exc:
            raise store_down(exc) from None
        return request.url, request.state

    async def finish(self, *, state: str, code: str, ip: str | None) -> SignedIn:
        try:
            flow = await self._flows.take(state)
        except STORE_ERRORS as exc:
            raise store_down(exc) from None
        if flow is None:
            raise SignInRefused("This sign-in has expired or was already used. Start again.", status_code=400)
        try:
            claims = await self.client.redeem(code, code_verifier=flow["code_verifier"], nonce=flow["nonce"])
        except InvalidIdToken as exc:
            log.warning("sso: ID token refused: %s", exc)
            raise SignInRefused(f"The identity provider's answer was refused: {exc}.", status_code=401) from None
        except IdpError as exc:
            log.warning("sso: %s", exc)
            raise SignInRefused(f"Sign-in failed: {exc}.", status_code=502) from None
        identity = identity_from_claims(claims, issuer=self.client.issuer, groups_claim=self.settings.oidc_groups_claim,
                                        admin_groups=self.admin_groups, group_map=self.settings.oidc_group_map)
        domains = parse_group_list(self.settings.oidc_allowed_email_domains.lower())
        if domains and identity.email.rsplit("@", 1)[-1].lower() not in domains:
            raise SignInRefused(f"{identity.email} may not sign in here (allowed e-mail domains: "
                                f"{', '.join(sorted(domains))}).")
        actor = Actor(username=identity.actor, ip=ip)
        try:
            user = await self._user_for(identity, actor)
        except STORE_ERRORS as exc:
            raise store_down(exc) from None
        if user.get("status") != "active":
            raise SignInRefused(f"Your account ({identity.email}) is disabled in this proxy. Ask an admin.")
        session = await self.sessions.start(identity, user["_id"], admin=identity.admin)
        try:
            await self._admin.audit.write(actor=identity.actor, ip=ip, action="sso.login", target_type="user",
                                          target_id=user["_id"], details={
                                              "admin": identity.admin, "idp_groups": list(identity.idp_groups),
                                              "groups": list(identity.groups), "next": flow["next"]})
        except STORE_ERRORS as exc:
            raise store_down(exc) from None
        return SignedIn(session=session, identity=identity, user=user, next_path=flow["next"])

    async def logout(self, session: SsoSession, *, ip: str | None, via: str) -> None:
        """End ``session`` (server-side: every copy of its cookie stops working) and audit
        ``sso.logout`` with the person as actor (``details.via``: the page, e.g. ``me``).
        Raises ServiceUnavailable when the store fails."""
        await self.sessions.end(session.session_id)
        try:
            await self._admin.audit.write(actor=session.actor, ip=ip, action="sso.logout", details={"via": via})
        except STORE_ERRORS as exc:
            raise store_down(exc) from None

    async def _user_for(self, identity: Identity, actor: Actor) -> dict[str, Any]:
        known = await self._identities.get(identity.issuer, identity.sub)
        if known is not None:
            user_id = known["user_id"]
            try:
                await self._identities.signed_in(identity.issuer, identity.sub, email=identity.email)
            except DuplicateKeyError:
                raise SignInRefused(f"The e-mail {identity.email} belongs to another account here. "
                                    "Ask an admin.") from None
        else:
            candidates = await self._identities.unlinked_user_by_email(identity.email)
            if len(candidates) == 1 and identity.email_verified:
                user_id = candidates[0]["_id"]
            else:
                user_id = (await self._admin.create_user(actor, identity.name, identity.email))["_id"]
            try:
                await self._identities.create(identity.issuer, identity.sub, user_id=user_id, email=identity.email)
            except DuplicateKeyError:
                raise SignInRefused(f"The e-mail {identity.email} belongs to another account here. "
                                    "Ask an admin.") from None
        user = await self._identities.set_user_sso(user_id, {
            "sso": {"issuer": identity.issuer, "sub": identity.sub}, "email": identity.email,
            "idp_groups": list(identity.idp_groups),
            "groups": await self.group_ids(identity.groups) if self.group_ids else list(identity.groups),
            "last_login_at": datetime.now(UTC)})
        if user is None:
            raise ServiceUnavailable("the user record vanished during sign-in; retry", retry_after_s=1.0)
        return user


def safe_next(value: str | None, default: str = "/me") -> str:
    """Only this proxy's own pages, as a relative path: ``/ui...`` or ``/me...``. Never ``//host``,
    ``/\\host``, a scheme, or control characters (open redirect)."""
    if not value or len(value) > 2000 or any(ord(c) < 0x20 or c == "\\" for c in value):
        return default
    if value.startswith("//") or not value.startswith("/"):
        return default
    if value in ("/ui", "/me") or value.startswith(("/ui/", "/ui?", "/me/", "/me?")):
        return value
    return default

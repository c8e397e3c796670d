"""Who signed in: validated ID token claims -> :class:`Identity` (pure; no I/O).

- ``idp_groups``: the ``groups_claim`` of the claims, a list of strings (a single string counts as
  one group). A dotted name (``realm_access.roles``) is followed into nested objects when no claim
  has the literal name (Cognito's ``cognito:groups`` is a literal name). Missing: no groups.
- ``groups``: proxy groups, through ``group_map`` ({IdP group: proxy group or [proxy groups]});
  with an empty map they are the IdP groups. Sign-in turns them into the proxy's group ids
  (app/governance/groups.py ``ids_for``: by name or id, unknown ones dropped) on the user document,
  where spend limits and model allow-lists read them.
- ``admin``: member of any of ``admin_groups`` (IdP group names, compared exactly).
- ``actor``: ``oidc:<sub> (<email>)``, the name in the audit log.
Errors: :class:`SignInRefused` when the claims carry no e-mail (it identifies the user).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MAX_GROUPS = 500


class SignInRefused(Exception):
    """The person may not sign in (message shown on the page)."""

    def __init__(self, message: str, *, status_code: int = 403) -> None:
        super().__init__(message)
        self.message, self.status_code = message, status_code


@dataclass(frozen=True)
class Identity:
    issuer: str
    sub: str
    email: str
    email_verified: bool
    name: str
    idp_groups: tuple[str, ...]
    groups: tuple[str, ...]
    admin: bool

    @property
    def actor(self) -> str:
        return f"oidc:{self.sub} ({self.email})"


def parse_group_list(value: str) -> frozenset[str]:
    """``"a, b,,c"`` -> {"a", "b", "c"} (PROXY_OIDC_ADMIN_GROUPS)."""
    return frozenset(part.strip() for part in value.split(",") if part.strip())


def claim_groups(claims: Mapping[str, Any], groups_claim: str) -> tuple[str, ...]:
    value: Any = claims.get(groups_claim)
    if value is None and "." in groups_claim:
        value = claims
        for part in groups_claim.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return ()
    return tuple(dict.fromkeys(g for g in value if isinstance(g, str) and g))[:MAX_GROUPS]


def map_groups(idp_groups: Iterable[str], group_map: Mapping[str, str | list[str]]) -> tuple[str, ...]:
    if not group_map:
        return tuple(idp_groups)
    mapped: list[str] = []
    for group in idp_groups:
        target = group_map.get(group)
        mapped.extend([target] if isinstance(target, str) else list(target or ()))
    return tuple(dict.fromkeys(mapped))


def identity_from_claims(claims: Mapping[str, Any], *, issuer: str, groups_claim: str,
                         admin_groups: frozenset[str], group_map: Mapping[str, str | list[str]]) -> Identity:
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise SignInRefused("The identity provider did not send an e-mail address for this account "
                            "(ask for the 'email' scope and claim); the proxy needs it to know who you are.")
    idp_groups = claim_groups(claims, groups_claim)
    name = claims.get("name") if isinstance(claims.get("name"), str) else None
    return Identity(issuer=issuer, sub=str(claims["sub"]), email=email.strip(),
                    email_verified=claims.get("email_verified") is True, name=(name or email).strip(),
                    idp_groups=idp_groups, groups=map_groups(idp_groups, group_map),
                    admin=bool(admin_groups.intersection(idp_groups)))

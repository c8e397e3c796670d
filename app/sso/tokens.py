"""ID token validation over the issuer's JWKS, with caching and key rotation.

Source: OpenID Connect Core 1.0 §3.1.3.7 (https://openid.net/specs/openid-connect-core-1_0.html#IDTokenValidation).
Checks, in order: a JWS signed with one of ``ALLOWED_ALGS`` (never ``none``, never HMAC: an HMAC
key would be the client secret, which this proxy does not sign with) by a key of the issuer's JWKS,
picked by ``kid``; then ``iss`` equal to the issuer, ``aud`` containing the client id (and ``azp``
equal to it when there are several audiences), ``exp`` in the future and ``iat`` present (both
with ``leeway_s`` of clock skew), ``sub`` present, and ``nonce`` equal to the one this proxy sent.

Key rotation: the JWKS is cached ``ttl_s``; a token whose ``kid`` is not in the cached set makes
one refetch at once (issuers publish the new key before signing with it), at most one such
refetch per ``min_refetch_s`` so that tokens with made-up kids cannot make us hammer the issuer.
JWS and claim checks are joserfc's (the JOSE library Authlib is built on).
Errors: :class:`InvalidIdToken`, whose message names the failed check, never the token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from joserfc import jwt
from joserfc.errors import BadSignatureError, ExpiredTokenError, JoseError, MissingClaimError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

ALLOWED_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
MAX_TOKEN_CHARS = 16_384

JwksFetch = Callable[[], Awaitable[dict[str, Any]]]


class InvalidIdToken(Exception):
    """The ID token failed a check; the message says which (safe to show and log)."""


class JwksCache:
    """The issuer's signing keys. ``await key_set(kid)`` -> a joserfc ``KeySet`` that holds ``kid``
    if the issuer publishes it. Raises whatever ``fetch`` raises (the caller maps it)."""

    def __init__(self, fetch: JwksFetch, *, ttl_s: float = 3600.0, min_refetch_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch, self._ttl_s, self._min_refetch_s, self._clock = fetch, ttl_s, min_refetch_s, clock
        self._keys: KeySet | None = None
        self._fetched_at = 0.0
        self._refetched_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def key_set(self, kid: str | None) -> KeySet:
        now = self._clock()
        if self._keys is None or now - self._fetched_at >= self._ttl_s:
            await self._refresh(self._keys)
        elif kid is not None and not _has_kid(self._keys, kid) and (
                self._refetched_at is None or now - self._refetched_at >= self._min_refetch_s):
            self._refetched_at = now
            await self._refresh(self._keys)
        assert self._keys is not None
        return self._keys

    async def _refresh(self, seen: KeySet | None) -> None:
        async with self._lock:
            if self._keys is not seen:  # another caller refreshed while this one waited
                return
            document = await self._fetch()
            keys = [k for k in document.get("keys", []) if isinstance(k, dict) and k.get("use", "sig") == "sig"]
            self._keys = KeySet.import_key_set({"keys": keys})
            self._fetched_at = self._clock()
            self.fetches += 1


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keys.keys)


class IdTokenValidator:
    """``await validate(id_token, nonce=...) -> claims`` (a dict) or InvalidIdToken."""

    def __init__(self, jwks: JwksCache, *, issuer: str, client_id: str, leeway_s: int = 60,
                 algorithms: Collection[str] | None = None, now: Callable[[], float] = time.time) -> None:
        self._jwks, self.issuer, self.client_id, self._leeway_s, self._now = jwks, issuer, client_id, leeway_s, now
        # The issuer's advertised algorithms (discovery) narrowed to the asymmetric ones above.
        self.algorithms = [a for a in (algorithms or ALLOWED_ALGS) if a in ALLOWED_ALGS] or ["RS256"]

    async def validate(self, id_token: str, *, nonce: str) -> dict[str, Any]:
        if not isinstance(id_token, str) or not id_token or len(id_token) > MAX_TOKEN_CHARS:
            raise InvalidIdToken("no ID token, or an oversized one")
        try:
            header = extract_compact(id_token.encode()).headers()
        except (JoseError, ValueError):
            raise InvalidIdToken("the ID token is not a compact JWS") from None
        if header.get("alg") not in self.algorithms:
            raise InvalidIdToken(f"ID token algorithm {header.get('alg')!r} is not accepted "
                                 f"(accepted: {', '.join(self.algorithms)})")
        kid = header.get("kid") if isinstance(header.get("kid"), str) else None
        keys = await self._jwks.key_set(kid)
        if kid is not None and not _has_kid(keys, kid):
            raise InvalidIdToken("the ID token is signed with a key the issuer does not publish (unknown kid)")
        try:
            token = jwt.decode(id_token, keys, algorithms=self.algorithms)
        except BadSignatureError:
            raise InvalidIdToken("the ID token's signature does not verify") from None
        except (JoseError, ValueError) as exc:
            raise InvalidIdToken(f"the ID token cannot be decoded ({type(exc).__name__})") from None
        claims = dict(token.claims)
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self._now()), leeway=self._leeway_s,
            iss={"essential": True, "value": self.issuer}, aud={"essential": True, "value": self.client_id},
            sub={"essential": True}, exp={"essential": True}, iat={"essential": True},
            nonce={"essential": True, "value": nonce})
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise InvalidIdToken("the ID token has expired") from None
        except MissingClaimError as exc:
            raise InvalidIdToken(f"the ID token lacks a required claim ({exc.description})") from None
        except JoseError as exc:
            raise InvalidIdToken(f"the ID token's {_claim_name(exc)} claim is wrong") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.client_id:
            raise InvalidIdToken("the ID token has several audiences and its azp is not this client")
        return claims


def _claim_name(exc: JoseError) -> str:
    # joserfc's InvalidClaimError carries the claim name first in its description
    # ("Invalid claim: 'aud'"); say which, never echo values.
    description = str(getattr(exc, "description", "") or exc)
    for name in ("iss", "aud", "nonce", "sub", "iat", "nbf", "exp"):
        if f"'{name}'" in description or description.endswith(name):
            return name
    return "a"

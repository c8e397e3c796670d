"""The OpenID Connect client: discovery, the authorization request (code + PKCE S256, state,
nonce), the code exchange and userinfo, with Authlib's httpx client; ID tokens are checked by
app/sso/tokens.py. The only IdP I/O of the proxy.

Sources: OpenID Connect Core 1.0 §3.1 (code flow), Discovery 1.0, RFC 7636 (PKCE).
Every IdP call has ``timeout_s``; :func:`map_idp_errors` turns httpx and Authlib errors into
:class:`IdpError` (message safe to show, never a token or the client secret).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.httpx_client import AsyncOAuth2Client

from app.sso.tokens import IdTokenValidator, JwksCache

DISCOVERY_PATH = "/.well-known/openid-configuration"
REQUIRED_METADATA = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")


class IdpError(Exception):
    """The identity provider could not be reached or answered with an error."""


@contextmanager
def map_idp_errors(step: str) -> Iterator[None]:
    try:
        yield
    except IdpError:
        raise
    except httpx.TimeoutException:
        raise IdpError(f"the identity provider did not answer in time ({step})") from None
    except httpx.HTTPStatusError as exc:
        raise IdpError(f"the identity provider answered {exc.response.status_code} ({step})") from None
    except httpx.HTTPError as exc:
        raise IdpError(f"cannot reach the identity provider ({step}: {type(exc).__name__})") from None
    except AuthlibBaseError as exc:
        raise IdpError(f"the identity provider refused the {step}: {exc.error}") from None
    except ValueError:
        raise IdpError(f"the identity provider sent an unreadable answer ({step})") from None


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the browser, and what the callback must check against."""

    url: str
    state: str
    nonce: str
    code_verifier: str


class OidcClient:
    """One per app. ``settings``-level values come in as arguments; discovery happens lazily
    (first sign-in) and is kept ``metadata_ttl_s``."""

    def __init__(self, *, issuer: str, client_id: str, client_secret: str | None, redirect_uri: str,
                 scopes: str, timeout_s: float = 10.0, jwks_ttl_s: float = 3600.0, jwks_min_refetch_s: float = 10.0,
                 leeway_s: int = 60, metadata_ttl_s: float = 3600.0) -> None:
        self.issuer, self.client_id, self.redirect_uri = issuer.rstrip("/"), client_id, redirect_uri
        self._client_secret, self.scopes, self._timeout_s = client_secret, scopes, timeout_s
        self._http = httpx.AsyncClient(timeout=timeout_s)
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._metadata_ttl_s = metadata_ttl_s
        self.jwks = JwksCache(self._fetch_jwks, ttl_s=jwks_ttl_s, min_refetch_s=jwks_min_refetch_s)
        self._leeway_s = leeway_s

    async def aclose(self) -> None:
        await self._http.aclose()

    async def metadata(self) -> dict[str, Any]:
        """The issuer's discovery document; IdpError if unreachable, incomplete or for another issuer."""
        if self._metadata is None or time.monotonic() - self._metadata_at > self._metadata_ttl_s:
            with map_idp_errors("discovery"):
                response = await self._http.get(self.issuer + DISCOVERY_PATH)
                response.raise_for_status()
                document = response.json()
            if not isinstance(document, dict) or any(not document.get(k) for k in REQUIRED_METADATA):
                raise IdpError("the identity provider's discovery document lacks required fields")
            if document["issuer"].rstrip("/") != self.issuer:
                raise IdpError(f"discovery names issuer {document['issuer']!r}, not PROXY_OIDC_ISSUER")
            self._metadata, self._metadata_at = document, time.monotonic()
        return self._metadata

    async def _fetch_jwks(self) -> dict[str, Any]:
        uri = (await self.metadata())["jwks_uri"]
        with map_idp_errors("signing keys"):
            response = await self._http.get(uri)
            response.raise_for_status()
            return response.json()

    async def validator(self) -> IdTokenValidator:
        metadata = await self.metadata()
        return IdTokenValidator(self.jwks, issuer=metadata["issuer"], client_id=self.client_id,
                                leeway_s=self._leeway_s,
                                algorithms=metadata.get("id_token_signing_alg_values_supported"))

    def _oauth(self, metadata: dict[str, Any]) -> AsyncOAuth2Client:
        methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        auth_method = ("none" if not self._client_secret else
                       "client_secret_basic" if "client_secret_basic" in methods else "client_secret_post")
        return AsyncOAuth2Client(client_id=self.client_id, client_secret=self._client_secret,
                                 token_endpoint_auth_method=auth_method, scope=self.scopes,
                                 redirect_uri=self.redirect_uri, code_challenge_method="S256",
                                 timeout=self._timeout_s)

    async def authorization_request(self) -> AuthorizationRequest:
        metadata = await self.metadata()
        state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(64)
        async with self._oauth(metadata) as oauth:
            url, _ = oauth.create_authorization_url(metadata["authorization_endpoint"], state=state,
                                                    code_verifier=verifier, nonce=nonce)
        return AuthorizationRequest(url=url, state=state, nonce=nonce, code_verifier=verifier)

    async def redeem(self, code: str, *, code_verifier: str, nonce: str) -> dict[str, Any]:
        """Exchange ``code`` at the token endpoint, validate the ID token (InvalidIdToken), and fill
        claims the ID token lacks (email, name, groups) from userinfo when the IdP has it. Returns
        the claims. IdpError for transport or protocol errors."""
        metadata = await self.metadata()
        async with self._oauth(metadata) as oauth:
            with map_idp_errors("code exchange"):
                token = await oauth.fetch_token(metadata["token_endpoint"], code=code, code_verifier=code_verifier)
            claims = await (await self.validator()).validate(token.get("id_token"), nonce=nonce)
            if metadata.get("userinfo_endpoint") and token.get("access_token"):
                with map_idp_errors("userinfo"):
                    response = await oauth.get(metadata["userinfo_endpoint"])
                    response.raise_for_status()
                    userinfo = response.json()
                # Core §5.3.2: userinfo for another subject must not be used.
                if isinstance(userinfo, dict) and userinfo.get("sub") == claims["sub"]:
                    claims = {**userinfo, **claims}
        return claims

"""Which headers cross the proxy (pure).

End-to-end headers pass both ways (``anthropic-version``, ``anthropic-beta``, ``x-stainless-*``,
``user-agent``, the client's ``x-api-key`` / ``authorization``; back: ``request-id``,
``anthropic-ratelimit-*``, ``retry-after``...). Hop-by-hop headers (RFC 9110 §7.6.1) do not, nor do
the proxy's own key header and the framing headers that the proxy's HTTP stack sets itself.

Retry hints: Anthropic's ``retry-after``, ``x-should-retry`` and ``anthropic-ratelimit-unified-*``
pass unchanged on Anthropic's answers (they describe the developer's own credential, which the
proxy forwards). Answers the proxy builds (Bedrock's, and its own errors) start from an empty
header list and carry only the proxy's hints (``app/errors.py``): nothing of Anthropic's leaks
into them, even after a fallback from an Anthropic 429 (tests/proxy/test_retry_hints.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from app.errors import AuthenticationFailed

PROXY_KEY_HEADER = "x-proxy-key"
PROVIDER_HEADER = "x-proxy-provider"

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "transfer-encoding", "upgrade",
})
# Request headers the proxy sets itself: httpx computes host and content-length from the URL and
# the (identical) body; accept-encoding is pinned to identity so SSE usage can be read as it passes.
_DROP_REQUEST = HOP_BY_HOP | {"host", "content-length", "accept-encoding", PROXY_KEY_HEADER,
                               "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded",
                               "x-real-ip", "cookie"}
# Response headers our server sets itself (uvicorn writes date/server; Starlette content-length).
_DROP_RESPONSE = HOP_BY_HOP | {"content-length", "content-encoding", "date", "server"}

MISSING_CREDENTIALS_MESSAGE = (
    "no Anthropic credential on the request: set ANTHROPIC_API_KEY (sent as x-api-key) or "
    "ANTHROPIC_AUTH_TOKEN (sent as Authorization: Bearer) in Claude Code's environment; "
    "the proxy forwards it to Anthropic unchanged")


def upstream_request_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Client request headers -> headers for Anthropic (order and duplicates kept)."""
    out = [(k, v) for k, v in headers if k.lower() not in _DROP_REQUEST]
    out.append(("accept-encoding", "identity"))
    return out


def client_response_headers(headers: Iterable[tuple[str, str]], provider: str) -> list[tuple[str, str]]:
    """Upstream response headers -> headers for the client, plus ``x-proxy-provider``."""
    out = [(k, v) for k, v in headers if k.lower() not in _DROP_RESPONSE]
    out.append((PROVIDER_HEADER, provider))
    return out


def client_credential(headers: Mapping[str, str]) -> tuple[str, str] | None:
    """The client's Anthropic credential as ``("x-api-key"|"bearer", value)``, or None.

    ``headers`` is a case-insensitive mapping (Starlette ``Headers``).
    """
    api_key = headers.get("x-api-key")
    if api_key:
        return "x-api-key", api_key
    auth = headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return "bearer", token.strip()
    return None


def require_client_credential(headers: Mapping[str, str]) -> tuple[str, str]:
    """Like :func:`client_credential`; raises AuthenticationFailed with what to set."""
    credential = client_credential(headers)
    if credential is None:
        raise AuthenticationFailed(MISSING_CREDENTIALS_MESSAGE)
    return credential

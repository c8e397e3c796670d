"""BedrockClients: the process's long-lived aiobotocore clients for Bedrock Runtime, one per
credential, behind one connection cap. The API calls themselves are in ``runtime.py``.

Clients are long-lived (the first costs ~100 ms, later ones a few ms thanks to a shared botocore
data loader; either way never per request): one for the default AWS credential chain
(the ECS task role), created on first use, and one per Bedrock API key (bearer token), kept in a
bounded LRU keyed by the token's SHA-256 and closed when evicted and no longer in use.
botocore retries are off (``total_max_attempts: 1``): the proxy decides what to retry.
botocore's parameter validation is off by default (``parameter_validation``): it walks the whole
request against the service model, ~0.5 ms for a 59 KiB Claude Code request and ~2.1 ms for a
166 KiB one (issue 16), on every call; Bedrock validates the request itself (a ValidationException
is the same 400 ``invalid_request_error``), and in tests the translation is checked against the same
shapes (tests/bedrock/test_golden.py, and the fake Bedrock runs botocore's validator on every call).

Connections: at most ``max_connections`` calls and open streams per replica, over all clients
(an ``asyncio.Semaphore`` in front of them; each client's own aiohttp pool has the same size, so
the semaphore is the cap that binds). A call that finds them all in use waits up to
``pool_timeout_s``, counted in ``waiting`` (and ``waits``), then fails with ``UpstreamPoolExhausted``
(503 ``overloaded_error``). ``in_use`` / ``waiting`` / ``waits`` / ``max_connections`` are exported as
metrics (app/usage/metrics.py).

Service model: the clients load ``bedrock-runtime``'s model from ``botocore_data/`` (a newer published
botocore's, see SOURCE.json there) ahead of the installed botocore's: aioboto3 pins a botocore whose
model lacks ``CachePointBlock.ttl`` and ``TokenUsage.cacheDetails``. Only this module's loader has that
search path (no ``AWS_DATA_PATH``, nothing global); every other service and the endpoint rules still
come from the installed botocore. Refresh with scripts/update_bedrock_model.py (docs/translation.md).

Source for API keys: https://docs.aws.amazon.com/bedrock/latest/userguide/api-keys-use.html
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.credentials import AioCredentialResolver
from aiobotocore.httpsession import AIOHTTPSession
from aiobotocore.session import AioSession
from botocore.loaders import Loader
from botocore.model import ServiceModel
from botocore.tokens import FrozenAuthToken, TokenProviderChain
from cachetools import LRUCache

from app.bedrock.errors import map_bedrock_errors
from app.errors import ApiError, UpstreamPoolExhausted

log = logging.getLogger(__name__)

SERVICE_NAME = "bedrock-runtime"
BOTOCORE_DATA = Path(__file__).parent / "botocore_data"  # {SERVICE_NAME}/<api version>/service-2.json.gz


def token_key(bearer_token: str) -> str:
    """The cache key for a bearer token: its SHA-256, hex (the token itself is never a key)."""
    return hashlib.sha256(bearer_token.encode()).hexdigest()


@functools.cache
def data_loader() -> Loader:
    """One botocore data loader for every session: it caches the parsed service model and
    endpoint rules, which are most of a new client's cost (~100 ms -> ~5 ms). ``BOTOCORE_DATA`` is
    searched first (the vendored bedrock-runtime model), then botocore's own paths."""
    return Loader(extra_search_paths=[str(BOTOCORE_DATA)])


def service_model() -> ServiceModel:
    """The bedrock-runtime service model the proxy's clients use (the vendored one): for checks and
    tests that validate requests against botocore's shapes."""
    return ServiceModel(data_loader().load_service_model(SERVICE_NAME, "service-2"), service_name=SERVICE_NAME)


class _StaticTokenProvider:
    """A botocore token provider that always returns one Bedrock API key."""

    METHOD = "static"

    def __init__(self, token: str) -> None:
        self._token = FrozenAuthToken(token)

    def load_token(self, **kwargs: Any) -> FrozenAuthToken:
        return self._token


def _socket_factory(options: Sequence[tuple[int, int, int]]) -> Any:
    def factory(addr_info: Any) -> socket.socket:
        family, type_, proto, _, _ = addr_info
        sock = socket.socket(family=family, type=type_, proto=proto)
        for level, name, value in options:
            try:
                sock.setsockopt(level, name, value)
            except OSError:  # e.g. TCP options on a non-TCP socket
                pass
        return sock
    return factory


class SocketOptionsAIOHTTPSession(AIOHTTPSession):
    """aiobotocore's HTTP session, but applying botocore's ``socket_options`` (which carry
    ``tcp_keepalive=True`` as SO_KEEPALIVE); aiobotocore 2.25 ignores them ("TODO: handle
    socket_options" in aiobotocore/httpsession.py). Keepalive keeps idle connections of long
    thinking streams from being silently dropped by NAT gateways."""

    def __init__(self, *args: Any, socket_options: Sequence[tuple[int, int, int]] | None = None,
                 connector_args: dict[str, Any] | None = None, **kwargs: Any) -> None:
        connector_args = dict(connector_args or {})
        if socket_options:
            connector_args.setdefault("socket_factory", _socket_factory(list(socket_options)))
        super().__init__(*args, socket_options=socket_options, connector_args=connector_args, **kwargs)


@dataclass
class _Pooled:
    """A live client; ``in_use`` counts calls and open streams; ``retired`` once evicted."""

    client: Any
    context: Any  # the ClientCreatorContext whose __aexit__ closes the client
    in_use: int = 0
    retired: bool = False
    closed: bool = False

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                await self.context.__aexit__(None, None, None)
            except Exception:
                log.debug("closing a bedrock client failed", exc_info=True)


class _ClientCache(LRUCache):
    """LRUCache that remembers evicted values, so the async caller can close them."""

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize)
        self.evicted: list[_Pooled] = []

    def popitem(self) -> tuple[Any, Any]:
        key, value = super().popitem()
        self.evicted.append(value)
        return key, value


class BedrockClients:
    """Bedrock Runtime clients by credential, and the connection cap. Times in seconds.
    ``lease(bearer_token)`` yields the client for one call (None: the default AWS credential
    chain); it raises ProxyError (``UpstreamPoolExhausted`` past the cap). Call ``aclose()`` on shutdown."""

    def __init__(self, region: str, *, endpoint_url: str | None = None, connect_timeout_s: float = 10.0,
                 read_timeout_s: float = 600.0, max_connections: int = 1000, pool_timeout_s: float | None = None,
                 max_bearer_clients: int = 256, parameter_validation: bool = False) -> None:
        self.region, self.endpoint_url = region, endpoint_url
        self._config_options: dict[str, Any] = dict(
            region_name=region, connect_timeout=connect_timeout_s, read_timeout=read_timeout_s,
            max_pool_connections=max_connections, tcp_keepalive=True,
            retries={"total_max_attempts": 1, "mode": "standard"}, parameter_validation=parameter_validation)
        self.max_connections = max_connections
        self._pool_timeout_s = connect_timeout_s if pool_timeout_s is None else pool_timeout_s
        self._slots = asyncio.Semaphore(max_connections)
        self.in_use = 0  # calls and streams holding one of the max_connections slots
        self.waiting = 0  # calls waiting for a slot
        self.waits = 0  # calls that had to wait (counter)
        self._default: _Pooled | None = None
        self._bearer = _ClientCache(max_bearer_clients)
        self._lock = asyncio.Lock()
        self._closed = False

    def _config(self, *, bearer: bool) -> AioConfig:
        options = dict(self._config_options)
        if bearer:
            options["signature_version"] = "bearer"  # Authorization: Bearer <key>, no SigV4
        return AioConfig(http_session_cls=SocketOptionsAIOHTTPSession, **options)

    async def _create(self, bearer_token: str | None) -> _Pooled:
        session = AioSession()
        session.register_component("data_loader", data_loader())
        if bearer_token is not None:
            # This client authenticates with this key only: no env token, no AWS credentials
            # (an empty chain also avoids a pointless IMDS/ECS credential lookup).
            session.register_component("token_provider", TokenProviderChain([_StaticTokenProvider(bearer_token)]))
            session.register_component("credential_provider", AioCredentialResolver(providers=[]))
        context = session.create_client(SERVICE_NAME, region_name=self.region, endpoint_url=self.endpoint_url,
                                        config=self._config(bearer=bearer_token is not None))
        client = await context.__aenter__()
        return _Pooled(client, context)

    async def client_for(self, bearer_token: str | None = None) -> Any:
        """The long-lived aiobotocore client for this credential (created once). For tests."""
        return (await self._acquire(bearer_token)).client

    async def _acquire(self, bearer_token: str | None) -> _Pooled:
        if self._closed:
            raise ApiError("Bedrock: client is closed")
        key = token_key(bearer_token) if bearer_token is not None else None
        pooled = self._default if key is None else self._bearer.get(key)
        if pooled is not None:
            return pooled
        async with self._lock:
            pooled = self._default if key is None else self._bearer.get(key)
            if pooled is not None:
                return pooled
            with map_bedrock_errors():
                pooled = await self._create(bearer_token)
            if key is None:
                log.info("bedrock client created (region=%s, credentials=default chain)", self.region)
                self._default = pooled
            else:
                log.debug("bedrock client created (region=%s, api key sha256=%s...)", self.region, key[:8])
                self._bearer[key] = pooled
                evicted, self._bearer.evicted = self._bearer.evicted, []
                for old in evicted:
                    old.retired = True
                    if old.in_use == 0:
                        await old.close()
            return pooled

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        """One of the ``max_connections`` slots, waited for at most ``pool_timeout_s``.
        Raises UpstreamPoolExhausted."""
        if self._slots.locked():
            self.waits += 1
            self.waiting += 1
            try:
                async with asyncio.timeout(self._pool_timeout_s):  # not wait_for: 3.11's can leak a slot
                    await self._slots.acquire()
            except TimeoutError:
                raise UpstreamPoolExhausted(
                    f"all {self.max_connections} Bedrock connections of this proxy are in use "
                    "(PROXY_BEDROCK_MAX_CONNECTIONS); retry shortly") from None
            finally:
                self.waiting -= 1
        else:
            await self._slots.acquire()
        self.in_use += 1
        try:
            yield
        finally:
            self.in_use -= 1
            self._slots.release()

    @asynccontextmanager
    async def lease(self, bearer_token: str | None) -> AsyncIterator[Any]:
        """A connection slot and the client for a call; an evicted client is closed when its
        last lease ends."""
        async with self._slot():
            pooled = await self._acquire(bearer_token)
            pooled.in_use += 1
            try:
                yield pooled.client
            finally:
                pooled.in_use -= 1
                if pooled.retired and pooled.in_use == 0:
                    await pooled.close()

    async def aclose(self) -> None:
        """Close every client (in-flight calls fail with a connection error)."""
        async with self._lock:
            self._closed = True
            pooled = [p for p in (self._default, *self._bearer.values(), *self._bearer.evicted) if p]
            self._default = None
            self._bearer.clear()
            self._bearer.evicted = []
        for p in pooled:
            await p.close()

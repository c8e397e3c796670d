"""Shared fixtures: a running fake Anthropic upstream and a running proxy in front of it.

The proxy is the real app (``create_app``) on the embedded store, on a real loopback socket, or
in-process (``start_proxy(..., in_process=True)``: no socket, for tests where the socket is not what
is tested; tests/proxy's ``proxy`` fixture). Users and keys are made through its own admin API, as
an admin would. The fake upstreams are real servers, kept for the whole run (tests/support/servers.py).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import argon2
import httpx
import httpx2
import pytest

from app.config import Settings
from app.main import create_app
from tests.fakes.anthropic_server import FakeAnthropic, running_fake_anthropic
from tests.support.servers import run_in_process, serve_in_thread, shared_servers

from tests.support.constants import (ADMIN_PASSWORD, AWS_TEST_ENV, CHEAP_ARGON2, CLIENT_API_KEY,  # noqa: F401
                                     NO_BEDROCK_URL, SECRET_KEY)


@pytest.fixture(scope="session", autouse=True)
def fake_aws_environment() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in AWS_TEST_ENV.items():
            patch.setenv(name, value)
        patch.delenv("AWS_PROFILE", raising=False)
        patch.delenv("AWS_BEARER_TOKEN_BEDROCK", raising=False)
        yield


@pytest.fixture(scope="session", autouse=True)
def kept_servers() -> Iterator[None]:
    """Stop the loopback servers the fakes were served on, at the end of the run."""
    yield
    shared_servers.close()


def make_settings(upstream_url: str, **overrides: Any) -> Settings:
    """Test settings: embedded store, fixed secrets, fast usage flushes. Bedrock goes to a closed
    loopback port and the default policy is ``anthropic_only`` unless a test says otherwise
    (Bedrock tests pass ``bedrock_endpoint_url`` of a fake Bedrock and a policy)."""
    values: dict[str, Any] = dict(
        anthropic_base_url=upstream_url, secret_key=SECRET_KEY, admin_password=ADMIN_PASSWORD,
        usage_flush_interval_s=0.05, cookie_secure=False, read_timeout_s=30.0, connect_timeout_s=5.0,
        bedrock_endpoint_url=NO_BEDROCK_URL, default_fallback_policy="anthropic_only")
    values.update(overrides)
    return Settings(_env_file=None, **values)


@dataclass
class RunningProxy:
    """A running proxy: its base ``url``, its ``app``, an ``admin`` client (bearer set) and one
    user+key; ``http``, a client for its routes (relative paths), and ``client(**options)``, a new
    one (e.g. the ``anthropic`` SDK's ``http_client=``). In-process, ``url`` is
    ``http://testserver``: only these clients reach it."""

    url: str
    app: Any
    admin: Any  # httpx.Client on a socket; an httpx2.Client (TestClient) in-process
    user_id: str
    key_id: str
    key: str
    http: Any
    client: Callable[..., Any]

    @property
    def services(self) -> Any:
        return self.app.state.services

    def new_key(self, **body: Any) -> dict[str, Any]:
        response = self.admin.post(f"/admin/users/{self.user_id}/access-keys", json=body)
        response.raise_for_status()
        return response.json()

    def usage_totals(self, **params: str) -> dict[str, int]:
        response = self.admin.get("/admin/usage", params=params)
        response.raise_for_status()
        return response.json()["totals"]

    def wait_for_usage(self, predicate: Callable[[dict[str, int]], bool], timeout_s: float = 10.0,
                       **params: str) -> dict[str, int]:
        """Poll the admin usage API until ``predicate(totals)``; returns the last totals."""
        deadline = time.monotonic() + timeout_s
        totals = self.usage_totals(**params)
        while not predicate(totals) and time.monotonic() < deadline:
            time.sleep(0.05)
            totals = self.usage_totals(**params)
        return totals


def admin_client(url: str, client: Any = None) -> Any:
    """A client for ``url`` with the admin's bearer token; ``client``: an unused client to log in
    with instead (an in-process one), returned with the token set."""
    basic = base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
    login = client.post if client is not None else lambda path, **kw: httpx.post(url + path, **kw)
    token = login("/admin/auth/login", headers={"authorization": f"Basic {basic}"}).json()
    bearer = {"authorization": f"Bearer {token['access_token']}"}
    if client is not None:
        client.headers.update(bearer)
        return client
    return httpx.Client(base_url=url, headers=bearer, timeout=30)


class BodyRecorder:
    """Pure ASGI wrapper that records each request body exactly as the proxy receives it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.bodies: list[tuple[str, bytes]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        chunks: list[bytes] = []

        async def recording_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    self.bodies.append((scope["path"], b"".join(chunks)))
            return message

        await self.app(scope, recording_receive, send)


def cheap_password_hashing(patch: pytest.MonkeyPatch) -> None:
    """Make ``argon2.PasswordHasher()`` (default parameters) hash with ``CHEAP_ARGON2``: a test
    proxy's admin account is not what is tested, and the default cost dominated each start."""
    original = argon2.PasswordHasher.__init__

    def cheap(self: argon2.PasswordHasher, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **(kwargs or ({} if args else CHEAP_ARGON2)))

    patch.setattr(argon2.PasswordHasher, "__init__", cheap)


def start_proxy(settings: Settings, *, recorder: BodyRecorder | None = None,
                in_process: bool = False) -> Iterator[RunningProxy]:
    """The app for ``settings`` on a loopback socket, or ``in_process`` (no socket; see
    ``run_in_process`` for what that cannot show), with one user and one access key."""
    app = create_app(settings)
    asgi = app
    if recorder is not None:
        recorder.app = app
        asgi = recorder
    with ExitStack() as stack:
        with pytest.MonkeyPatch.context() as patch:
            cheap_password_hashing(patch)  # the app builds its hasher in the lifespan, at start
            if in_process:
                client: Callable[..., Any] = stack.enter_context(run_in_process(asgi))
                url = "http://testserver"
            else:
                url = stack.enter_context(serve_in_thread(asgi))
                client = httpx2.Client
        if in_process:
            admin, http = admin_client(url, client()), client()
        else:
            admin = stack.enter_context(admin_client(url))
            http = stack.enter_context(httpx.Client(base_url=url, timeout=30))
        user = admin.post("/admin/users", json={"name": "Ada", "email": "ada@example.com"}).json()
        key = admin.post(f"/admin/users/{user['id']}/access-keys", json={"name": "laptop"}).json()
        yield RunningProxy(url=url, app=app, admin=admin, user_id=user["id"], key_id=key["id"], key=key["key"],
                           http=http, client=client)


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    with running_fake_anthropic() as fake:
        yield fake


@pytest.fixture
def proxy(fake_anthropic: FakeAnthropic) -> Iterator[RunningProxy]:
    yield from start_proxy(make_settings(fake_anthropic.url))

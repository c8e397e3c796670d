"""Admin login limits through the real app: two app instances (two replicas) on one mongomock
database, driven over ASGI in one event loop, with 60 concurrent logins."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from mongomock_motor import AsyncMongoMockClient

from app.main import create_app
from app.store.mongo import Store
from tests.conftest import ADMIN_PASSWORD, make_settings


def envelope(response: httpx.Response) -> dict[str, Any]:
    """The error body without its per-request ``request_id`` (``req_...``, checked here)."""
    body = dict(response.json())
    assert str(body.pop("request_id", "req_")).startswith("req_")
    return body


def basic(password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()}


@pytest.fixture
async def replicas(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[httpx.AsyncClient]]:
    shared = AsyncMongoMockClient(tz_aware=True)

    def open_shared(url: Any, database: str, **_: Any) -> Store:
        return Store(client=shared, db=shared[database], embedded=True)

    monkeypatch.setattr("app.main.open_store", open_shared)
    monkeypatch.setattr(Store, "close", lambda self: None)
    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(2):
            app = create_app(make_settings("http://127.0.0.1:9"))
            await stack.enter_async_context(app.router.lifespan_context(app))
            # One fixed instant, mid-window: the one-minute login windows must not roll over while
            # 60 attempts run on a loaded machine.
            app.state.services.admin_auth.clock = lambda: 1_800_000_030.0
            clients.append(await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://proxy")))
        yield clients


async def test_sixty_concurrent_logins_across_two_replicas_evaluate_five(replicas: list[httpx.AsyncClient]) -> None:
    attempts = [replicas[i % 2].post("/admin/auth/login", headers=basic(f"wrong-{i}")) for i in range(60)]
    statuses = [r.status_code for r in await asyncio.gather(*attempts)]
    assert statuses.count(401) == 5 and statuses.count(429) == 55
    locked = await replicas[0].post("/admin/auth/login", headers=basic(ADMIN_PASSWORD))
    assert locked.status_code == 429 and locked.json()["error"]["type"] == "rate_limit_error"
    assert 1 <= int(locked.headers["retry-after"]) <= 60


async def test_login_then_logout_over_the_api(replicas: list[httpx.AsyncClient]) -> None:
    token = (await replicas[0].post("/admin/auth/login", headers=basic(ADMIN_PASSWORD))).json()["access_token"]
    bearer = {"authorization": f"Bearer {token}"}
    assert (await replicas[1].get("/admin/users", headers=bearer)).status_code == 200
    assert (await replicas[1].post("/admin/auth/logout", headers=bearer)).status_code == 204
    assert (await replicas[1].get("/admin/users", headers=bearer)).status_code == 401


@pytest.mark.parametrize("authorization", [None, "Bearer abc", "Basic", "Basic !!!not-base64", "Basic " +
                                           base64.b64encode(b"no-colon").decode(), "Basic " +
                                           base64.b64encode(b":password-without-user").decode()])
async def test_login_without_usable_basic_credentials_is_401_in_anthropics_envelope(
        replicas: list[httpx.AsyncClient], authorization: str | None) -> None:
    headers = {"authorization": authorization} if authorization else {}
    response = await replicas[0].post("/admin/auth/login", headers=headers)
    assert response.status_code == 401
    assert envelope(response) == {"type": "error", "error": {
        "type": "authentication_error", "message": "HTTP Basic credentials required (admin username and password)"}}
    assert response.headers["www-authenticate"] == 'Basic realm="claude-code-proxy"'


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer ", "Basic YWRtaW46eA==", "Token abc"])
async def test_admin_routes_without_a_bearer_token_are_401_in_anthropics_envelope(
        replicas: list[httpx.AsyncClient], authorization: str | None) -> None:
    headers = {"authorization": authorization} if authorization else {}
    response = await replicas[0].get("/admin/users", headers=headers)
    assert response.status_code == 401
    assert envelope(response) == {"type": "error", "error": {
        "type": "authentication_error",
        "message": "admin bearer token required: POST /admin/auth/login with HTTP Basic"}}


async def test_a_wrong_bearer_token_is_401_and_logins_and_logouts_are_audited(
        replicas: list[httpx.AsyncClient]) -> None:
    response = await replicas[0].get("/admin/users", headers={"authorization": "Bearer not-a-token"})
    assert response.status_code == 401 and response.json()["error"]["type"] == "authentication_error"
    assert (await replicas[0].post("/admin/auth/login", headers=basic("wrong"))).status_code == 401
    token = (await replicas[0].post("/admin/auth/login", headers=basic(ADMIN_PASSWORD))).json()["access_token"]
    bearer = {"authorization": f"Bearer {token}"}
    assert (await replicas[0].post("/admin/auth/logout", headers=bearer)).status_code == 204
    token = (await replicas[0].post("/admin/auth/login", headers=basic(ADMIN_PASSWORD))).json()["access_token"]
    entries = (await replicas[0].get("/admin/audit", headers={"authorization": f"Bearer {token}"})).json()["data"]
    actions = [(e["action"], e["details"].get("via")) for e in entries]
    assert actions.count(("admin.login", "api")) == 2 and ("admin.login_failed", "api") in actions
    assert ("admin.logout", "api") in actions

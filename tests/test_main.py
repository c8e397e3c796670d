"""app/main.py: readiness while the store is down, and the API docs switch."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from app.main import create_app
from tests.conftest import RunningProxy, make_settings


class HangingDb:
    """A database whose ``ping`` never answers (a store that accepts connections and stalls)."""

    async def command(self, name: str) -> Any:
        await asyncio.sleep(3600)


class RefusingDb:
    async def command(self, name: str) -> Any:
        from pymongo.errors import ServerSelectionTimeoutError

        raise ServerSelectionTimeoutError("127.0.0.1:27017: [Errno 111] Connection refused")


@pytest.mark.parametrize("db", [RefusingDb(), HangingDb()], ids=["refused", "hangs"])
def test_ready_is_503_json_while_the_store_is_down(proxy: RunningProxy, monkeypatch: pytest.MonkeyPatch,
                                                   db: Any) -> None:
    assert httpx.get(f"{proxy.url}/ready").json() == {"status": "ok", "store": True}
    monkeypatch.setattr("app.main.READY_PING_TIMEOUT_S", 0.1)
    monkeypatch.setattr(proxy.services.store, "db", db)
    response = httpx.get(f"{proxy.url}/ready", timeout=10)
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "store": False}
    assert httpx.get(f"{proxy.url}/health").status_code == 200


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
async def test_api_docs_are_off_by_default(path: str) -> None:
    transport = httpx.ASGITransport(app=create_app(make_settings("http://127.0.0.1:9")))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get(path)
    assert response.status_code == 404 and response.json()["error"]["type"] == "not_found_error"


async def test_api_docs_can_be_enabled() -> None:
    app = create_app(make_settings("http://127.0.0.1:9", api_docs_enabled=True))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get("/docs")).status_code == 200
        assert "/admin/auth/logout" in (await client.get("/openapi.json")).json()["paths"]

"""An in-process proxy for usage tests: ``create_app`` with its lifespan, driven over
``httpx.ASGITransport``, with Anthropic faked by an ``httpx.MockTransport`` handed to the real
``AnthropicUpstream``. The fake answers each request with a usage derived from the request text
(``n=<int>``), so a test knows exactly what every request must add up to."""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

import app.main
from app.config import Settings
from app.main import create_app
from app.proxy.anthropic import AnthropicUpstream
from tests.support.constants import DATED_MODEL as MODEL

ADMIN_PASSWORD = "usage-admin-password-123"
SECRET_KEY = "usage-secret-key-0123456789-abcdefghijklmnop"
CLIENT_CREDENTIAL = "sk-ant-api03-usage-tests"


def usage_for(n: int) -> dict[str, Any]:
    """The usage the fake upstream reports for request ``n`` (Anthropic's ``usage`` object)."""
    one_hour = (n % 5) * 20
    return {"input_tokens": 10 + n % 97, "output_tokens": 1 + n % 13,
            "cache_creation_input_tokens": (n % 5) * 100, "cache_read_input_tokens": (n % 7) * 1000,
            "cache_creation": {"ephemeral_5m_input_tokens": (n % 5) * 100 - one_hour,
                               "ephemeral_1h_input_tokens": one_hour}}


def _sse(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    return b"".join(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events)


class _Chunks(httpx.AsyncByteStream):
    """An SSE body that arrives in small chunks, as a network stream does."""

    def __init__(self, body: bytes, size: int = 97) -> None:
        self._body, self._size = body, size

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for i in range(0, len(self._body), self._size):
            yield self._body[i:i + self._size]


class FakeUpstream:
    """``MockTransport`` handler for ``POST /v1/messages`` (JSON or SSE, from the body's ``stream``)."""

    def __init__(self) -> None:
        self.requests = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        body = json.loads(request.content)
        n = int(body["messages"][0]["content"].removeprefix("n="))
        usage = usage_for(n)
        message = {"id": f"msg_{n}", "type": "message", "role": "assistant", "model": body["model"],
                   "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn", "usage": usage}
        if not body.get("stream"):
            return httpx.Response(200, json=message, headers={"request-id": f"req_{n}"})
        start_usage = {**usage, "output_tokens": 1}
        events = [("message_start", {"type": "message_start", "message": {**message, "content": [],
                                                                          "usage": start_usage}}),
                  ("content_block_start", {"type": "content_block_start", "index": 0,
                                           "content_block": {"type": "text", "text": ""}}),
                  ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                           "delta": {"type": "text_delta", "text": "ok"}}),
                  ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                  ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                     "usage": {"output_tokens": usage["output_tokens"]}}),
                  ("message_stop", {"type": "message_stop"})]
        return httpx.Response(200, stream=_Chunks(_sse(events)), headers={"content-type": "text/event-stream"})


def usage_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = dict(anthropic_base_url="http://anthropic.test", secret_key=SECRET_KEY,
                                  admin_password=ADMIN_PASSWORD, usage_flush_interval_s=0.05,
                                  usage_retry_max_backoff_s=0.2, default_fallback_policy="anthropic_only")
    values.update(overrides)
    return Settings(_env_file=None, **values)


@dataclass
class InProcessProxy:
    app: Any
    client: httpx.AsyncClient
    upstream: FakeUpstream
    admin_headers: dict[str, str] = field(default_factory=dict)

    @property
    def services(self) -> Any:
        return self.app.state.services

    async def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.request(method, path, headers=self.admin_headers, **kwargs)

    async def new_user_key(self, name: str = "Ada") -> tuple[str, str, str]:
        """-> (user_id, key_id, plaintext key)"""
        user = (await self.admin("POST", "/admin/users", json={"name": name})).json()
        return (user["id"], *await self.new_key(user["id"]))

    async def new_key(self, user_id: str) -> tuple[str, str]:
        key = (await self.admin("POST", f"/admin/users/{user_id}/access-keys", json={})).json()
        return key["id"], key["key"]

    async def message(self, key: str, n: int, *, stream: bool = False, in_path: bool = False) -> httpx.Response:
        body = {"model": MODEL, "max_tokens": 16, "stream": stream, "messages": [{"role": "user", "content": f"n={n}"}]}
        headers = {"x-api-key": CLIENT_CREDENTIAL}
        if in_path:
            return await self.client.post(f"/ak/{key}/v1/messages", json=body, headers=headers)
        return await self.client.post("/v1/messages", json=body, headers={**headers, "x-proxy-key": key})


@asynccontextmanager
async def in_process_proxy(monkeypatch: pytest.MonkeyPatch, settings: Settings | None = None, *,
                           client_host: str = "127.0.0.1", wrap_db: Any = None,
                           upstream: Any = None) -> AsyncIterator[InProcessProxy]:
    """Run the app's lifespan around the block; ``wrap_db(db) -> db`` can inject store faults;
    ``upstream`` replaces the FakeUpstream handler (same interface: a ``MockTransport`` handler)."""
    upstream = upstream or FakeUpstream()
    monkeypatch.setattr(app.main, "AnthropicUpstream",
                        functools.partial(AnthropicUpstream, transport=httpx.MockTransport(upstream)))
    if wrap_db is not None:
        real_open = app.main.open_store

        def open_store(*args: Any, **kwargs: Any) -> Any:
            store = real_open(*args, **kwargs)
            store.db = wrap_db(store.db)
            return store

        monkeypatch.setattr(app.main, "open_store", open_store)
    application = create_app(settings or usage_settings())
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, client=(client_host, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy.test", timeout=60) as client:
            basic = base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
            login = await client.post("/admin/auth/login", headers={"authorization": f"Basic {basic}"})
            proxy = InProcessProxy(application, client, upstream,
                                   {"authorization": f"Bearer {login.json()['access_token']}"})
            yield proxy

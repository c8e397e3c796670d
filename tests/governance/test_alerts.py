"""Spend alerts: thresholds fire once per period per principal, to a real webhook receiver on
127.0.0.1 (Slack-compatible JSON) and to the audit log; a failing webhook is retried, boundedly."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from app.governance.alerts import WebhookSender
from tests.governance.conftest import set_cap
from tests.usage.conftest import in_process_proxy, usage_settings


class Receiver:
    """A minimal HTTP/1.1 server: records each POSTed JSON body, answers ``statuses`` in turn (then 200)."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.bodies: list[dict] = []
        self.statuses = list(statuses or [])
        self.got = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        body = await reader.readexactly(length)
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 200:
            self.bodies.append(json.loads(body))
            self.got.set()
        writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()


@asynccontextmanager
async def receiver(statuses: list[int] | None = None) -> AsyncIterator[tuple[Receiver, str]]:
    rec = Receiver(statuses)
    server = await asyncio.start_server(rec.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield rec, f"http://127.0.0.1:{port}/hook"


async def test_thresholds_fire_once_per_period(monkeypatch: pytest.MonkeyPatch) -> None:
    async with receiver() as (rec, url):
        settings = usage_settings(alert_webhook_url=SecretStr(url), alert_check_interval_s=60)
        async with in_process_proxy(monkeypatch, settings) as proxy:
            now = datetime.now(UTC).replace(hour=12, minute=0)
            proxy.services.governance.enforcement.clock = lambda: now
            user_id, _, key = await proxy.new_user_key()
            await set_cap(proxy, {"type": "user", "user_id": user_id}, "1", "daily")
            while (await proxy.message(key, 1)).status_code == 200:
                pass
            alerts = proxy.services.governance.alerts
            assert await alerts.check() == 2  # 80 % and 100 %
            for _ in range(3):
                await proxy.message(key, 1)
                assert await alerts.check() == 0  # once per period
            await alerts.webhook.drain()
            texts = [b["text"] for b in rec.bodies]
            assert len(texts) == 2 and "80%" in texts[0] and "100%" in texts[1]
            assert all(user_id in t and "$0.01 daily cap" in t for t in texts)
            assert rec.bodies[0]["blocks"][0]["type"] == "section"
            log = (await proxy.admin("GET", "/admin/audit", params={"action": "spend_limit.alert"})).json()["data"]
            assert sorted(e["details"]["threshold"] for e in log) == [80, 100]


async def test_webhook_retries_then_delivers() -> None:
    async with receiver(statuses=[503, 500]) as (rec, url):
        sender = WebhookSender(url, backoff_s=0.01)
        sender.send({"text": "hello"})
        await sender.drain()
        await sender.aclose()
        assert rec.bodies == [{"text": "hello"}] and sender.sent == 1


async def test_webhook_gives_up_after_bounded_attempts() -> None:
    async with receiver(statuses=[500, 500, 500, 500]) as (rec, url):
        sender = WebhookSender(url, backoff_s=0.01, max_attempts=3)
        sender.send({"text": "hello"})
        await sender.drain()
        await sender.aclose()
        assert rec.bodies == [] and rec.statuses == [500] and sender.failed == 1

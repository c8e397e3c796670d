"""Spend alerts: each cap's thresholds (percent; default 80 and 100) fire once per period per
principal (a user, or a group for a shared budget), to the audit log (``spend_limit.alert``) and
to a webhook (``PROXY_ALERT_WEBHOOK_URL``, Slack-compatible JSON ``{"text", "blocks"}``).

Off the request path: admission only notes which counters it touched (:meth:`AlertWatcher.watch`);
a background task (every ``interval_s``, at once after a refusal) reads each touched counter,
compares used-or-reserved spend with the thresholds and claims each crossed threshold in
``spend_alerts`` (one insert; the replica that inserts first sends, so an alert fires once across
replicas). Webhook posts go through a bounded queue with bounded retries (``max_attempts``,
exponential backoff; 5xx, 429 and connection errors are retried) on their own httpx client;
failures are logged, never raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from app.governance.periods import iso_z
from app.governance.resolve import Cap
from app.store.alert_state import AlertStateRepository
from app.store.audit import AuditRepository
from app.tasks import Periodic
from app.usage.lease_book import LeaseBook

log = logging.getLogger(__name__)
QUEUE_MAX = 1000


@dataclass(frozen=True, slots=True)
class _Watched:
    cap: Cap
    start: datetime
    end: datetime


class WebhookSender:
    """``send(payload)`` queues one JSON POST to ``url``; a worker sends it with retries."""

    def __init__(self, url: str, *, timeout_s: float = 5.0, max_attempts: int = 3, backoff_s: float = 0.5,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url, self._max_attempts, self._backoff_s = url, max_attempts, backoff_s
        self._client = httpx.AsyncClient(timeout=timeout_s, transport=transport)
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=QUEUE_MAX)
        self._task: asyncio.Task[None] | None = None
        self.sent = self.failed = 0

    def send(self, payload: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(payload)
        except asyncio.QueueFull:
            self.failed += 1
            log.warning("spend alert webhook queue full; alert dropped (it is in the audit log)")
            return
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="spend-alert-webhook")

    async def _run(self) -> None:
        while True:
            payload = await self._queue.get()
            try:
                await self._post(payload)
            finally:
                self._queue.task_done()

    async def _post(self, payload: dict[str, Any]) -> None:
        for attempt in range(1, self._max_attempts + 1):
            try:
                response = await self._client.post(self.url, json=payload)
                if response.status_code < 300:
                    self.sent += 1
                    return
                retry = response.status_code >= 500 or response.status_code == 429
                reason = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                retry, reason = True, type(exc).__name__
            if not retry or attempt == self._max_attempts:
                self.failed += 1
                log.warning("spend alert webhook failed after %d attempt(s): %s", attempt, reason)
                return
            await asyncio.sleep(self._backoff_s * 2 ** (attempt - 1))

    async def drain(self) -> None:
        """Wait until every queued alert was sent or given up (tests, shutdown)."""
        await self._queue.join()

    async def aclose(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                await self.drain()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._client.aclose()


def slack_payload(alert: dict[str, Any]) -> dict[str, Any]:
    """Slack incoming-webhook JSON for one alert (``text`` is the fallback; ``blocks`` the layout)."""
    text = (f":warning: Spend alert: {alert['whom']} reached {alert['threshold']}% of the "
            f"${alert['amount_cents'] / 100:,.2f} {alert['period']} cap (${alert['used_usd_micros'] / 1e6:,.2f} "
            f"used or reserved; resets {alert['resets_at']}). Spend limit {alert['spend_limit_id']}.")
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


class AlertWatcher:
    """Checks touched counters against their caps' thresholds (see the module docstring)."""

    def __init__(self, book: LeaseBook, state: AlertStateRepository, audit: AuditRepository, *,
                 webhook: WebhookSender | None = None, interval_s: float = 5.0) -> None:
        self._book, self._state, self._audit, self.webhook = book, state, audit, webhook
        self._watched: dict[str, _Watched] = {}
        self._checker = Periodic("spend-alerts", interval_s, self.check)
        self.fired = 0

    def watch(self, counter_id: str, cap: Cap, start: datetime, end: datetime) -> None:
        if cap.alert_thresholds:
            self._watched[counter_id] = _Watched(cap, start, end)

    def poke(self) -> None:
        """Check soon (after a refusal: the 100% alert should not wait for the interval)."""
        self._checker.wake()

    async def check(self) -> int:
        """Check every touched counter once; returns how many alerts fired."""
        watched, self._watched = self._watched, {}
        fired = 0
        for cid, w in watched.items():
            try:
                used = self._book.used(cid, await self._book.read(cid))
                fired += await self._fire_crossed(w, used)
            except Exception as exc:  # noqa: BLE001 - retried when the counter is touched again
                self._watched.setdefault(cid, w)
                log.warning("spend alert check failed (%s)", type(exc).__name__)
        return fired

    async def _fire_crossed(self, w: _Watched, used: int) -> int:
        cap, fired = w.cap, 0
        limit = cap.limit_usd_micros
        kind, ident = cap.counter
        for threshold in cap.alert_thresholds:
            if limit > 0 and used * 100 < threshold * limit:
                break
            alert_id = f"{cap.spend_limit_id}:{kind}:{ident}:{w.start:%Y%m%dT%H%M}:{threshold}"
            alert = {"spend_limit_id": cap.spend_limit_id, "principal": {"type": kind, "id": ident},
                     "whom": f"user {ident}" if kind == "user" else f"group {ident} (shared budget)",
                     "threshold": threshold, "period": cap.period, "amount_cents": cap.amount_cents,
                     "used_usd_micros": used, "period_start": iso_z(w.start), "resets_at": iso_z(w.end)}
            if not await self._state.claim(alert_id, fired_at=datetime.now(UTC), expires_at=w.end + timedelta(days=1),
                                           details={k: v for k, v in alert.items() if k != "whom"}):
                continue
            fired += 1
            self.fired += 1
            await self._audit.write(actor="system", ip=None, action="spend_limit.alert", target_type="spend_limit",
                                    target_id=cap.spend_limit_id, details=alert)
            if self.webhook is not None:
                self.webhook.send(slack_payload(alert))
        return fired

    def start(self) -> None:
        self._checker.start()

    async def aclose(self) -> None:
        await self._checker.stop()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                await self.check()
        if self.webhook is not None:
            await self.webhook.aclose()

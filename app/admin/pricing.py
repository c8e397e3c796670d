"""Admin price overrides (``/admin/pricing`` and ``/ui/pricing``): view, set, remove; audited.

Overrides live in MongoDB (app/store/prices.py) and win over ``PROXY_PRICING_OVERRIDES`` and the
shipped table (precedence in app/usage/pricing.py). A change is applied to this replica's
``PriceTable`` at once and read by the others within ``PROXY_PRICE_REFRESH_S`` (30 s). Events are
priced when recorded, so a change applies to new events only; stored costs are never rewritten.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from app.admin.service import Actor
from app.errors import InvalidRequest, NotFound
from app.store.audit import AuditRepository
from app.store.prices import MAX_OVERRIDES, PriceRepository
from app.tasks import Periodic
from app.usage.pricing import RATE_FIELDS, SOURCES, PriceTable, canonical_model, parse_override_key

log = logging.getLogger(__name__)


def model_key(raw: str) -> str:
    """``"bedrock:us.anthropic.claude-sonnet-4-5-20250929-v1:0"`` -> ``"bedrock:claude-sonnet-4-5"``
    (the stored ``_id``). Raises InvalidRequest for an empty or over-long name."""
    if not raw or len(raw) > 256 or not raw.isprintable():
        raise InvalidRequest("model: must be a model id of at most 256 printable characters")
    try:
        provider, name = parse_override_key(raw.strip())
    except ValueError as exc:
        raise InvalidRequest(f"model: {exc}") from None
    return f"{provider}:{name}" if provider else name


class PricingAdmin:
    """``describe()``, ``put(actor, model, rates)``, ``delete(actor, model)``, ``refresh()``; a
    background task (``start``/``aclose``) re-reads the overrides every ``refresh_s`` seconds."""

    def __init__(self, repo: PriceRepository, table: PriceTable, audit: AuditRepository, *,
                 refresh_s: float = 30.0) -> None:
        self._repo, self.table, self._audit = repo, table, audit
        self._refresher = Periodic("price-refresh", refresh_s, self._refresh_or_keep)

    async def refresh(self) -> dict[str, dict[str, str]]:
        """Load the stored overrides into the table; returns them."""
        stored = await self._repo.all()
        self.table.set_admin_overrides(stored)
        return stored

    def start(self) -> None:
        self._refresher.start()

    async def _refresh_or_keep(self) -> None:
        try:
            await self.refresh()
        except Exception as exc:  # noqa: BLE001 - keep the last good overrides
            log.warning("price override refresh failed (%s); keeping the last ones", type(exc).__name__)

    async def aclose(self) -> None:
        await self._refresher.stop()

    async def describe(self) -> dict[str, Any]:
        """``{"data": [row], "unknown_model": {rates}, "sources": {key: meaning}, "precedence": [...]}``;
        a row is ``{"provider", "model", <rates, USD / MTok as strings>, "source", "overridden"}``."""
        await self.refresh()
        return {"data": self.table.rows(), "unknown_model": self.table.unknown_price.rates(),
                "sources": SOURCES, "precedence": ["admin", "settings", "shipped table", "unknown-model default"]}

    async def put(self, actor: Actor, model: str, rates: dict[str, Any]) -> dict[str, Any]:
        """Set (create or replace) the override of ``model`` (any spelling; ``bedrock:``/``anthropic:``
        prefix for one provider). ``rates``: USD / MTok, any of input, output, cache_write_5m,
        cache_write_1h, cache_read (missing ones: the price it overrides, or the cache multipliers).
        Raises InvalidRequest (400) naming the bad rate."""
        key = model_key(model)
        if not isinstance(rates, dict) or not rates:
            raise InvalidRequest(f"rates: give at least one of {', '.join(RATE_FIELDS)} (USD per million tokens)")
        try:
            _, price = self.table.check_override(key, rates)
        except ValueError as exc:
            raise InvalidRequest(f"rates{exc}" if str(exc).startswith("[") else f"rates: {exc}") from None
        stored = {name: format(Decimal(str(value)).normalize(), "f") for name, value in rates.items()}
        current = await self._repo.all()
        if key not in current and len(current) >= MAX_OVERRIDES:
            raise InvalidRequest(f"at most {MAX_OVERRIDES} price overrides")
        await self._repo.put(key, stored, actor=actor.username)
        await self._audit.write(actor=actor.username, ip=actor.ip, action="pricing.set", target_type="model",
                                target_id=key, details={"before": current.get(key), "after": stored})
        await self.refresh()
        return {"model": key, "rates": stored, "effective": price.rates(), "source": "admin"}

    async def delete(self, actor: Actor, model: str) -> dict[str, Any]:
        """Remove the override (the settings' or shipped price applies again). Raises NotFound (404)."""
        key = model_key(model)
        before = await self._repo.get(key)
        if before is None or not await self._repo.delete(key):
            raise NotFound(f"no price override for model {key!r}")
        await self._audit.write(actor=actor.username, ip=actor.ip, action="pricing.delete", target_type="model",
                                target_id=key, details={"before": before})
        await self.refresh()
        return {"model": key, "deleted": True}

    async def get(self, model: str) -> dict[str, Any]:
        """The prices in force for one model: ``{"model", "canonical_model", "known", "anthropic":
        {rates}, "bedrock_global": {rates}, "rows": [...]}`` (unknown: the default tier, ``known`` false)."""
        key = model_key(model)
        name = canonical_model(key.partition(":")[2] if ":" in key else key) or key
        await self.refresh()
        return {"model": model, "canonical_model": name, "known": self.table.knows(name),
                "anthropic": self.table.price_or_default("anthropic", name).rates(),
                "bedrock_global": self.table.price_or_default("bedrock", name).rates(),
                "rows": [r for r in self.table.rows() if r["model"] == name]}

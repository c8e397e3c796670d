"""Admin price overrides (collection ``prices``): one document per model key.

``{"_id": "<model key>", "rates": {"input": "5", "output": "25", ...}, "updated_at", "updated_by"}``.
The key is the canonical model name (app/usage/pricing.py ``canonical_model``), optionally prefixed
``anthropic:`` or ``bedrock:``; rates are USD per million tokens stored as decimal strings (exact).
Read whole (a few dozen documents at most) by :class:`app.admin.pricing.PricingAdmin`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

MAX_OVERRIDES = 1000


class PriceRepository:
    def __init__(self, db: Any) -> None:
        self._prices = db["prices"]

    async def all(self) -> dict[str, dict[str, str]]:
        """``{model key: rates}`` (at most MAX_OVERRIDES)."""
        docs = await self._prices.find({}).to_list(length=MAX_OVERRIDES)
        return {doc["_id"]: dict(doc.get("rates") or {}) for doc in docs}

    async def get(self, key: str) -> dict[str, str] | None:
        doc = await self._prices.find_one({"_id": key})
        return dict(doc.get("rates") or {}) if doc else None

    async def put(self, key: str, rates: dict[str, str], *, actor: str) -> None:
        await self._prices.update_one({"_id": key}, {"$set": {"rates": rates, "updated_at": datetime.now(UTC),
                                                              "updated_by": actor}}, upsert=True)

    async def delete(self, key: str) -> bool:
        return (await self._prices.delete_one({"_id": key})).deleted_count == 1

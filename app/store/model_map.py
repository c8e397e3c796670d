"""Admin overrides of the Anthropic -> Bedrock model mapping (collection ``model_map``).

``{"_id": "<anthropic model id>", "bedrock_model_id": "<model id or inference profile id>", "updated_at"}``.
Read through :class:`ModelMapCache` (one query per ``ttl_s`` seconds), merged over the settings'
``PROXY_BEDROCK_MODEL_MAP`` and the built-in table.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)


class ModelMapRepository:
    def __init__(self, db: Any) -> None:
        self._map = db["model_map"]

    async def all(self) -> dict[str, str]:
        docs = await self._map.find({}).to_list(length=1000)
        return {doc["_id"]: doc["bedrock_model_id"] for doc in docs}

    async def put(self, anthropic_model: str, bedrock_model_id: str) -> None:
        await self._map.update_one({"_id": anthropic_model},
                                   {"$set": {"bedrock_model_id": bedrock_model_id, "updated_at": datetime.now(UTC)}},
                                   upsert=True)

    async def delete(self, anthropic_model: str) -> bool:
        return (await self._map.delete_one({"_id": anthropic_model})).deleted_count == 1


class ModelMapCache:
    """Settings overrides + the DB collection (DB wins), refreshed at most every ``ttl_s`` seconds."""

    def __init__(self, repo: ModelMapRepository, settings_map: dict[str, str], *, ttl_s: float = 30.0) -> None:
        self._repo, self._settings_map, self._ttl_s = repo, dict(settings_map), ttl_s
        self._merged = dict(settings_map)
        self._loaded_at = float("-inf")

    async def overrides(self) -> dict[str, str]:
        if time.monotonic() - self._loaded_at >= self._ttl_s:
            try:
                self._merged = {**self._settings_map, **await self._repo.all()}
            except Exception as exc:  # noqa: BLE001 - keep the last good map
                log.warning("model map read failed: %s", type(exc).__name__)
            self._loaded_at = time.monotonic()
        return self._merged

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")

"""Admin view and overrides of the Anthropic -> Bedrock model mapping (``/admin/model-map``).

Precedence when a request falls back (app/bedrock/models.py ``resolve_model``): admin overrides
(collection ``model_map``) > ``PROXY_BEDROCK_MODEL_MAP`` > the built-in table > the rule for
unknown ``claude-*`` ids. Every change is audited.
"""

from __future__ import annotations

from typing import Any

from app.admin.service import Actor
from app.bedrock.models import resolve_model
from app.errors import InvalidRequest, NotFound
from app.store.audit import AuditRepository
from app.store.model_map import ModelMapCache, ModelMapRepository

_MODEL_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._:/[]")


class ModelMapAdmin:
    """``describe()``, ``put(actor, anthropic_model, bedrock_model_id)``, ``delete(actor, anthropic_model)``."""

    def __init__(self, repo: ModelMapRepository, cache: ModelMapCache, audit: AuditRepository, *,
                 settings_map: dict[str, str], profile_prefix: str, known_models: tuple[str, ...]) -> None:
        self._repo, self._cache, self._audit = repo, cache, audit
        self._settings_map, self._profile_prefix = dict(settings_map), profile_prefix
        self._known = known_models

    async def describe(self) -> dict[str, Any]:
        """``{"profile_prefix", "models": [{"anthropic_model", "bedrock_model_id", "source"}]}``
        for every built-in model and every override; ``source`` is admin | settings | default."""
        admin = await self._repo.all()
        merged = {**self._settings_map, **admin}
        rows = []
        for name in sorted({*self._known, *merged}):
            source = "admin" if name in admin else "settings" if name in self._settings_map else "default"
            try:
                model_id = resolve_model(name, overrides=merged, profile_prefix=self._profile_prefix).model_id
            except NotFound:
                model_id = None
            rows.append({"anthropic_model": name, "bedrock_model_id": model_id, "source": source})
        return {"profile_prefix": self._profile_prefix, "models": rows}

    async def put(self, actor: Actor, anthropic_model: str, bedrock_model_id: str) -> dict[str, Any]:
        """Raises InvalidRequest (400) for ids with characters Bedrock model ids never contain."""
        for label, value in (("anthropic model", anthropic_model), ("bedrock_model_id", bedrock_model_id)):
            if not value or not set(value) <= _MODEL_ID_CHARS:
                raise InvalidRequest(f"{label}: {value!r} is not a model id")
        await self._repo.put(anthropic_model, bedrock_model_id)
        self._cache.invalidate()
        await self._audit.write(actor=actor.username, ip=actor.ip, action="model_map.set", target_type="model",
                                target_id=anthropic_model, details={"bedrock_model_id": bedrock_model_id})
        return {"anthropic_model": anthropic_model, "bedrock_model_id": bedrock_model_id, "source": "admin"}

    async def delete(self, actor: Actor, anthropic_model: str) -> dict[str, Any]:
        """Raises NotFound (404) when there is no admin override for ``anthropic_model``."""
        if not await self._repo.delete(anthropic_model):
            raise NotFound(f"no admin override for model {anthropic_model!r}")
        self._cache.invalidate()
        await self._audit.write(actor=actor.username, ip=actor.ip, action="model_map.delete",
                                target_type="model", target_id=anthropic_model, details={})
        return {"anthropic_model": anthropic_model, "deleted": True}

"""Model allow-lists per group and per access key, and ``GET /v1/models`` (no store call).

A user may use the union of the allow-lists of their groups that have one (a group without a list
restricts nothing and widens nothing; no list at all: every model), narrowed by the access key's
own list when it has one. An entry matches a requested model when it is the same id, the same id
without its date or ``[1m]`` suffix (``claude-sonnet-4-5`` allows ``claude-sonnet-4-5-20250929``
and ``claude-sonnet-4-5[1m]``), or a glob (``claude-haiku-*``). A request for another model is
refused before any upstream call: 403 ``permission_error`` naming the model and what is allowed,
with ``x-should-retry: false`` (the Anthropic SDKs, hence Claude Code, honour it).

``GET /v1/models`` answers in the shape of Anthropic's list-models endpoint
(https://docs.anthropic.com/en/api/models-list: ``{"data": [{"type": "model", "id",
"display_name", "created_at"}], "has_more", "first_id", "last_id"}``) with the catalogue
(app/bedrock/models.py MODELS) filtered by the caller's allow-list, plus allow-list entries that
are plain ids outside the catalogue. Claude Code reads it with
``CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY=1`` and gives it 3 s: it reads only the cached
principal and the cached group table.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from app.bedrock.models import MODELS, normalize
from app.errors import InvalidRequest, PermissionDenied

if TYPE_CHECKING:
    from app.auth.access import Principal
    from app.governance.cache import GovernanceCache
    from app.proxy.request import ProxyRequest

MAX_ENTRIES = 200
ENTRY_MAX_CHARS = 128
_ENTRY = re.compile(r"^[A-Za-z0-9._:/\-\[\]*]+$")
_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")


def clean_model_list(models: Iterable[str] | None) -> list[str]:
    """Validate an allow-list: strings of model-id characters (``*`` allowed), at most
    MAX_ENTRIES, duplicates dropped. Raises InvalidRequest (400)."""
    if models is None or isinstance(models, str):
        raise InvalidRequest("allowed_models: expected a list of model ids or null")
    out: list[str] = []
    for m in models:
        if not isinstance(m, str) or not m.strip() or len(m) > ENTRY_MAX_CHARS or not _ENTRY.fullmatch(m.strip()):
            raise InvalidRequest(f"allowed_models: {m!r} is not a model id or glob")
        out.append(m.strip())
    if len(out) > MAX_ENTRIES:
        raise InvalidRequest(f"allowed_models: at most {MAX_ENTRIES} entries")
    return list(dict.fromkeys(out))


def matches(entry: str, model: str) -> bool:
    """True when allow-list ``entry`` allows ``model`` (see the module docstring)."""
    entry_l, model_l = entry.lower(), model.lower()
    if "*" in entry_l:
        return fnmatch.fnmatchcase(model_l, entry_l)
    if entry_l == model_l:
        return True
    base, _ = normalize(model_l)
    return base == normalize(entry_l)[0] and entry_l == normalize(entry_l)[0]


class Allowed:
    """What one principal may use: ``lists`` is a sequence of allow-lists that must each allow the
    model (the groups' union, then the key's); empty: everything."""

    __slots__ = ("lists",)

    def __init__(self, lists: Sequence[Sequence[str]]) -> None:
        self.lists = lists

    @property
    def unrestricted(self) -> bool:
        return not self.lists

    def __call__(self, model: str) -> bool:
        return all(any(matches(e, model) for e in entries) for entries in self.lists)

    def describe(self) -> list[str]:
        """The narrowest list, for messages (the key's when set, else the groups' union)."""
        return list(self.lists[-1]) if self.lists else []


def allowed_for(principal: Principal, groups: Mapping[str, Mapping[str, Any]]) -> Allowed:
    """The allow-lists that apply to ``principal`` (its groups from the cached table, then its key's)."""
    lists: list[Sequence[str]] = []
    group_lists = [doc["allowed_models"] for g in principal.groups
                   if (doc := groups.get(g)) is not None and doc.get("allowed_models") is not None]
    if group_lists:
        lists.append(list(dict.fromkeys(m for models in group_lists for m in models)))
    if principal.allowed_models is not None:
        lists.append(list(principal.allowed_models))
    return Allowed(lists)


def display_name(model_id: str) -> str:
    """``claude-opus-4-5`` -> ``Claude Opus 4.5``; ``claude-3-5-haiku`` -> ``Claude Haiku 3.5``."""
    parts = model_id.removeprefix("claude-").split("-")
    words = [p for p in parts if not p.isdigit()]
    numbers = [p for p in parts if p.isdigit() and len(p) < 8]
    return " ".join(["Claude", *(w.capitalize() for w in words), ".".join(numbers)]).strip()


def _created_at(foundation_id: str) -> str:
    """The release date in the Bedrock id (``...-20250929-v1:0``), else the Unix epoch (unknown)."""
    found = _DATE.search(foundation_id)
    if found is None:
        return "1970-01-01T00:00:00Z"
    y, m, d = (int(x) for x in found.groups())
    return datetime(y, m, d, tzinfo=UTC).isoformat().replace("+00:00", "Z")


CATALOGUE: tuple[dict[str, str], ...] = tuple(
    {"type": "model", "id": model_id, "display_name": display_name(model_id),
     "created_at": _created_at(entry.foundation_id)} for model_id, entry in MODELS.items())


class ModelPolicy:
    """The allow-list check for the Forwarder, and the model list. ``cache``: the group table."""

    def __init__(self, cache: GovernanceCache) -> None:
        self._cache = cache

    def allowed(self, principal: Principal) -> Allowed:
        return allowed_for(principal, self._cache.groups)

    async def check(self, preq: ProxyRequest) -> None:
        """Raise PermissionDenied (403) when the request's model is not allowed (both endpoints)."""
        allowed = self.allowed(preq.principal)
        if allowed.unrestricted:
            return
        model = preq.model
        if model is None or not allowed(model):
            listed = ", ".join(allowed.describe()) or "(none)"
            # PermissionDenied sends x-should-retry: false (app/errors.py).
            raise PermissionDenied(f"model {model!r} is not allowed for this access key; allowed models: {listed}")

    def list_models(self, principal: Principal, *, limit: int = 1000, after_id: str | None = None,
                    before_id: str | None = None) -> dict[str, Any]:
        """Anthropic's list-models page of the models ``principal`` may use (catalogue order)."""
        allowed = self.allowed(principal)
        rows = [m for m in CATALOGUE if allowed(m["id"])]
        known = {m["id"] for m in rows} | {m["id"] for m in CATALOGUE}
        for entries in allowed.lists[-1:]:
            for entry in entries:
                if "*" not in entry and entry not in known and allowed(entry):
                    rows.append({"type": "model", "id": entry, "display_name": entry,
                                 "created_at": "1970-01-01T00:00:00Z"})
                    known.add(entry)
        ids = [r["id"] for r in rows]
        if after_id in ids:
            rows = rows[ids.index(after_id) + 1:]
        elif before_id in ids:
            rows = rows[:ids.index(before_id)]
            rows = rows[-limit:]
        page, has_more = rows[:limit], len(rows) > limit
        return {"data": page, "has_more": has_more, "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None}

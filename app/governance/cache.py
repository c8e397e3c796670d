"""This replica's copy of the groups and spend limits tables, for the request path (no store call).

Both collections are small (tens to thousands of documents). :meth:`GovernanceCache.load` reads
them at start; a background task reloads them every ``refresh_s`` (other replicas' changes arrive
within that); this replica's own changes go in at once through :meth:`put_group` & co. A failed
reload keeps the last good tables (logged); ``stale`` says whether the last load failed, which the
spend check uses for ``PROXY_SPEND_LIMITS_FAIL_CLOSED``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from app.governance.resolve import LimitTable
from app.store.groups import GroupRepository
from app.store.spend_limits import SpendLimitRepository
from app.tasks import Periodic

log = logging.getLogger(__name__)


class GovernanceCache:
    """``groups``: ``{group id: group document}``; ``limits``: the LimitTable in force."""

    def __init__(self, groups: GroupRepository, limits: SpendLimitRepository, *, refresh_s: float = 5.0,
                 timeout_s: float = 2.0) -> None:
        self._group_repo, self._limit_repo = groups, limits
        self._timeout_s = timeout_s
        self.groups: dict[str, Mapping[str, Any]] = {}
        self.limits = LimitTable()
        self.loaded = False  # one load succeeded
        self.stale = True  # the last load failed (or none was made)
        self._refresher = Periodic("governance-cache", refresh_s, self.load)

    async def load(self) -> bool:
        """Reload both tables; False (and the old tables kept) when the store fails."""
        try:
            async with asyncio.timeout(self._timeout_s):
                groups, limits = await asyncio.gather(self._group_repo.all(), self._limit_repo.all())
        except Exception as exc:  # noqa: BLE001 - keep serving the last good tables
            if not self.stale:
                log.warning("governance tables not reloaded (%s); keeping the last good copy", type(exc).__name__)
            self.stale = True
            return False
        self.groups = {g["_id"]: g for g in groups}
        self.limits = LimitTable(limits)
        self.loaded, self.stale = True, False
        return True

    def group_by_name_or_id(self, ref: str) -> Mapping[str, Any] | None:
        if ref in self.groups:
            return self.groups[ref]
        return next((g for g in self.groups.values() if g.get("name") == ref), None)

    def put_group(self, doc: Mapping[str, Any]) -> None:
        self.groups[doc["_id"]] = doc

    def drop_group(self, group_id: str) -> None:
        self.groups.pop(group_id, None)

    def start(self) -> None:
        self._refresher.start()

    async def aclose(self) -> None:
        await self._refresher.stop()

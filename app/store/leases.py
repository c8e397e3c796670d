"""Shared quota counters that replicas lease slices of (collection ``quota_counters``).

One document per limit counter and window::

    {"_id": "<metric>:<scope>:<scope id>:<window>:<start>", "granted": <units>, "expires_at",
     "leases": {"<holder>": {"n": <units granted to it>, "s": <units it reported spent>, "e": <lease expiry>}}}

``granted`` is everything handed out in the window: leases (spent or not) plus corrections for
usage beyond the estimates. A grant is one atomic ``findAndModify`` whose filter only matches while
``granted <= limit - amount``, so the sum of grants never passes the limit (the ``$inc`` cannot
over-grant even when replicas race). Returning a lease, reclaiming an expired one and recording a
correction are single-document updates too. Only DocumentDB 5.0 features: no transactions, no
pipeline updates, no ``$$NOW`` (times come from the caller). A TTL index deletes a window's document
after ``expires_at``. Units are integers (requests, tokens, micro-USD). Raises pymongo errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

COUNTERS = "quota_counters"
INDEXES = {COUNTERS: [IndexModel([("expires_at", ASCENDING)], name="expires_at_ttl", expireAfterSeconds=0)]}


class LeaseRepository:
    """Atomic operations on ``quota_counters``. ``holder`` ids must not contain ``.`` or ``$``."""

    def __init__(self, db: Any) -> None:
        self._counters = db[COUNTERS]

    async def create(self, counter_id: str, *, initial: int, expires_at: datetime) -> None:
        """Create the window's counter at ``initial`` units unless it exists (first writer wins)."""
        try:
            await self._counters.update_one(
                {"_id": counter_id},
                {"$setOnInsert": {"granted": initial, "leases": {}, "expires_at": expires_at}}, upsert=True)
        except DuplicateKeyError:
            pass  # another replica created it at the same moment

    async def take(self, counter_id: str, *, holder: str, amount: int, limit: int, spent: int,
                   lease_until: datetime, expires_at: datetime) -> dict[str, Any] | None:
        """Grant ``amount`` more units to ``holder``'s lease and extend it to ``lease_until``; also
        records ``spent`` (the holder's own count). Returns the counter after the update, or None
        when the grant would pass ``limit`` (nothing changed). ``amount`` 0 only extends the lease.
        Creates a missing counter at 0 (callers create day/month counters first, at their usage).
        """
        field = f"leases.{holder}"
        query: dict[str, Any] = {"_id": counter_id}
        if amount > 0:
            query["granted"] = {"$lte": limit - amount}
        update = {"$inc": {"granted": amount, f"{field}.n": amount},
                  "$set": {f"{field}.s": spent, f"{field}.e": lease_until},
                  "$setOnInsert": {"expires_at": expires_at}}
        try:
            return await self._counters.find_one_and_update(query, update, upsert=True,
                                                            return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:
            # The counter exists but does not match ``granted <= limit - amount``: refused. (Two
            # replicas creating it at once can land here too; the caller re-reads and retries.)
            return None

    async def read(self, counter_id: str) -> dict[str, Any] | None:
        return await self._counters.find_one({"_id": counter_id})

    async def give_back(self, counter_id: str, *, holder: str, delta: int) -> bool:
        """Close ``holder``'s lease, adding ``delta`` (= spent - granted to it: negative returns the
        unused part, positive records usage beyond it) to ``granted``. False when the lease is not
        there any more (reclaimed by another replica, or never created); nothing changed then."""
        result = await self._counters.update_one(
            {"_id": counter_id, f"leases.{holder}": {"$exists": True}},
            {"$inc": {"granted": delta}, "$unset": {f"leases.{holder}": ""}})
        return bool(result.matched_count)

    async def report(self, counter_id: str, *, holder: str, spent: int) -> bool:
        """Record ``holder``'s spent count on its lease (what a reclaim would count as used).
        False when the lease is not there any more."""
        result = await self._counters.update_one(
            {"_id": counter_id, f"leases.{holder}": {"$exists": True}}, {"$set": {f"leases.{holder}.s": spent}})
        return bool(result.matched_count)

    async def adjust(self, counter_id: str, delta: int, *, expires_at: datetime) -> None:
        """Add ``delta`` units to ``granted`` (usage settled after its lease closed, or counted
        while the store was failing); creates the counter for a positive ``delta``."""
        if delta:
            await self._counters.update_one({"_id": counter_id},
                                            {"$inc": {"granted": delta}, "$setOnInsert": {"leases": {},
                                                                                         "expires_at": expires_at}},
                                            upsert=delta > 0)

    async def reclaim(self, counter_id: str, holder: str, lease: Mapping[str, Any]) -> bool:
        """Close another holder's expired lease as read in ``lease`` (``{"n", "s", "e"}``): its
        unspent part (n - s) goes back. Matches only that exact state, so a lease renewed or
        reported meanwhile is left alone and no lease is reclaimed twice."""
        n, s = int(lease.get("n", 0)), int(lease.get("s", 0))
        field = f"leases.{holder}"
        result = await self._counters.update_one(
            {"_id": counter_id, f"{field}.n": n, f"{field}.s": s, f"{field}.e": lease.get("e")},
            {"$inc": {"granted": s - n}, "$unset": {field: ""}})
        return bool(result.matched_count)

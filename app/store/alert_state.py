"""Which spend alerts have fired (collection ``spend_alerts``): one document per alert, so that an
alert fires once per limit, principal, period and threshold across all replicas.

``{"_id": "<spend limit id>:<principal>:<period start>:<threshold>", "fired_at", "expires_at", ...details}``
:meth:`claim` is one insert: True for the replica that inserts first, False when it exists. A TTL
index removes documents after ``expires_at`` (the period's end + a day). Raises pymongo errors
other than the duplicate key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

ALERTS = "spend_alerts"
INDEXES = {ALERTS: [IndexModel([("expires_at", ASCENDING)], name="expires_at_ttl", expireAfterSeconds=0)]}


class AlertStateRepository:
    def __init__(self, db: Any) -> None:
        self._alerts = db[ALERTS]

    async def claim(self, alert_id: str, *, fired_at: datetime, expires_at: datetime,
                    details: dict[str, Any]) -> bool:
        try:
            await self._alerts.insert_one({"_id": alert_id, "fired_at": fired_at, "expires_at": expires_at,
                                           **details})
        except DuplicateKeyError:
            return False
        return True

    async def recent(self, *, since: datetime, limit: int = 200) -> list[dict[str, Any]]:
        """Alerts fired since ``since``, newest first (for the dashboard)."""
        cursor = self._alerts.find({"fired_at": {"$gte": since}}).sort("fired_at", -1).limit(limit)
        return await cursor.to_list(length=limit)

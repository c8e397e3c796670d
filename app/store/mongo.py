"""The MongoDB/DocumentDB connection: the only place that imports the driver (motor).

With no URL the store is embedded: an in-process ``mongomock-motor`` client whose data is lost on
exit. With a URL, options in it (``tls=true``, ``tlsCAFile=...``, ``retryWrites=false``,
``replicaSet=rs0``, ``readPreference=secondaryPreferred``) pass through to the driver unchanged,
as DocumentDB needs (https://docs.aws.amazon.com/documentdb/latest/developerguide/connect_programmatically.html).
Everything written here stays inside DocumentDB 5.0's subset: no transactions, no ``$merge``,
no retryable writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel

# Callers catch this one family for "the store is unreachable or failed".
from pymongo.errors import PyMongoError as StoreError  # noqa: F401  (re-exported)


@dataclass
class Store:
    """An open client and its database. ``embedded`` is True for the in-process store."""

    client: Any
    db: Any
    embedded: bool

    def close(self) -> None:
        self.client.close()

    async def ping(self) -> bool:
        """True when the server answers ``ping``; never raises."""
        try:
            await self.db.command("ping")
            return True
        except Exception:  # noqa: BLE001 - readiness is a yes/no answer
            return False


def open_store(mongodb_url: str | None, database: str, *, server_selection_timeout_ms: int = 5000) -> Store:
    """Open the store: motor for a URL, mongomock-motor when ``mongodb_url`` is None.

    Does no I/O (motor connects lazily); call :func:`ensure_indexes` next.
    """
    if mongodb_url is None:
        from mongomock_motor import AsyncMongoMockClient

        client = AsyncMongoMockClient(tz_aware=True)
        return Store(client=client, db=client[database], embedded=True)
    from motor.motor_asyncio import AsyncIOMotorClient

    client = AsyncIOMotorClient(
        mongodb_url,
        tz_aware=True,
        appname="claude-code-proxy",
        serverSelectionTimeoutMS=server_selection_timeout_ms,
    )
    return Store(client=client, db=client[database], embedded=False)


INDEXES: dict[str, list[IndexModel]] = {
    "users": [IndexModel([("email", ASCENDING)], name="email"),
              IndexModel([("created_at", DESCENDING)], name="created_at")],
    "access_keys": [IndexModel([("key_hash", ASCENDING)], name="key_hash", unique=True),
                    IndexModel([("user_id", ASCENDING), ("created_at", DESCENDING)], name="user_created")],
    "admins": [IndexModel([("username", ASCENDING)], name="username", unique=True)],
}


async def ensure_indexes(db: Any, extra: dict[str, list[IndexModel]] | None = None) -> None:
    """Create every index idempotently (``create_indexes`` is a no-op for existing identical ones)."""
    for collection, models in {**INDEXES, **(extra or {})}.items():
        await db[collection].create_indexes(models)

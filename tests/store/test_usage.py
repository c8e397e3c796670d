"""app/store/usage.py: the usage collections' indexes (TTL on raw events, expiry on buckets and folds)."""

from __future__ import annotations

from app.store.usage import EVENTS, FOLDS, ensure_usage_indexes
from tests.store.test_usage_write import new_db


async def test_indexes_include_the_event_ttl_and_bucket_expiry() -> None:
    db = new_db()
    await ensure_usage_indexes(db, event_ttl_days=90)
    info = await db[EVENTS].index_information()
    assert info["time_ttl"]["expireAfterSeconds"] == 90 * 86400
    assert (await db["usage_buckets"].index_information())["expires_at_ttl"]["expireAfterSeconds"] == 0
    assert (await db[FOLDS].index_information())["expires_at_ttl"]["expireAfterSeconds"] == 0
    await ensure_usage_indexes(db, event_ttl_days=90)  # idempotent

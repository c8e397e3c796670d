"""CooldownTracker (app/proxy/cooldowns.py): cooldowns per credential, the circuit breaker, store failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from app.proxy.cooldowns import CooldownTracker


class MemoryRepo:
    """The cooldown repository's two calls, in memory; ``fail`` makes both raise."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.fail = False

    async def get(self, fingerprint: str) -> dict[str, Any] | None:
        if self.fail:
            raise ConnectionError("store down")
        return self.docs.get(fingerprint)

    async def start(self, fingerprint: str, until: datetime, reason: str) -> None:
        if self.fail:
            raise ConnectionError("store down")
        self.docs[fingerprint] = {"until": until, "reason": reason}


def tracker(repo: MemoryRepo, **kw: Any) -> CooldownTracker:
    return CooldownTracker(repo, **{"cache_ttl_s": 0, **kw})  # type: ignore[arg-type]


async def test_no_cooldown_until_one_starts_then_its_reason() -> None:
    repo = MemoryRepo()
    cooldowns = tracker(repo)
    assert await cooldowns.active("fp") is None
    await cooldowns.start("fp", 30, "rate_limited")
    assert await cooldowns.active("fp") == "rate_limited" and await cooldowns.active("other") is None


async def test_a_cooldown_started_by_another_replica_applies_here() -> None:
    repo = MemoryRepo()
    repo.docs["fp"] = {"until": datetime.now(UTC) + timedelta(seconds=60), "reason": "circuit_open"}
    assert await tracker(repo).active("fp") == "circuit_open"


async def test_an_expired_cooldown_is_none() -> None:
    repo = MemoryRepo()
    repo.docs["fp"] = {"until": datetime.now(UTC) - timedelta(seconds=1), "reason": "rate_limited"}
    assert await tracker(repo).active("fp") is None


async def test_failures_open_the_circuit_at_the_threshold() -> None:
    repo = MemoryRepo()
    cooldowns = tracker(repo, failure_threshold=3, window_s=30, open_s=15)
    assert [await cooldowns.record_failure("fp") for _ in range(3)] == [False, False, True]
    assert await cooldowns.active("fp") == "circuit_open"
    assert repo.docs["fp"]["until"] <= datetime.now(UTC) + timedelta(seconds=15)


async def test_a_store_failure_reads_as_no_cooldown_and_a_write_stays_in_the_local_cache() -> None:
    repo = MemoryRepo()
    repo.fail = True
    assert await tracker(repo).active("fp") is None
    cached = CooldownTracker(repo, cache_ttl_s=60)  # type: ignore[arg-type]
    await cached.start("fp", 30, "rate_limited")  # the write fails; the local cache still holds it
    assert await cached.active("fp") == "rate_limited"


class SteppingTimer:
    """A TTL cache timer that moves one second on every reading: an entry read twice in a row (a
    membership test, then the item) can expire between the two readings."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


async def test_a_cached_entry_expiring_mid_lookup_is_a_miss_not_a_key_error() -> None:
    """Seen under load as a 500 (KeyError from cachetools): the entry expired between ``in`` and ``[]``."""
    from cachetools import TTLCache

    from app.bedrock.credentials import BedrockKeys

    repo = MemoryRepo()
    cooldowns = tracker(repo, cache_ttl_s=2.0)
    cooldowns._cache = TTLCache(maxsize=10, ttl=1.5, timer=SteppingTimer())
    await cooldowns.start("fp", 30, "rate_limited")  # cached at t=1, expires at 2.5
    assert await cooldowns.active("fp") == "rate_limited"  # read at t=2 (the old `[]` came at t=3)

    class NoKeys:
        async def get(self, access_key_id: str) -> None:
            return None

    keys = BedrockKeys(NoKeys(), cipher=None)
    keys._cache = TTLCache(maxsize=10, ttl=1.5, timer=SteppingTimer())
    keys._cache["ak_1"] = None  # "no Bedrock key", cached at t=1
    assert await keys.bearer_for("ak_1") is None

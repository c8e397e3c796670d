"""app/auth/access.py: access-key resolution, and what a store outage does to it (faults injected
at the repository layer; a fake monotonic clock moves time)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from mongomock_motor import AsyncMongoMockClient

from app.auth.access import AccessKeyResolver, key_refused_message
from app.auth.keys import generate_access_key, hash_access_key
from app.errors import AuthenticationFailed, ServiceUnavailable
from app.store.access_keys import AccessKeyRepository
from app.store.users import UserRepository
from tests.support.faults import Faulty, Outage

SECRET = b"s" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class World:
    """A mongomock store with one user, a resolver over faulty repositories, and a clock."""

    def __init__(self, **resolver_options: Any) -> None:
        db = AsyncMongoMockClient(tz_aware=True)["t"]
        self.keys, self.users = AccessKeyRepository(db), UserRepository(db)
        self.outage, self.clock = Outage(), Clock()
        options = {"cache_ttl_s": 30.0, "stale_grace_s": 900.0, "last_used_interval_s": 1e9, **resolver_options}
        self.resolver = AccessKeyResolver(Faulty(self.keys, self.outage), Faulty(self.users, self.outage), SECRET,
                                          clock=self.clock, **options)
        self.user_id = ""

    async def new_key(self) -> tuple[str, str]:
        if not self.user_id:
            self.user_id = (await self.users.create("Ada"))["_id"]
        key = generate_access_key()
        doc = await self.keys.create(user_id=self.user_id, key_hash=hash_access_key(SECRET, key), prefix=key[:13])
        return key, doc["_id"]


async def test_cached_key_is_served_through_an_outage_until_the_grace_period_ends() -> None:
    world = World()
    key, key_id = await world.new_key()
    assert (await world.resolver.resolve(key)).access_key_id == key_id
    world.outage.down = True
    world.clock.now += 31  # past the 30 s cache entry: the next call needs the store
    assert (await world.resolver.resolve(key)).access_key_id == key_id
    world.clock.now += 600
    assert (await world.resolver.resolve(key)).access_key_id == key_id
    assert world.resolver.served_stale == 2 and world.resolver.store_failures >= 1
    world.clock.now += 300  # 931 s after the last good lookup > 900 s
    with pytest.raises(ServiceUnavailable) as refused:
        await world.resolver.resolve(key)
    assert refused.value.status_code == 503 and refused.value.error_type == "overloaded_error"
    assert refused.value.headers["retry-after"] == "5"


async def test_a_key_never_looked_up_gets_503_with_retry_after() -> None:
    world = World()
    key, _ = await world.new_key()
    world.outage.down = True
    with pytest.raises(ServiceUnavailable) as refused:
        await world.resolver.resolve(key)
    assert refused.value.body() == {"type": "error", "error": {
        "type": "overloaded_error", "message": refused.value.message}}
    assert "retry-after" in refused.value.headers and world.resolver.refused_unavailable == 1


async def test_a_key_revoked_before_the_outage_stays_refused() -> None:
    world = World()
    key, key_id = await world.new_key()
    await world.resolver.resolve(key)
    await world.keys.revoke(key_id)
    world.clock.now += 31
    with pytest.raises(AuthenticationFailed):
        await world.resolver.resolve(key)  # the store says revoked
    world.outage.down = True
    for _ in range(2):
        world.clock.now += 31
        with pytest.raises(AuthenticationFailed):  # still refused: a negative is never turned positive
            await world.resolver.resolve(key)


async def test_an_unknown_key_stays_refused_during_an_outage() -> None:
    world = World()
    unknown = generate_access_key()
    with pytest.raises(AuthenticationFailed):
        await world.resolver.resolve(unknown)
    world.outage.down = True
    world.clock.now += 31
    with pytest.raises(AuthenticationFailed):
        await world.resolver.resolve(unknown)


async def test_a_key_forgotten_on_revocation_is_not_served_from_before_it() -> None:
    world = World()
    key, key_id = await world.new_key()
    await world.resolver.resolve(key)
    await world.keys.revoke(key_id)
    world.resolver.forget(hash_access_key(SECRET, key))  # what AdminService does on revoke
    world.outage.down = True
    with pytest.raises(ServiceUnavailable):
        await world.resolver.resolve(key)


async def test_after_a_failure_the_store_is_left_alone_for_a_moment() -> None:
    world = World(cache_ttl_s=0)  # no cache: every call would go to the store
    key, _ = await world.new_key()
    await world.resolver.resolve(key)
    world.outage.down = True
    for _ in range(20):
        await world.resolver.resolve(key)
    assert world.outage.calls["find_by_hash"] == 1  # one failed lookup, then answers from the last good one
    world.clock.now += 2.5
    await world.resolver.resolve(key)
    assert world.outage.calls["find_by_hash"] == 2
    world.outage.down = False
    world.clock.now += 2.5
    await world.resolver.resolve(key)
    assert world.outage.calls["find_by_hash"] == 2 and world.resolver.served_stale == 21


async def test_a_store_that_hangs_counts_as_down_after_the_lookup_timeout() -> None:
    world = World(lookup_timeout_s=0.05)
    key, key_id = await world.new_key()
    await world.resolver.resolve(key)
    world.outage.down, world.outage.mode = True, "hang"
    world.clock.now += 31
    assert (await world.resolver.resolve(key)).access_key_id == key_id
    other, _ = await world.new_key()
    world.clock.now += 3
    with pytest.raises(ServiceUnavailable):
        await world.resolver.resolve(other)


async def test_concurrent_lookups_of_one_key_share_one_store_call(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    world = World()
    key, _ = await world.new_key()
    calls = 0
    find = world.keys.find_by_hash

    async def counting(key_hash: str) -> Any:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return await find(key_hash)

    monkeypatch.setattr(world.keys, "find_by_hash", counting)
    await asyncio.gather(*(world.resolver.resolve(key) for _ in range(50)))
    assert calls == 1


async def test_last_good_lookups_are_bounded() -> None:
    world = World(cache_size=3)
    keys = [(await world.new_key())[0] for _ in range(5)]
    for key in keys:
        await world.resolver.resolve(key)
    world.outage.down = True
    world.clock.now += 31
    with pytest.raises(ServiceUnavailable):
        await world.resolver.resolve(keys[0])  # evicted: the table kept only the 3 most recent
    await world.resolver.resolve(keys[4])


async def test_unknown_revoked_expired_and_disabled_keys_get_one_message_naming_the_form() -> None:
    world = World(cache_ttl_s=0)
    revoked, revoked_id = await world.new_key()
    await world.keys.revoke(revoked_id)
    expired, expired_id = await world.new_key()
    await world.keys.update(expired_id, {"expires_at": datetime(2020, 1, 1, tzinfo=UTC)})
    disabled_user = (await world.users.create("Bo"))["_id"]
    disabled = generate_access_key()
    await world.keys.create(user_id=disabled_user, key_hash=hash_access_key(SECRET, disabled), prefix=disabled[:13])
    await world.users.update(disabled_user, {"status": "disabled"})
    for where in ("header", "path"):
        messages = set()
        for key in (generate_access_key(), revoked, expired, disabled):
            with pytest.raises(AuthenticationFailed) as info:
                await world.resolver.resolve(key, where=where)  # type: ignore[arg-type]
            assert info.value.headers["x-should-retry"] == "false"
            assert key not in info.value.message
            messages.add(info.value.message)
        assert messages == {key_refused_message("unknown", where)}  # type: ignore[arg-type]
    assert "x-proxy-key header" in key_refused_message("unknown", "header")
    assert "/ak/<key>/" in key_refused_message("unknown", "path")


@pytest.mark.parametrize(("key", "reason"), [(None, "missing"), ("", "missing"), ("sk-ccp-x", "malformed"),
                                             ("Bearer sk-ant-api03-abc", "malformed")])
async def test_missing_and_malformed_keys_are_told_apart(key: str | None, reason: str) -> None:
    with pytest.raises(AuthenticationFailed) as info:
        await World().resolver.resolve(key)
    assert info.value.message == key_refused_message(reason, "header")  # type: ignore[arg-type]

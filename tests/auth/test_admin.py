"""app/auth/admin.py: login limits counted in the store before the password is checked, the
argon2 concurrency cap, and revocable sessions (two AdminAuth objects on one mongomock database
stand for two replicas)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from mongomock_motor import AsyncMongoMockClient

from app.auth.admin import AdminAuth
from app.errors import AuthenticationFailed, RateLimited, ServiceUnavailable
from app.store.admins import AdminRepository, AdminSessionRepository, LoginAttemptRepository
from tests.support.faults import Faulty, Outage

PASSWORD = "correct horse battery staple"


def make_auth(db: Any, outage: Outage | None = None, **options: Any) -> AdminAuth:
    outage = outage or Outage()
    # A fixed instant mid-window by default: a one-minute login window must not roll over while
    # concurrent attempts run on a loaded machine.
    options.setdefault("clock", lambda: 1_800_000_030.0)
    return AdminAuth(Faulty(AdminRepository(db), outage), Faulty(AdminSessionRepository(db), outage),
                     Faulty(LoginAttemptRepository(db), outage), "admin", b"k" * 32, token_ttl_s=3600, **options)


@pytest.fixture
def db() -> Any:
    return AsyncMongoMockClient(tz_aware=True)["t"]


@pytest.fixture(autouse=True)
def no_failure_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("app.auth.admin.FAILURE_DELAY_S", 0.0)


async def outcomes(calls: list[Any]) -> list[str]:
    results = await asyncio.gather(*calls, return_exceptions=True)
    return [type(r).__name__ if isinstance(r, BaseException) else "ok" for r in results]


async def test_sixty_concurrent_wrong_passwords_evaluate_exactly_five(db: Any) -> None:
    auth = make_auth(db)
    await auth.ensure_account(PASSWORD)
    seen = await outcomes([auth.login("admin", f"wrong-{i}", "198.51.100.7") for i in range(60)])
    assert seen.count("AuthenticationFailed") == 5 and seen.count("RateLimited") == 55
    assert auth.logins_failed == 5 and auth.logins_refused == 55
    with pytest.raises(RateLimited) as locked:  # the right password, locked out too
        await auth.login("admin", PASSWORD, "198.51.100.7")
    assert 1 <= int(locked.value.headers["retry-after"]) <= 60


async def test_the_limit_is_per_username_and_per_ip(db: Any) -> None:
    auth = make_auth(db)
    await auth.ensure_account(PASSWORD)
    # One IP, many usernames: the IP's counter stops it.
    seen = await outcomes([auth.login(f"user{i}", "x", "203.0.113.1") for i in range(8)])
    assert seen.count("AuthenticationFailed") == 5 and seen.count("RateLimited") == 3
    # One username, many IPs: the username's counter stops it.
    seen = await outcomes([auth.login("admin", "x", f"203.0.113.{i + 10}") for i in range(8)])
    assert seen.count("AuthenticationFailed") == 5 and seen.count("RateLimited") == 3


async def test_the_counter_is_shared_by_two_instances_on_one_store(db: Any) -> None:
    first, second = make_auth(db), make_auth(db)
    await first.ensure_account(PASSWORD)
    await second.ensure_account(PASSWORD)
    seen = await outcomes([auth.login("admin", "wrong", "192.0.2.9") for auth in (first, second) * 10])
    assert seen.count("AuthenticationFailed") == 5 and seen.count("RateLimited") == 15
    assert first.logins_failed + second.logins_failed == 5


async def test_a_good_login_does_not_count_against_the_limit(db: Any) -> None:
    auth = make_auth(db)
    await auth.ensure_account(PASSWORD)
    for _ in range(8):
        await auth.login("admin", PASSWORD, "192.0.2.1")
    assert auth.logins_ok == 8


async def test_at_most_two_password_hashes_run_at_once(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    auth = make_auth(db)
    await auth.ensure_account(PASSWORD)
    running = peak = 0
    lock = threading.Lock()
    verify = auth._verify_sync

    def tracking(password_hash: str, password: str) -> bool:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            return verify(password_hash, password)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(auth, "_verify_sync", tracking)
    # Distinct usernames and IPs: no counter stops them, all 12 reach the hash.
    seen = await outcomes([auth.login(f"u{i}", "x", f"10.0.0.{i}") for i in range(12)])
    assert seen == ["AuthenticationFailed"] * 12
    assert peak == 2


async def test_store_down_at_login_is_503_not_a_traceback(db: Any) -> None:
    outage = Outage()
    auth = make_auth(db, outage)
    await auth.ensure_account(PASSWORD)
    outage.down = True
    with pytest.raises(ServiceUnavailable) as down:
        await auth.login("admin", PASSWORD, "192.0.2.1")
    assert down.value.status_code == 503 and "retry-after" in down.value.headers


async def test_logout_revokes_the_token_at_once_and_on_the_other_replica(db: Any,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = make_auth(db), make_auth(db)
    await first.ensure_account(PASSWORD)
    grant = await first.login("admin", PASSWORD, "192.0.2.1")
    assert (await first.verify_token(grant.token)).session_id == grant.session_id
    assert (await second.verify_token(grant.token)).username == "admin"
    await first.logout(grant.session_id)
    with pytest.raises(AuthenticationFailed, match="revoked"):
        await first.verify_token(grant.token)
    second._session_cache.clear()  # what the 1 s cache TTL does on the other replica
    with pytest.raises(AuthenticationFailed, match="revoked"):
        await second.verify_token(grant.token)


async def test_logout_everywhere_and_password_change_revoke_every_session(db: Any) -> None:
    auth = make_auth(db)
    await auth.ensure_account(PASSWORD)
    grants = [await auth.login("admin", PASSWORD, "192.0.2.1") for _ in range(3)]
    assert await auth.logout_everywhere() == 3
    for grant in grants:
        assert not await auth.session_active(grant.session_id)
    grant = await auth.login("admin", PASSWORD, "192.0.2.1")
    restarted = make_auth(db)  # a restart with a new PROXY_ADMIN_PASSWORD
    await restarted.ensure_account("a brand new password")
    with pytest.raises(AuthenticationFailed):
        await restarted.verify_token(grant.token)
    with pytest.raises(AuthenticationFailed):
        await restarted.login("admin", PASSWORD, "192.0.2.2")
    await restarted.login("admin", "a brand new password", "192.0.2.2")


async def test_same_password_at_restart_keeps_sessions(db: Any) -> None:
    auth = make_auth(db)
    await auth.ensure_account(PASSWORD)
    grant = await auth.login("admin", PASSWORD, "192.0.2.1")
    restarted = make_auth(db)
    await restarted.ensure_account(PASSWORD)
    assert (await restarted.verify_token(grant.token)).session_id == grant.session_id


async def test_tokens_without_a_session_id_or_for_another_user_are_refused(db: Any) -> None:
    from itsdangerous import URLSafeTimedSerializer

    auth = make_auth(db)
    await auth.ensure_account(PASSWORD)
    serializer = URLSafeTimedSerializer(b"k" * 32, salt="admin-token")
    for data in ({"sub": "admin"}, {"sub": "root", "jti": "x"}, {"sub": "admin", "jti": "made-up"}):
        with pytest.raises(AuthenticationFailed):
            await auth.verify_token(serializer.dumps(data))

"""app/admin/service.py: users, keys, policies, limits, Bedrock API keys and admin sign-in, each with
the audit entry the service writes, over real repositories on mongomock (no route in between)."""

from __future__ import annotations

from typing import Any

import pytest
from mongomock_motor import AsyncMongoMockClient

from app.admin.service import Actor, AdminService
from app.auth.access import AccessKeyResolver
from app.auth.admin import AdminAuth
from app.crypto.envelope import LocalKeyCipher, bedrock_key_context
from app.errors import AuthenticationFailed, InvalidRequest, NotFound
from app.store.access_keys import AccessKeyRepository
from app.store.admins import AdminRepository, AdminSessionRepository, LoginAttemptRepository
from app.store.audit import AuditRepository
from app.store.users import UserRepository

SECRET = b"k" * 32
ADMIN = Actor(username="admin", ip="192.0.2.1")
PASSWORD = "correct horse battery staple"


class World:
    def __init__(self) -> None:
        db = AsyncMongoMockClient(tz_aware=True)["t"]
        self.users, self.keys, self.audit = UserRepository(db), AccessKeyRepository(db), AuditRepository(db)
        self.resolver = AccessKeyResolver(self.keys, self.users, SECRET, last_used_interval_s=1e9)
        self.cipher = LocalKeyCipher(SECRET)
        self.bedrock_changes: list[str] = []
        self.auth = AdminAuth(AdminRepository(db), AdminSessionRepository(db), LoginAttemptRepository(db),
                              "admin", SECRET, token_ttl_s=3600)
        self.service = AdminService(self.users, self.keys, self.audit, self.resolver, SECRET, rotate_grace_s=60,
                                    cipher=self.cipher, on_bedrock_key_change=self.bedrock_changes.append,
                                    admin_auth=self.auth)

    async def entries(self, action: str) -> list[dict[str, Any]]:
        return await self.audit.list(action=action)


@pytest.fixture
def world() -> World:
    return World()


async def test_create_user_and_key_are_audited_without_the_plaintext_key(world: World) -> None:
    user = await world.service.create_user(ADMIN, "  Ada  ", "ada@example.com")
    assert user["name"] == "Ada"
    issued = await world.service.create_key(ADMIN, user["_id"], name="laptop")
    assert (await world.resolver.resolve(issued.key)).access_key_id == issued.doc["_id"]
    [created] = await world.entries("user.create")
    assert (created["actor"], created["ip"], created["target_id"]) == ("admin", "192.0.2.1", user["_id"])
    [key_entry] = await world.entries("key.create")
    assert key_entry["target_id"] == issued.doc["_id"] and key_entry["details"]["user_id"] == user["_id"]
    assert issued.key not in repr(key_entry) and issued.key not in repr(await world.keys.get(issued.doc["_id"]))


async def test_an_empty_user_name_or_an_unknown_policy_is_refused(world: World) -> None:
    with pytest.raises(InvalidRequest):
        await world.service.create_user(ADMIN, "   ", None)
    user = await world.service.create_user(ADMIN, "Ada", None)
    with pytest.raises(InvalidRequest):
        await world.service.create_key(ADMIN, user["_id"], fallback_policy="sometimes")
    assert await world.entries("key.create") == []


@pytest.mark.parametrize("call", ["create_key", "rotate_key", "revoke_key", "set_key_policy", "set_bedrock_key",
                                  "clear_bedrock_key", "set_limits_user", "set_limits_key", "get_user"])
async def test_unknown_ids_are_not_found_and_write_no_audit_entry(world: World, call: str) -> None:
    service = world.service
    calls = {
        "create_key": lambda: service.create_key(ADMIN, "usr_missing"),
        "rotate_key": lambda: service.rotate_key(ADMIN, "ak_missing"),
        "revoke_key": lambda: service.revoke_key(ADMIN, "ak_missing"),
        "set_key_policy": lambda: service.set_key_policy(ADMIN, "ak_missing", "bedrock_only"),
        "set_bedrock_key": lambda: service.set_bedrock_key(ADMIN, "ak_missing", "ABSK-token"),
        "clear_bedrock_key": lambda: service.clear_bedrock_key(ADMIN, "ak_missing"),
        "set_limits_user": lambda: service.set_limits(ADMIN, "user", "usr_missing", {"requests_per_minute": 5}),
        "set_limits_key": lambda: service.set_limits(ADMIN, "access_key", "ak_missing", {"requests_per_minute": 5}),
        "get_user": lambda: service.get_user("usr_missing"),
    }
    with pytest.raises(NotFound):
        await calls[call]()
    assert await world.audit.list() == []


async def test_rotate_issues_a_new_key_carrying_limits_and_bedrock_key_and_expires_the_old(world: World) -> None:
    user = await world.service.create_user(ADMIN, "Ada", None)
    old = await world.service.create_key(ADMIN, user["_id"], fallback_policy="bedrock_only")
    await world.service.set_limits(ADMIN, "access_key", old.doc["_id"], {"requests_per_minute": 7})
    await world.service.set_bedrock_key(ADMIN, old.doc["_id"], "ABSK-token")
    new = await world.service.rotate_key(ADMIN, old.doc["_id"])
    assert new.key != old.key and new.doc["fallback_policy"] == "bedrock_only"
    assert new.doc["limits"] == {"requests_per_minute": 7}
    plaintext = await world.cipher.decrypt(new.doc["bedrock_key"], bedrock_key_context(new.doc["_id"]))
    assert plaintext == b"ABSK-token"  # re-sealed for the new key's id
    assert (await world.keys.get(old.doc["_id"]))["expires_at"] is not None
    [entry] = await world.entries("key.rotate")
    assert entry["target_id"] == old.doc["_id"] and entry["details"]["new_key_id"] == new.doc["_id"]
    assert entry["details"]["grace_s"] == 60


async def test_revoke_refuses_the_key_at_once_and_a_revoked_key_does_not_rotate(world: World) -> None:
    user = await world.service.create_user(ADMIN, "Ada", None)
    issued = await world.service.create_key(ADMIN, user["_id"])
    await world.resolver.resolve(issued.key)  # cached
    doc = await world.service.revoke_key(ADMIN, issued.doc["_id"])
    assert doc["status"] == "revoked"
    with pytest.raises(AuthenticationFailed):
        await world.resolver.resolve(issued.key)  # the service made the resolver forget it
    with pytest.raises(InvalidRequest):
        await world.service.rotate_key(ADMIN, issued.doc["_id"])
    [entry] = await world.entries("key.revoke")
    assert entry["details"] == {"prefix": issued.doc["prefix"]}


async def test_policy_and_limits_reach_the_resolver_at_once_and_are_audited(world: World) -> None:
    user = await world.service.create_user(ADMIN, "Ada", None)
    issued = await world.service.create_key(ADMIN, user["_id"])
    await world.resolver.resolve(issued.key)
    await world.service.set_key_policy(ADMIN, issued.doc["_id"], "anthropic_only")
    await world.service.set_limits(ADMIN, "user", user["_id"], {"tokens_per_day": 1000})
    principal = await world.resolver.resolve(issued.key)
    assert principal.fallback_policy == "anthropic_only" and principal.user_limits == {"tokens_per_day": 1000}
    [policy] = await world.entries("key.policy")
    assert policy["details"] == {"fallback_policy": "anthropic_only"}
    [limits] = await world.entries("user.limits")
    assert limits["details"] == {"patch": {"tokens_per_day": 1000}, "limits": {"tokens_per_day": 1000}}
    await world.service.set_limits(ADMIN, "user", user["_id"], {"tokens_per_day": None})  # null clears
    assert (await world.users.get(user["_id"]))["limits"] == {}
    with pytest.raises(InvalidRequest):
        await world.service.set_limits(ADMIN, "user", user["_id"], {"no_such_limit": 1})


async def test_a_bedrock_key_is_stored_sealed_and_never_in_the_audit_log(world: World) -> None:
    user = await world.service.create_user(ADMIN, "Ada", None)
    issued = await world.service.create_key(ADMIN, user["_id"])
    key_id = issued.doc["_id"]
    for bad in ("", "has space", "x" * 5000):
        with pytest.raises(InvalidRequest):
            await world.service.set_bedrock_key(ADMIN, key_id, bad)
    doc = await world.service.set_bedrock_key(ADMIN, key_id, "ABSK-secret")
    assert "ABSK-secret" not in repr(doc["bedrock_key"])
    assert await world.cipher.decrypt(doc["bedrock_key"], bedrock_key_context(key_id)) == b"ABSK-secret"
    await world.service.set_bedrock_key(ADMIN, key_id, "ABSK-other")
    cleared = await world.service.clear_bedrock_key(ADMIN, key_id)
    assert "bedrock_key" not in cleared
    assert world.bedrock_changes == [key_id, key_id, key_id]
    sets = await world.entries("key.bedrock_key.set")
    assert sorted(e["details"]["replaced"] for e in sets) == [False, True]
    assert len(await world.entries("key.bedrock_key.delete")) == 1
    assert "ABSK" not in repr(await world.audit.list())


async def test_login_and_logout_are_audited_by_the_service(world: World) -> None:
    await world.auth.ensure_account(PASSWORD)
    grant = await world.service.login(ADMIN, PASSWORD, via="api")
    assert (await world.auth.verify_token(grant.token)).username == "admin"
    [login] = await world.entries("admin.login")
    assert (login["actor"], login["ip"], login["details"]) == ("admin", "192.0.2.1", {"via": "api"})
    assert await world.service.logout(ADMIN, grant.session_id, via="api") == 1
    with pytest.raises(AuthenticationFailed):
        await world.auth.verify_token(grant.token)
    [logout] = await world.entries("admin.logout")
    assert logout["details"] == {"via": "api", "revoked": 1}
    ui = await world.service.login(ADMIN, PASSWORD, via="ui")
    await world.service.logout(ADMIN, ui.session_id, via="ui")
    assert {e["details"]["via"] for e in await world.entries("admin.logout")} == {"api", "ui"}
    assert await world.service.logout(None, None, via="ui") == 0  # an anonymous logout writes nothing
    assert len(await world.entries("admin.logout")) == 2


async def test_a_wrong_password_is_audited_as_a_failed_login_without_the_password(world: World) -> None:
    await world.auth.ensure_account(PASSWORD)
    with pytest.raises(AuthenticationFailed):
        await world.service.login(Actor("admin", "192.0.2.9"), "wrong password", via="ui")
    assert await world.entries("admin.login") == []
    [failed] = await world.entries("admin.login_failed")
    assert (failed["actor"], failed["ip"], failed["details"]) == ("admin", "192.0.2.9", {"via": "ui"})
    assert "wrong password" not in repr(failed)


async def test_logout_everywhere_ends_every_session(world: World) -> None:
    await world.auth.ensure_account(PASSWORD)
    grants = [await world.service.login(ADMIN, PASSWORD, via="api") for _ in range(3)]
    assert await world.service.logout(ADMIN, grants[0].session_id, via="api", everywhere=True) == 3
    for grant in grants:
        with pytest.raises(AuthenticationFailed):
            await world.auth.verify_token(grant.token)

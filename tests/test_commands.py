"""Operator commands in process (click's CliRunner) on a mongomock store the test can read too:
each command's output, ``--json``, exit codes, and that the rows it writes are the API's own
(keys resolve with the server's resolver, every change is in the audit log)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result

from app.auth.access import AccessKeyResolver
from app.cli import main
from app.config import Settings
from app.errors import AuthenticationFailed
from app.store.access_keys import AccessKeyRepository
from app.store.mongo import Store, open_store
from app.store.usage import UsageRepository
from app.store.users import UserRepository
from app.usage.events import UsageEvent
from tests.conftest import SECRET_KEY


@pytest.fixture
def store() -> Iterator[Store]:
    store = open_store(None, "cli_tests")
    yield store
    store.close()


@pytest.fixture
def settings() -> Settings:
    return Settings(_env_file=None, mongodb_url="mongodb://db.example:27017", secret_key=SECRET_KEY,
                    admin_password="admin-password-for-cli-tests", public_base_url="https://proxy.example.com")


@pytest.fixture
def cli(store: Store, settings: Settings) -> Any:
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(main, list(args), obj={"settings": settings, "store": store}, input=input,
                             catch_exceptions=False)
    return invoke


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def audit_actions(store: Store) -> list[str]:
    async def read() -> list[str]:
        return [d["action"] async for d in store.db["audit_log"].find({}).sort("time", 1)]
    return asyncio.run(read())


def test_users_create_list_disable_enable(cli: Any, store: Store) -> None:
    created = cli("users", "create", "Ada Lovelace", "--email", "ada@example.com", "--json")
    assert created.exit_code == 0, created.output
    user = as_json(created)
    assert user["id"].startswith("usr_") and user["status"] == "active"

    listed = cli("users", "list")
    assert listed.exit_code == 0
    assert "Ada Lovelace" in listed.stdout and "ada@example.com" in listed.stdout and "NAME" in listed.stdout

    disabled = cli("users", "disable", "ada@example.com", "--json")  # by e-mail
    assert disabled.exit_code == 0 and as_json(disabled)["status"] == "disabled"
    assert as_json(cli("users", "list", "--status", "disabled", "--json"))[0]["id"] == user["id"]
    assert cli("users", "enable", user["id"]).stdout.strip().endswith("is active")
    assert audit_actions(store) == ["user.create", "user.status", "user.status"]


def test_disabled_users_keys_are_refused_by_the_servers_resolver(cli: Any, store: Store) -> None:
    user = as_json(cli("users", "create", "Grace", "--json"))
    key = as_json(cli("keys", "create", user["id"], "--json"))["key"]
    resolver = AccessKeyResolver(AccessKeyRepository(store.db), UserRepository(store.db), SECRET_KEY.encode(),
                                 cache_ttl_s=0)
    assert asyncio.run(resolver.resolve(key)).user_id == user["id"]  # the CLI's key is a real key
    cli("users", "disable", user["id"])
    with pytest.raises(AuthenticationFailed):
        asyncio.run(resolver.resolve(key))


def test_unknown_user_is_exit_3_with_one_line(cli: Any) -> None:
    result = cli("users", "disable", "usr_nobody")
    assert result.exit_code == 3
    assert result.stderr.strip() == "error: user 'usr_nobody' not found" and result.stdout == ""
    as_json_result = cli("keys", "list", "nobody@example.com", "--json")
    assert as_json_result.exit_code == 3
    assert as_json(as_json_result)["error"]["type"] == "not_found_error"


def test_keys_create_shows_the_key_once_with_the_snippet_for_its_policy(cli: Any, store: Store) -> None:
    user = as_json(cli("users", "create", "Lin", "--json"))
    text = cli("keys", "create", user["id"], "--name", "laptop", "--policy", "bedrock_only")
    assert text.exit_code == 0, text.output
    key = next(line for line in text.stdout.splitlines() if line.startswith("sk-ccp-"))
    assert "export ANTHROPIC_BASE_URL=https://proxy.example.com" in text.stdout
    assert f'ANTHROPIC_CUSTOM_HEADERS="x-proxy-key: {key}"' in text.stdout
    assert "export ANTHROPIC_AUTH_TOKEN=bedrock-only" in text.stdout  # bedrock_only: a placeholder credential

    default = as_json(cli("keys", "create", user["id"], "--json"))
    assert "ANTHROPIC_API_KEY=sk-ant-..." in default["snippet"]  # the developer's own credential
    assert "ANTHROPIC_AUTH_TOKEN=bedrock-only" not in default["snippet"]

    listed = cli("keys", "list", user["id"], "--json")
    rows = as_json(listed)
    assert len(rows) == 2 and all("key" not in r and "key_hash" not in r for r in rows)
    assert key not in cli("keys", "list", user["id"]).stdout


def test_keys_rotate_and_revoke_need_confirmation(cli: Any) -> None:
    user = as_json(cli("users", "create", "Rui", "--json"))
    first = as_json(cli("keys", "create", user["id"], "--json"))

    refused = cli("keys", "revoke", first["id"], input="n\n")
    assert refused.exit_code == 4 and "not confirmed" in refused.stderr
    assert as_json(cli("keys", "list", user["id"], "--json"))[0]["status"] == "active"

    rotated = cli("keys", "rotate", first["id"], "--yes", "--json")
    assert rotated.exit_code == 0
    new = as_json(rotated)
    assert new["rotated_from"] == first["id"] and new["key"] != first["key"] and new["key"].startswith("sk-ccp-")

    revoked = cli("keys", "revoke", new["id"], input="y\n")
    assert revoked.exit_code == 0 and "revoked" in revoked.stdout
    statuses = {k["id"]: k["status"] for k in as_json(cli("keys", "list", user["id"], "--json"))}
    assert statuses == {first["id"]: "rotated", new["id"]: "revoked"}  # rotated away, not revoked

    again = cli("keys", "rotate", new["id"], "--yes")
    assert again.exit_code == 4 and "only active keys rotate" in again.stderr


def test_bad_policy_is_a_usage_error(cli: Any) -> None:
    result = cli("keys", "create", "usr_x", "--policy", "sometimes")
    assert result.exit_code == 2 and "Invalid value for '--policy'" in result.stderr


def test_users_import_is_checked_first_and_idempotent(cli: Any, tmp_path: Any) -> None:
    cli("users", "create", "Existing", "--email", "old@example.com")
    good = tmp_path / "users.csv"
    good.write_text("name,email,team\nNew One,new1@example.com,a\nOld,OLD@example.com,b\n\nNo Mail,,c\n")

    dry = cli("users", "import", str(good), "--dry-run", "--json")
    assert dry.exit_code == 0
    assert [r["name"] for r in as_json(dry)["created"]] == ["New One", "No Mail"]
    assert len(as_json(cli("users", "list", "--json"))) == 1  # nothing written

    first = cli("users", "import", str(good))
    assert first.exit_code == 0, first.output
    assert "created: 2" in first.stdout and "skipped: 1" in first.stdout
    second = as_json(cli("users", "import", str(good), "--json"))
    assert [r["name"] for r in second["skipped"]] == ["New One", "Old"]
    assert [r["name"] for r in second["created"]] == ["No Mail"]  # no e-mail: nothing to match on

    bad = tmp_path / "bad.csv"
    bad.write_text("name,email\nFine,fine@example.com\n,nobody@example.com\n")
    result = cli("users", "import", str(bad))
    assert result.exit_code == 4 and result.stderr.strip() == "error: CSV line 3: name is empty"
    assert "Fine" not in cli("users", "list").stdout  # the whole file is checked before any write

    from_stdin = cli("users", "import", "-", input="email,name\nstdin@example.com,From Stdin\n")
    assert from_stdin.exit_code == 0 and "From Stdin" in from_stdin.stdout


def test_usage_export_csv_per_time_and_per_user(cli: Any, store: Store) -> None:
    user = as_json(cli("users", "create", "Counted", "--json"))
    now = datetime.now(UTC).replace(minute=30)
    events = [UsageEvent(user_id=user["id"], access_key_id="ak_x", provider="anthropic", model="claude-sonnet-4-6",
                         input_tokens=10, output_tokens=5, cost_usd_micros=100, time=now - timedelta(hours=h))
              for h in (1, 1, 3)]
    asyncio.run(UsageRepository(store.db).write_batch(events))

    result = cli("usage", "export", "--granularity", "hour", "--from", (now - timedelta(hours=5)).isoformat())
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("start,requests,errors,fallbacks,input_tokens")
    counts = [int(line.split(",")[1]) for line in lines[1:]]
    assert sum(counts) == 3 and max(counts) == 2

    per_user = cli("usage", "export", "--per", "user", "--from", (now - timedelta(hours=5)).isoformat())
    rows = per_user.stdout.splitlines()
    assert rows[0].startswith("user_id,name,email,requests")
    assert rows[1].startswith(f"{user['id']},Counted,,3,")

    bad = cli("usage", "export", "--tz", "Mars/Olympus")
    assert bad.exit_code == 4 and "unknown time zone" in bad.stderr


def test_admin_reset_password_revokes_sessions_and_is_audited(cli: Any, store: Store, settings: Settings) -> None:
    from app.auth.admin import AdminAuth
    from app.store.admins import AdminRepository, AdminSessionRepository, LoginAttemptRepository

    auth = AdminAuth(AdminRepository(store.db), AdminSessionRepository(store.db), LoginAttemptRepository(store.db),
                     "admin", SECRET_KEY.encode(), token_ttl_s=600)

    async def first_login() -> str:
        await auth.ensure_account("old-admin-password")
        return (await auth.login("admin", "old-admin-password", "127.0.0.1")).session_id

    session = asyncio.run(first_login())
    short = cli("admin", "reset-password", "--password-stdin", input="short\n")
    assert short.exit_code == 4

    result = cli("admin", "reset-password", "--password-stdin", "--json", input="a-brand-new-password\n")
    assert result.exit_code == 0, result.output
    assert as_json(result)["sessions_revoked"] == 1 and "password" not in as_json(result)
    assert "a-brand-new-password" not in result.output
    auth2 = AdminAuth(AdminRepository(store.db), AdminSessionRepository(store.db), LoginAttemptRepository(store.db),
                      "admin", SECRET_KEY.encode(), token_ttl_s=600)
    assert asyncio.run(auth2.session_active(session)) is False
    assert asyncio.run(auth2.login("admin", "a-brand-new-password", "127.0.0.2")).session_id
    assert "admin.password_reset" in audit_actions(store)

    generated = cli("admin", "reset-password", "--generate")
    assert generated.exit_code == 0 and "new password (shown once): " in generated.stdout
    assert "PROXY_ADMIN_PASSWORD" in generated.stderr


def test_check_config_with_a_reachable_store(cli: Any) -> None:
    result = cli("check-config", "--json")
    assert result.exit_code == 0, result.output
    checks = {c["check"]: c["status"] for c in as_json(result)["checks"]}
    assert checks == {"settings": "ok", "secrets": "ok", "pricing": "ok", "store": "ok", "admin": "warning"}


def test_commands_refuse_the_embedded_store() -> None:
    settings = Settings(_env_file=None, secret_key=SECRET_KEY)
    result = CliRunner().invoke(main, ["users", "list"], obj={"settings": settings})
    assert result.exit_code == 2
    assert "PROXY_MONGODB_URL is not set" in result.stderr and "lost" in result.stderr


@pytest.mark.parametrize("args", [["check-config"], ["users", "create"], ["users", "list"], ["users", "disable"],
                                  ["users", "enable"], ["users", "import"], ["keys", "create"], ["keys", "list"],
                                  ["keys", "revoke"], ["keys", "rotate"], ["admin", "reset-password"],
                                  ["usage", "export"]])
def test_every_command_has_help_with_exit_codes_and_json(args: list[str]) -> None:
    result = CliRunner().invoke(main, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Exit codes: 0 done" in " ".join(result.stdout.split())
    assert "--json" in result.stdout

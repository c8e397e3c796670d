"""The store URL from parts, the app's database user (db-init) and the serve keep-alive (app side of
the AWS stack: infra/stack.py sets these PROXY_* variables)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner
from pymongo.errors import OperationFailure, ServerSelectionTimeoutError

from app import cli
from app.config import Settings
from app.store.mongo import build_url, ensure_app_user, store_url

OPTIONS = "tls=true&tlsCAFile=/srv/certs/global-bundle.pem&replicaSet=rs0&readPreference=secondaryPreferred&retryWrites=false"


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def test_url_is_built_from_host_user_password_and_options() -> None:
    url = store_url(settings(mongodb_host="db.cluster-x.docdb.amazonaws.com", mongodb_username="proxyapp",
                             mongodb_password="p@ss/w:rd%", mongodb_options=OPTIONS))
    parts = urlsplit(url)
    assert parts.scheme == "mongodb" and parts.hostname == "db.cluster-x.docdb.amazonaws.com" and parts.port == 27017
    assert (parts.username, parts.password) == ("proxyapp", "p%40ss%2Fw%3Ard%25")  # percent-encoded
    assert parse_qs(parts.query)["retryWrites"] == ["false"]


def test_a_full_url_wins_and_nothing_set_means_embedded() -> None:
    assert store_url(settings(mongodb_url="mongodb://a:b@h:1/", mongodb_host="ignored")) == "mongodb://a:b@h:1/"
    assert store_url(settings()) is None
    assert settings().embedded_store
    assert not settings(mongodb_host="h").embedded_store  # a host means a real store: secrets required


def test_url_without_credentials_and_half_credentials() -> None:
    assert build_url("localhost", 27018) == "mongodb://localhost:27018/"
    assert build_url("::1") == "mongodb://[::1]:27017/"
    with pytest.raises(ValueError, match="set together"):
        build_url("h", username="u")


def test_settings_read_the_stacks_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"PROXY_MONGODB_HOST": "h", "PROXY_MONGODB_PORT": "27017", "PROXY_MONGODB_USERNAME": "u",
                        "PROXY_MONGODB_PASSWORD": "p", "PROXY_MONGODB_OPTIONS": "tls=true",
                        "PROXY_MONGODB_MAX_POOL_SIZE": "73", "PROXY_KEEPALIVE_TIMEOUT_S": "905",
                        "PROXY_KMS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    loaded = Settings(_env_file=None)
    assert store_url(loaded) == "mongodb://u:p@h:27017/?tls=true"
    assert (loaded.mongodb_max_pool_size, loaded.keepalive_timeout_s, loaded.kms_region) == (73, 905, "us-east-1")
    assert "p" not in repr(loaded.mongodb_password)


class FakeAdminDb:
    """The user commands of DocumentDB's ``admin`` database (mongomock implements none of them)."""

    def __init__(self, existing: dict[str, dict[str, Any]] | None = None, *, lose_race: bool = False) -> None:
        self.users = dict(existing or {})
        self.commands: list[dict[str, Any]] = []
        self.lose_race = lose_race

    def command(self, command: dict[str, Any]) -> dict[str, Any]:
        self.commands.append(command)
        name = next(iter(command))
        user = command[name]
        if name == "usersInfo":
            return {"users": [{"user": user, **self.users[user]}] if user in self.users else [], "ok": 1}
        if name == "createUser":
            if user in self.users or self.lose_race:
                self.users[user] = {"pwd": "other", "roles": []}
                raise OperationFailure(f"User {user}@admin already exists", code=51003)
            self.users[user] = {"pwd": command["pwd"], "roles": command["roles"]}
            return {"ok": 1}
        if name == "updateUser":
            self.users[user] = {"pwd": command["pwd"], "roles": command["roles"]}
            return {"ok": 1}
        raise AssertionError(f"unexpected command {name}")


READ_WRITE = [{"role": "readWrite", "db": "claude_code_proxy"}]


def test_creates_the_user_with_read_write_on_its_database_only() -> None:
    db = FakeAdminDb()
    assert ensure_app_user(db, "proxyapp", "s3cret", "claude_code_proxy") == "created"
    assert db.users["proxyapp"] == {"pwd": "s3cret", "roles": READ_WRITE}
    assert [next(iter(c)) for c in db.commands] == ["usersInfo", "createUser"]
    assert all(next(iter(c)) in ("usersInfo", "createUser") for c in db.commands)  # command name first


def test_an_existing_user_gets_the_current_password_and_roles() -> None:
    db = FakeAdminDb({"proxyapp": {"pwd": "old", "roles": [{"role": "root", "db": "admin"}]}})
    assert ensure_app_user(db, "proxyapp", "rotated", "claude_code_proxy") == "updated"
    assert db.users["proxyapp"] == {"pwd": "rotated", "roles": READ_WRITE}
    assert ensure_app_user(db, "proxyapp", "rotated", "claude_code_proxy") == "updated"  # idempotent


def test_a_lost_create_race_becomes_an_update() -> None:
    db = FakeAdminDb(lose_race=True)
    assert ensure_app_user(db, "proxyapp", "s3cret", "claude_code_proxy") == "updated"
    assert db.users["proxyapp"] == {"pwd": "s3cret", "roles": READ_WRITE}


class FakeClient:
    last: FakeClient | None = None
    fail: Exception | None = None

    def __init__(self, url: str, **kwargs: Any) -> None:
        self.url, self.kwargs, self.admin, self.closed = url, kwargs, FakeAdminDb(), False
        FakeClient.last = self

    def __getitem__(self, name: str) -> Any:
        assert name == "admin"
        if FakeClient.fail is not None:
            raise FakeClient.fail
        return self.admin

    def close(self) -> None:
        self.closed = True


DB_INIT_ENV = {
    "PROXY_MONGODB_HOST": "db.cluster-x.docdb.amazonaws.com",
    "PROXY_MONGODB_OPTIONS": "tls=true&replicaSet=rs0",
    "PROXY_MONGODB_USERNAME": "proxyapp",
    "PROXY_MONGODB_PASSWORD": "app-pass-Qw1",
    "PROXY_DB_INIT_MASTER_USERNAME": "proxymaster",
    "PROXY_DB_INIT_MASTER_PASSWORD": "master-pass-Zx9",
}


@pytest.fixture
def fake_mongo(monkeypatch: pytest.MonkeyPatch) -> type[FakeClient]:
    import pymongo

    monkeypatch.setattr(pymongo, "MongoClient", FakeClient)
    FakeClient.last, FakeClient.fail = None, None
    monkeypatch.chdir("/")  # no .env from the checkout
    return FakeClient


def test_db_init_connects_as_master_and_creates_the_app_user(fake_mongo: type[FakeClient]) -> None:
    result = CliRunner().invoke(cli.main, ["db-init"], env=DB_INIT_ENV)
    assert result.exit_code == 0, result.output
    client = fake_mongo.last
    assert client is not None and client.closed
    parts = urlsplit(client.url)
    assert (parts.username, parts.password, parts.hostname) == ("proxymaster", "master-pass-Zx9",
                                                                 "db.cluster-x.docdb.amazonaws.com")
    assert client.admin.users["proxyapp"] == {"pwd": "app-pass-Qw1", "roles": READ_WRITE}
    assert "created with readWrite on claude_code_proxy" in result.output
    assert "pass" not in result.output.replace("proxyapp", "")


def test_db_init_failure_exits_1_without_a_password(fake_mongo: type[FakeClient]) -> None:
    fake_mongo.fail = ServerSelectionTimeoutError("no server for mongodb://proxymaster:master-pass-Zx9@db:27017")
    result = CliRunner().invoke(cli.main, ["db-init"], env=DB_INIT_ENV)
    assert result.exit_code == 1
    assert "ServerSelectionTimeoutError" in result.output and "master-pass-Zx9" not in result.output


def test_db_init_without_the_app_user_settings_exits_2(fake_mongo: type[FakeClient]) -> None:
    env = {k: v for k, v in DB_INIT_ENV.items() if k != "PROXY_MONGODB_PASSWORD"}
    result = CliRunner().invoke(cli.main, ["db-init"], env=env)
    assert result.exit_code == 2 and "PROXY_MONGODB_PASSWORD" in result.output
    assert fake_mongo.last is None


def test_serve_uses_the_keepalive_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.proxy.drain import DrainingServer

    seen: dict[str, Any] = {}
    # Never bind a socket: capture the uvicorn config the CLI built and return.
    monkeypatch.setattr(DrainingServer, "run",
                        lambda self, sockets=None: seen.update(timeout_keep_alive=self.config.timeout_keep_alive))
    monkeypatch.chdir("/")
    result = CliRunner().invoke(cli.main, ["serve"], env={"PROXY_KEEPALIVE_TIMEOUT_S": "905"})
    assert result.exit_code == 0, result.output
    assert seen["timeout_keep_alive"] == 905
    result = CliRunner().invoke(cli.main, ["serve"], env={"PROXY_KEEPALIVE_TIMEOUT_S": None})
    assert seen["timeout_keep_alive"] == 75  # uvicorn's own default when run outside the stack


@pytest.mark.parametrize(("kms_region", "expected"), [("eu-west-1", "eu-west-1"), (None, "us-west-2")])
async def test_the_kms_client_uses_kms_region_not_the_bedrock_region(
    monkeypatch: pytest.MonkeyPatch, kms_region: str | None, expected: str
) -> None:
    from app import main

    seen: dict[str, Any] = {}
    real = main.make_cipher

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.update(kwargs)
        return real(*args, **{**kwargs, "kms_key_id": None})

    monkeypatch.setattr(main, "make_cipher", spy)
    services = await main.build_services(settings(bedrock_region="us-west-2", kms_region=kms_region,
                                                  kms_key_id="arn:aws:kms:eu-west-1:1:key/k"))
    services.store.close()
    assert seen["region"] == expected

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
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

from pymongo import ASCENDING, DESCENDING, IndexModel

# Callers catch this one family for "the store is unreachable or failed".
from pymongo.errors import PyMongoError as StoreError  # noqa: F401  (re-exported)

if TYPE_CHECKING:
    from app.config import Settings


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


def build_url(host: str, port: int = 27017, username: str | None = None, password: str | None = None,
              options: str = "") -> str:
    """``mongodb://user:pass@host:port/?options`` with user and password percent-encoded (RFC 3986),
    so any character in a rotated password is safe. No credentials: ``mongodb://host:port/``.
    Raises ValueError when only one of username and password is given."""
    if (username is None) != (password is None):
        raise ValueError("PROXY_MONGODB_USERNAME and PROXY_MONGODB_PASSWORD must be set together")
    auth = f"{quote_plus(username)}:{quote_plus(password)}@" if username is not None and password is not None else ""
    shown_host = f"[{host}]" if ":" in host and not host.startswith("[") else host  # IPv6 literal
    query = options.lstrip("?")
    return f"mongodb://{auth}{shown_host}:{port}/" + (f"?{query}" if query else "")


def store_url(settings: Settings) -> str | None:
    """The URL the app connects with: ``PROXY_MONGODB_URL`` when set; else one built from
    ``PROXY_MONGODB_HOST`` / ``_PORT`` / ``_USERNAME`` / ``_PASSWORD`` / ``_OPTIONS`` (how the AWS
    stack passes it: the password from its own secret, read at every start); else None (embedded).
    Raises ValueError for a username without a password or the reverse."""
    if settings.mongodb_url is not None:
        return settings.mongodb_url.get_secret_value()
    if settings.mongodb_host is None:
        return None
    password = settings.mongodb_password.get_secret_value() if settings.mongodb_password is not None else None
    return build_url(settings.mongodb_host, settings.mongodb_port, settings.mongodb_username, password,
                     settings.mongodb_options)


def open_store(mongodb_url: str | None, database: str, *, server_selection_timeout_ms: int = 5000,
               max_pool_size: int | None = None) -> Store:
    """Open the store: motor for a URL, mongomock-motor when ``mongodb_url`` is None.
    ``max_pool_size``: connections per server (``maxPoolSize``); None keeps the driver's default.

    Does no I/O (motor connects lazily); call :func:`ensure_indexes` next.
    """
    if mongodb_url is None:
        from mongomock_motor import AsyncMongoMockClient

        client = AsyncMongoMockClient(tz_aware=True)
        return Store(client=client, db=client[database], embedded=True)
    from motor.motor_asyncio import AsyncIOMotorClient

    pool = {} if max_pool_size is None else {"maxPoolSize": max_pool_size}
    client = AsyncIOMotorClient(
        mongodb_url,
        tz_aware=True,
        appname="claude-code-proxy",
        serverSelectionTimeoutMS=server_selection_timeout_ms,
        **pool,
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


#: The only role the application user gets: read and write on the app's own database.
APP_USER_ROLE = "readWrite"


def app_user_roles(database: str) -> list[dict[str, str]]:
    """``[{"role": "readWrite", "db": database}]``: nothing on other databases, no admin roles."""
    return [{"role": APP_USER_ROLE, "db": database}]


def ensure_app_user(admin_db: Any, username: str, password: str, database: str) -> str:
    """Create the application user, or set its password and roles if it exists; returns
    ``"created"`` or ``"updated"``. Idempotent, safe to run from several tasks at once (a lost
    ``createUser`` race becomes an ``updateUser``).

    ``admin_db`` is a synchronous pymongo ``Database`` for ``admin``, connected as a user allowed to
    manage users (DocumentDB's master user): DocumentDB keeps every user in ``admin`` and supports
    ``usersInfo`` / ``createUser`` / ``updateUser`` with built-in roles scoped to a database
    (https://docs.aws.amazon.com/documentdb/latest/developerguide/role_based_access_control.html).
    Raises ``pymongo.errors.PyMongoError`` when the server refuses.
    """
    from pymongo.errors import OperationFailure

    roles = app_user_roles(database)
    found = admin_db.command({"usersInfo": username}).get("users") or []
    if not found:
        try:
            admin_db.command({"createUser": username, "pwd": password, "roles": roles})
            return "created"
        except OperationFailure as exc:
            if "already exists" not in str(exc):
                raise
    admin_db.command({"updateUser": username, "pwd": password, "roles": roles})
    return "updated"

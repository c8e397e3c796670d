"""The MongoDB/DocumentDB connection: the only place that imports the driver (motor).

With no URL the store is embedded: an in-process ``mongomock-motor`` client whose data is lost on
exit. With a URL, options in it (``tls=true``, ``tlsCAFile=...``, ``retryWrites=false``,
``replicaSet=rs0``, ``readPreference=secondaryPreferred``) pass through to the driver unchanged,
as DocumentDB needs (https://docs.aws.amazon.com/documentdb/latest/developerguide/connect_programmatically.html).
Everything written here stays inside DocumentDB 5.0's subset: no transactions, no ``$merge``,
no retryable writes.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import PyMongoError

# "The store failed", classified once: every driver error (connection refused, server selection
# timeout, network timeout, auth failure, not primary, write errors) plus our own time limits on a
# store call (``asyncio.timeout`` raises the builtin ``TimeoutError``). Callers write
# ``except STORE_ERRORS``. mongomock raises pymongo's classes too when pymongo is installed.
STORE_ERRORS: tuple[type[BaseException], ...] = (PyMongoError, TimeoutError)

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

    async def ping(self, *, timeout_s: float = 2.0) -> bool:
        """True when the server answers ``ping`` within ``timeout_s`` seconds; never raises.

        The time limit keeps ``/ready`` fast while the store is down (the driver alone would wait
        ``serverSelectionTimeoutMS``, 5 s by default, longer than a load balancer's health check)."""
        try:
            async with asyncio.timeout(timeout_s):
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


# The embedded store keeps at most this many documents per collection (the oldest are evicted):
# raw usage events and the fold journal would otherwise grow with every request, in memory, and
# are lost on exit anyway. Buckets (what reports and quotas read) are kept. See docs/usage.md.
EMBEDDED_CAPS: dict[str, int] = {"usage_events": 50_000, "usage_folds": 10_000}


def open_store(mongodb_url: str | None, database: str, *, server_selection_timeout_ms: int = 5000,
               max_pool_size: int | None = None) -> Store:
    """Open the store: motor for a URL; when ``mongodb_url`` is None the embedded store
    (mongomock-motor with dict indexes and EMBEDDED_CAPS, ``app.store.embedded``).
    ``max_pool_size``: connections per server (``maxPoolSize``); None keeps the driver's default.

    Does no I/O (motor connects lazily); call :func:`ensure_indexes` next.
    """
    if mongodb_url is None:
        from app.store.embedded import EmbeddedClient

        client = EmbeddedClient(caps=EMBEDDED_CAPS, tz_aware=True)
        return Store(client=client, db=client[database], embedded=True)
    from motor.motor_asyncio import AsyncIOMotorClient

    # A keyword argument would override the same option in the URL: let the URL's win.
    options: dict[str, Any] = {} if "serverselectiontimeoutms=" in mongodb_url.lower() else {
        "serverSelectionTimeoutMS": server_selection_timeout_ms}
    if max_pool_size is not None:
        options["maxPoolSize"] = max_pool_size
    motor_client: AsyncIOMotorClient[Any] = AsyncIOMotorClient(
        mongodb_url,
        tz_aware=True,
        appname="claude-code-proxy",
        **options,
    )
    return Store(client=motor_client, db=motor_client[database], embedded=False)


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


# --- start-up reachability ----------------------------------------------------------------------

class StoreUnreachable(RuntimeError):
    """The store did not answer at start; the message is one line naming the (redacted) URL, the
    failure and what to check. Never carries a password."""


_SECRET_OPTION = re.compile(r"([?&][^=&]*(?:password|token|secret)[^=&]*=)[^&]*", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``mongodb://user:pass@host/db?tlsCertificateKeyFilePassword=x`` -> ``mongodb://user:****@host/db?...=****``."""
    url = re.sub(r"(//[^/@]*?:)[^/@]*@", r"\1****@", url, count=1)
    return _SECRET_OPTION.sub(r"\1****", url)


def describe_store_error(exc: BaseException) -> str:
    """A short one-line reason: the error class and the first part of its message (pymongo's
    server selection errors append a long topology description, cut here)."""
    text = " ".join(str(exc).split())
    for tail in (", Timeout:", " Topology Description:", " (configured timeouts:"):
        text = text.split(tail)[0]
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


async def wait_until_reachable(store: Store, url: str, *, timeout_s: float,
                               on_first_failure: Any = None) -> None:
    """Ping until the store answers or ``timeout_s`` seconds pass (backoff 0.5 s doubling to 5 s).

    ``on_first_failure(line)``: called once with a one-line notice when the first ping fails and a
    retry follows. Raises :class:`StoreUnreachable` (one line) when the time is up; with
    ``timeout_s=0`` after a single attempt."""
    deadline = time.monotonic() + timeout_s
    delay_s, first = 0.5, True
    while True:
        try:
            await store.db.command("ping")
            return
        except STORE_ERRORS as exc:
            reason = describe_store_error(exc)
        remaining = deadline - time.monotonic()
        where = redact_url(url)
        if remaining <= 0:
            raise StoreUnreachable(
                f"cannot reach the store at {where} ({reason}); check PROXY_MONGODB_URL (host, port, "
                "user, password, tls/tlsCAFile, replicaSet), that the database is running, and that "
                "this host may connect to it (security group, network)")
        if first and on_first_failure is not None:
            on_first_failure(f"store at {where} not reachable yet ({reason}); retrying for up to "
                             f"{timeout_s:g} s")
        first = False
        await asyncio.sleep(min(delay_s, remaining))
        delay_s = min(delay_s * 2, 5.0)
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

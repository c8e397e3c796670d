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
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel

# Callers catch this one family for "the store is unreachable or failed".
from pymongo.errors import PyMongoError as StoreError

# "The store failed", classified once: every driver error (connection refused, server selection
# timeout, network timeout, auth failure, not primary, write errors) plus our own time limits on a
# store call (``asyncio.wait_for`` raises the builtin ``TimeoutError``). Callers write
# ``except STORE_ERRORS``. mongomock raises pymongo's classes too when pymongo is installed.
STORE_ERRORS: tuple[type[BaseException], ...] = (StoreError, TimeoutError)


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
            await asyncio.wait_for(self.db.command("ping"), timeout_s)
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

    # A keyword argument would override the same option in the URL: let the URL's win.
    options = {} if "serverselectiontimeoutms=" in mongodb_url.lower() else {
        "serverSelectionTimeoutMS": server_selection_timeout_ms}
    client = AsyncIOMotorClient(
        mongodb_url,
        tz_aware=True,
        appname="claude-code-proxy",
        **options,
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

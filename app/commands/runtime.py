"""What every operator command shares: settings, the store and the services built on it, output
(text or ``--json``) and exit codes.

Exit codes (also in ``--help``): 0 done; 1 the store failed or was unreachable; 2 bad usage or
configuration (click's own usage errors are 2 too); 3 not found; 4 input rejected (e.g. a bad policy,
an invalid CSV row). With ``--json`` an error is printed to stdout as Anthropic's envelope
``{"type": "error", "error": {"type", "message"}}``; otherwise one ``error: ...`` line on stderr.

The commands work on the proxy's database (``PROXY_MONGODB_URL``, with the server's
``PROXY_SECRET_KEY``: keys are hashed with it). On the embedded store they refuse: that store lives
inside one ``serve`` process, so anything a separate command wrote would be lost at once.

Wiring: the repositories and :class:`~app.admin.service.AdminService` are built exactly as
``app/main.py`` ``build_services`` builds them (same classes, same settings), without the parts a
command never needs (upstream clients, the usage recorder) and without ``AdminAuth.ensure_account``,
which would reset the admin password to this shell's ``PROXY_ADMIN_PASSWORD``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NoReturn, TypeVar

import click

from app.config import Settings

T = TypeVar("T")

EXIT_OK, EXIT_STORE, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_REJECTED = 0, 1, 2, 3, 4
EXIT_CODES_HELP = ("Exit codes: 0 done, 1 store failed or unreachable, 2 bad usage or configuration, "
                   "3 not found, 4 input rejected.")
STORE_CHECK_TIMEOUT_MS = 5000

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


class CommandFailed(Exception):
    """Ends a command: ``message`` (one line), ``exit_code``, ``error_type`` (for ``--json``)."""

    def __init__(self, message: str, exit_code: int, error_type: str = "api_error") -> None:
        super().__init__(message)
        self.message, self.exit_code, self.error_type = message, exit_code, error_type


@dataclass
class CliServices:
    """The services of one command run (same objects the app builds; see the module docstring)."""

    settings: Settings
    store: Any  # app.store.mongo.Store
    users: Any  # app.store.users.UserRepository
    access_keys: Any  # app.store.access_keys.AccessKeyRepository
    audit: Any  # app.store.audit.AuditRepository
    usage: Any  # app.store.usage_write.UsageWriter (its ``retention``)
    admin: Any  # app.admin.service.AdminService
    admin_auth: Any  # app.auth.admin.AdminAuth
    secret_key: bytes


def load_settings(ctx: click.Context) -> Settings:
    """``ctx.obj["settings"]`` (tests) or the environment's; bad values end with exit 2."""
    from pydantic import ValidationError

    given = (ctx.obj or {}).get("settings")
    if given is not None:
        return given
    try:
        return Settings()
    except ValidationError as exc:
        raise CommandFailed(f"configuration error: {_one_line(str(exc))}", EXIT_USAGE,
                            "invalid_request_error") from None


def store_url(settings: Settings) -> str | None:
    """The MongoDB URL the server would use (None: embedded store): ``PROXY_MONGODB_URL``, or the
    URL built from ``PROXY_MONGODB_HOST`` and its parts (app/store/mongo.py ``store_url``).
    Raises CommandFailed (exit 2) for incomplete parts."""
    from app.store.mongo import store_url as server_store_url

    try:
        return server_store_url(settings)
    except ValueError as exc:
        raise CommandFailed(f"configuration error: {exc}", EXIT_USAGE, "invalid_request_error") from None


def secret_key(settings: Settings) -> bytes:
    value = settings.secret_key.get_secret_value() if settings.secret_key else ""
    if not value:
        raise CommandFailed("configuration error: PROXY_SECRET_KEY must be set to the server's value "
                            "(access keys are hashed with it)", EXIT_USAGE, "invalid_request_error")
    if len(value) < 32:
        raise CommandFailed("configuration error: PROXY_SECRET_KEY must be at least 32 characters",
                            EXIT_USAGE, "invalid_request_error")
    return value.encode()


def refuse_embedded(settings: Settings) -> None:
    if store_url(settings) is None:
        raise CommandFailed(
            "PROXY_MONGODB_URL is not set: this command works on the proxy's database, and the embedded "
            "store exists only inside a running `serve` process (whatever this command wrote would be lost "
            "at once). Set PROXY_MONGODB_URL and PROXY_SECRET_KEY as for `serve`, or use the dashboard or "
            "the admin API of the running proxy.", EXIT_USAGE, "invalid_request_error")


@asynccontextmanager
async def open_services(ctx: click.Context, settings: Settings) -> AsyncIterator[CliServices]:
    """The services on the settings' store (or ``ctx.obj["store"]``, an open Store, in tests).
    Pings the store first: unreachable -> CommandFailed (exit 1, one line, password masked)."""
    from app.admin.service import AdminService
    from app.auth.access import AccessKeyResolver
    from app.auth.admin import AdminAuth
    from app.crypto.envelope import make_cipher
    from app.records.buckets import Retention
    from app.store.access_keys import AccessKeyRepository
    from app.store.admins import AdminRepository, AdminSessionRepository, LoginAttemptRepository
    from app.store.audit import AuditRepository
    from app.store.mongo import Store, StoreUnreachable, open_store, wait_until_reachable
    from app.store.usage_write import UsageWriter
    from app.store.users import UserRepository

    given: Store | None = (ctx.obj or {}).get("store")
    owned = given is None
    if owned:
        refuse_embedded(settings)
    key = secret_key(settings)
    if given is not None:
        store = given
    else:
        url = store_url(settings)
        assert url is not None
        store = open_store(url, settings.mongodb_database, server_selection_timeout_ms=STORE_CHECK_TIMEOUT_MS)
        try:
            await wait_until_reachable(store, url, timeout_s=0)
        except StoreUnreachable as exc:
            store.close()
            raise CommandFailed(f"store error: {exc}", EXIT_STORE) from None
    cipher = make_cipher(key, kms_key_id=settings.kms_key_id, region=settings.bedrock_region,
                         kms_endpoint_url=settings.kms_endpoint_url)
    users, keys = UserRepository(store.db), AccessKeyRepository(store.db)
    audit = AuditRepository(store.db)
    admin_auth = AdminAuth(AdminRepository(store.db), AdminSessionRepository(store.db),
                           LoginAttemptRepository(store.db), settings.admin_username, key,
                           token_ttl_s=settings.admin_token_ttl_s)
    resolver = AccessKeyResolver(keys, users, key, cache_ttl_s=settings.key_cache_ttl_s,
                                 last_used_interval_s=settings.last_used_write_interval_s,
                                 stale_grace_s=settings.key_stale_grace_s)
    services = CliServices(
        settings=settings, store=store, users=users, access_keys=keys, audit=audit,
        usage=UsageWriter(store.db, retention=Retention(minute_days=settings.usage_minute_bucket_ttl_days,
                                                        hour_days=settings.usage_hour_bucket_ttl_days)),
        admin=AdminService(users, keys, audit, resolver, key, rotate_grace_s=settings.key_rotate_grace_s,
                           cipher=cipher, admin_auth=admin_auth),
        admin_auth=admin_auth, secret_key=key)
    try:
        yield services
    finally:
        await cipher.aclose()
        if owned:
            store.close()


def cli_actor() -> Any:
    """Who the audit log names for a command: ``cli:<os user>``, no IP."""
    import getpass

    from app.admin.service import Actor

    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        who = "unknown"
    return Actor(username=f"cli:{who}", ip=None)


def run(ctx: click.Context, as_json: bool, work: Callable[[CliServices], Awaitable[T]], *,
        render: Callable[[T], None], to_json: Callable[[T], Any] | None = None) -> None:
    """Build the services, run ``work``, print its result (``render`` for text, JSON otherwise) and
    exit with the right code. Maps ProxyError and store errors to exit codes and one clear line."""
    settings = load_settings_or_exit(ctx, as_json)

    async def main() -> T:
        async with open_services(ctx, settings) as services:
            return await work(services)

    result = guarded(ctx, as_json, lambda: asyncio.run(main()))
    if as_json:
        emit_json(to_json(result) if to_json else result)
    else:
        render(result)


def load_settings_or_exit(ctx: click.Context, as_json: bool) -> Settings:
    return guarded(ctx, as_json, lambda: load_settings(ctx))


def guarded(ctx: click.Context, as_json: bool, call: Callable[[], T]) -> T:
    """``call()``; a CommandFailed, ProxyError or store error ends the command with its exit code."""
    from app.errors import InvalidRequest, NotFound, ProxyError, ServiceUnavailable
    from app.store.mongo import STORE_ERRORS, describe_store_error

    try:
        return call()
    except CommandFailed as exc:
        fail(ctx, as_json, exc)
    except NotFound as exc:
        fail(ctx, as_json, CommandFailed(exc.message, EXIT_NOT_FOUND, exc.error_type))
    except (InvalidRequest, ValueError) as exc:
        message = exc.message if isinstance(exc, ProxyError) else str(exc)
        fail(ctx, as_json, CommandFailed(message, EXIT_REJECTED, "invalid_request_error"))
    except ServiceUnavailable as exc:
        fail(ctx, as_json, CommandFailed(f"store error: {exc.message}", EXIT_STORE, exc.error_type))
    except STORE_ERRORS as exc:
        fail(ctx, as_json, CommandFailed(f"store error: {describe_store_error(exc)}; check PROXY_MONGODB_URL "
                                         "and that the database is running", EXIT_STORE))
    except ProxyError as exc:
        fail(ctx, as_json, CommandFailed(exc.message, EXIT_REJECTED, exc.error_type))


def fail(ctx: click.Context, as_json: bool, exc: CommandFailed) -> NoReturn:
    if as_json:
        emit_json({"type": "error", "error": {"type": exc.error_type, "message": exc.message}})
    else:
        click.echo(f"error: {exc.message}" if not exc.message.startswith(("store error", "configuration error"))
                   else exc.message, err=True)
    ctx.exit(exc.exit_code)
    raise AssertionError("unreachable")  # pragma: no cover - ctx.exit raises


def _default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, default=_default, indent=2, sort_keys=True))


def echo_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], *, empty: str = "(none)") -> None:
    """Rows as left-aligned text columns (header row first); ``empty`` when there are none."""
    if not rows:
        click.echo(empty)
        return
    cells = [[_text(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(column), *(len(r[i]) for r in cells)) for i, column in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for r in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def pairs(items: Iterable[tuple[str, Any]]) -> None:
    for name, value in items:
        click.echo(f"{name}: {_text(value)}")

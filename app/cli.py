"""``claude-code-proxy`` command line (click): ``serve`` runs the proxy with uvicorn; ``db-init``
creates the database user the proxy connects as (run once per task by the AWS stack's init container)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from app.commands import register as register_commands

if TYPE_CHECKING:
    from app.config import Settings


@click.group()
@click.version_option(package_name="claude-code-proxy", prog_name="claude-code-proxy")
def main() -> None:
    """claude-code-proxy: Anthropic Messages API proxy with Amazon Bedrock fallback.

    Operator commands (check-config, users, keys, admin, usage) work on the database of
    PROXY_MONGODB_URL with the server's PROXY_SECRET_KEY; `COMMAND --help` for each."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--proxy-headers/--no-proxy-headers", default=False, show_default=True,
              help="Trust X-Forwarded-* from --forwarded-allow-ips (behind a load balancer).")
@click.option("--forwarded-allow-ips", default="127.0.0.1", show_default=True,
              help="Comma-separated IPs/CIDRs whose X-Forwarded-* headers are trusted.")
@click.option("--timeout-graceful-shutdown", default=110, show_default=True, type=int,
              help="Seconds to let open streams finish on SIGTERM.")
def serve(host: str, port: int, proxy_headers: bool, forwarded_allow_ips: str,
          timeout_graceful_shutdown: int) -> None:
    """Run the proxy. Settings come from PROXY_* environment variables and .env."""
    import uvicorn
    from pydantic import ValidationError

    from app.bootstrap import ConfigError, reachable_urls, resolve_secrets
    from app.config import Settings
    from app.logs import configure_logging
    from app.main import create_app
    from app.proxy.drain import DrainingServer

    try:
        settings = Settings()
        resolve_secrets(settings)
    except (ValidationError, ConfigError) as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)
    if settings.public_base_url is None:
        # --host 0.0.0.0: the hostname first (what teammates can type), then addresses, then 127.0.0.1.
        urls = reachable_urls(host, port)
        settings = settings.model_copy(update={"public_base_url": urls[0]})
        if len(urls) > 1:
            click.echo(f"claude-code-proxy listening on {host}:{port}; reachable at {'  '.join(urls)} "
                       "(set PROXY_PUBLIC_BASE_URL to choose the URL the snippets show)")
    configure_logging(settings.log_level)
    if not settings.embedded_store:
        _wait_for_store(settings)
    app = create_app(settings)
    # uvicorn.run() with a Server that tells the app when shutdown begins, so streams still open
    # at the end of the grace period get an SSE error instead of a reset (app/proxy/drain.py).
    config = uvicorn.Config(app, host=host, port=port, proxy_headers=proxy_headers,
                            forwarded_allow_ips=forwarded_allow_ips, access_log=False, log_config=None,
                            timeout_graceful_shutdown=timeout_graceful_shutdown, server_header=False,
                            timeout_keep_alive=settings.keepalive_timeout_s)
    DrainingServer(config, drain=app.state.drain).run()


@main.command("db-init")
@click.option("--master-username", envvar="PROXY_DB_INIT_MASTER_USERNAME", required=True,
              help="User allowed to manage users (env PROXY_DB_INIT_MASTER_USERNAME).")
@click.option("--master-password", envvar="PROXY_DB_INIT_MASTER_PASSWORD", required=True,
              help="Its password; pass it by the environment only (env PROXY_DB_INIT_MASTER_PASSWORD).")
@click.option("--timeout-s", default=60, show_default=True, type=int,
              help="Seconds to wait for the database to answer.")
def db_init(master_username: str, master_password: str, timeout_s: int) -> None:
    """Create or update the app's database user: PROXY_MONGODB_USERNAME / PROXY_MONGODB_PASSWORD with
    readWrite on PROXY_MONGODB_DATABASE only, connecting to PROXY_MONGODB_HOST as the master user.
    Idempotent. Exit 0 on success, 1 when the database refuses or is unreachable, 2 on bad settings."""
    from pydantic import ValidationError
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    from app.config import Settings
    from app.store.mongo import build_url, ensure_app_user

    try:
        settings = Settings()
    except ValidationError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)
    if not (settings.mongodb_host and settings.mongodb_username and settings.mongodb_password):
        click.echo("configuration error: db-init needs PROXY_MONGODB_HOST, PROXY_MONGODB_USERNAME and "
                   "PROXY_MONGODB_PASSWORD", err=True)
        sys.exit(2)
    url = build_url(settings.mongodb_host, settings.mongodb_port, master_username, master_password,
                    settings.mongodb_options)
    client: MongoClient = MongoClient(url, serverSelectionTimeoutMS=timeout_s * 1000, appname="claude-code-proxy-db-init")
    try:
        outcome = ensure_app_user(client["admin"], settings.mongodb_username,
                                  settings.mongodb_password.get_secret_value(), settings.mongodb_database)
    except PyMongoError as exc:
        # Belt and braces: no password may reach the log, whatever the driver put in its message.
        message = str(exc).replace(master_password, "***").replace(settings.mongodb_password.get_secret_value(), "***")
        click.echo(f"db-init failed: {type(exc).__name__}: {message}", err=True)
        sys.exit(1)
    finally:
        client.close()
    click.echo(f"db-init: user {settings.mongodb_username} {outcome} with readWrite on {settings.mongodb_database}")


def _wait_for_store(settings: Settings) -> None:
    """Before serving: ping the store for up to ``store_startup_timeout_s`` seconds. Unreachable:
    one line on stderr (URL with the password masked, what failed, what to check), exit 1, no traceback."""
    import asyncio

    from app.store.mongo import StoreUnreachable, open_store, store_url, wait_until_reachable

    try:
        url = store_url(settings)
    except ValueError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)
    assert url is not None  # not the embedded store

    async def check() -> None:
        store = open_store(url, settings.mongodb_database)
        try:
            await wait_until_reachable(store, url, timeout_s=settings.store_startup_timeout_s,
                                       on_first_failure=lambda line: click.echo(line, err=True))
        finally:
            store.close()

    try:
        asyncio.run(check())
    except StoreUnreachable as exc:
        click.echo(f"store error: {exc}", err=True)
        sys.exit(1)


# Operator commands live in app/commands/ (one module per area).
register_commands(main)

if __name__ == "__main__":  # pragma: no cover
    main()

"""``claude-code-proxy`` command line (click): ``serve`` runs the proxy with uvicorn."""

from __future__ import annotations

import os
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
    uvicorn.run(create_app(settings), host=host, port=port, proxy_headers=proxy_headers,
                forwarded_allow_ips=forwarded_allow_ips, access_log=False, log_config=None,
                timeout_graceful_shutdown=timeout_graceful_shutdown, server_header=False,
                timeout_keep_alive=int(os.environ.get("PROXY_KEEPALIVE_S", "75")))


def _wait_for_store(settings: Settings) -> None:
    """Before serving: ping the store for up to ``store_startup_timeout_s`` seconds. Unreachable:
    one line on stderr (URL with the password masked, what failed, what to check), exit 1, no traceback."""
    import asyncio

    from app.store.mongo import StoreUnreachable, open_store, wait_until_reachable

    assert settings.mongodb_url is not None
    url = settings.mongodb_url.get_secret_value()

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

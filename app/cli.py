"""``claude-code-proxy`` command line (click): ``serve`` runs the proxy with uvicorn."""

from __future__ import annotations

import os
import sys

import click


@click.group()
def main() -> None:
    """claude-code-proxy: Anthropic Messages API proxy with Amazon Bedrock fallback."""


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

    from app.bootstrap import ConfigError, resolve_secrets
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
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        settings = settings.model_copy(update={"public_base_url": f"http://{shown}:{port}"})
    configure_logging(settings.log_level)
    app = create_app(settings)
    # uvicorn.run() with a Server that tells the app when shutdown begins, so streams still open
    # at the end of the grace period get an SSE error instead of a reset (app/proxy/drain.py).
    config = uvicorn.Config(app, host=host, port=port, proxy_headers=proxy_headers,
                            forwarded_allow_ips=forwarded_allow_ips, access_log=False, log_config=None,
                            timeout_graceful_shutdown=timeout_graceful_shutdown, server_header=False,
                            timeout_keep_alive=int(os.environ.get("PROXY_KEEPALIVE_S", "75")))
    DrainingServer(config, drain=app.state.drain).run()


if __name__ == "__main__":  # pragma: no cover
    main()

"""``claude-code-proxy admin reset-password``: a new admin password, effective at once on every
replica (the hash is in the store), and every admin session and token revoked.

The server sets the stored hash from ``PROXY_ADMIN_PASSWORD`` at each start when they differ, so the
new password must also go into ``PROXY_ADMIN_PASSWORD`` (the environment, ``.env`` or Secrets
Manager) before the next restart; the command says so.
"""

from __future__ import annotations

import secrets
import sys
from typing import Any

import click

from app.commands.runtime import (
    EXIT_CODES_HELP,
    EXIT_REJECTED,
    CliServices,
    CommandFailed,
    cli_actor,
    fail,
    json_option,
    run,
)

MIN_PASSWORD_CHARS = 12


@click.group(epilog=EXIT_CODES_HELP)
def admin() -> None:
    """The dashboard / admin API account (PROXY_ADMIN_USERNAME)."""


@admin.command("reset-password", epilog=EXIT_CODES_HELP)
@click.option("--password-stdin", is_flag=True, help="Read the new password from the first line of stdin.")
@click.option("--generate", is_flag=True, help="Generate a random password and print it once.")
@json_option
@click.pass_context
def reset_password(ctx: click.Context, password_stdin: bool, generate: bool, as_json: bool) -> None:
    """Set a new admin password and revoke every admin session and token. Without an option the
    password is asked twice on the terminal (not echoed). Then put the same value in
    PROXY_ADMIN_PASSWORD, or the next start restores the configured one."""
    if password_stdin and generate:
        fail(ctx, as_json, CommandFailed("choose one of --password-stdin and --generate", EXIT_REJECTED,
                                         "invalid_request_error"))
    if generate:
        password = secrets.token_urlsafe(18)
    elif password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("New admin password", hide_input=True, confirmation_prompt=True, err=True)
    if len(password) < MIN_PASSWORD_CHARS:
        fail(ctx, as_json, CommandFailed(f"the password must be at least {MIN_PASSWORD_CHARS} characters",
                                         EXIT_REJECTED, "invalid_request_error"))

    async def work(services: CliServices) -> dict[str, Any]:
        revoked = await services.admin.reset_password(cli_actor(), password)
        out: dict[str, Any] = {"username": services.admin_auth.username, "sessions_revoked": revoked,
                               "next_step": "set PROXY_ADMIN_PASSWORD to the new password before the next start"}
        if generate:
            out["password"] = password
        return out

    def render(result: dict[str, Any]) -> None:
        click.echo(f"admin password of {result['username']!r} reset; {result['sessions_revoked']} session(s) "
                   "and token(s) revoked")
        if "password" in result:
            click.echo(f"new password (shown once): {result['password']}")
        click.echo("next: set PROXY_ADMIN_PASSWORD to the new password (environment, .env or Secrets Manager) "
                   "before the next start, or the start restores the configured one", err=True)

    run(ctx, as_json, work, render=render)

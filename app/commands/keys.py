"""``claude-code-proxy keys create|list|revoke|rotate``: AdminService, as ``/admin/...access-keys``
uses it. A new key's plaintext is printed once (with the Claude Code snippet for its policy); only
its HMAC is stored."""

from __future__ import annotations

from typing import Any

import click

from app.commands.runtime import (
    EXIT_CODES_HELP,
    EXIT_REJECTED,
    CliServices,
    CommandFailed,
    cli_actor,
    echo_table,
    fail,
    json_option,
    run,
)
from app.commands.users import find_user

KEY_COLUMNS = ("id", "prefix", "name", "status", "fallback_policy", "created_at", "last_used_at", "expires_at")
POLICIES = ("anthropic_first", "bedrock_only", "anthropic_only")


def public(doc: dict[str, Any]) -> dict[str, Any]:
    from app.admin.service import public_key

    return public_key(doc)


def base_url(services: CliServices) -> str:
    return services.settings.public_base_url or "https://<proxy host>"


def issued(services: CliServices, result: Any, **extra: Any) -> dict[str, Any]:
    from app.admin.snippets import claude_code_snippets

    policy = result.doc.get("fallback_policy") or services.settings.default_fallback_policy
    snippets = claude_code_snippets(base_url(services), result.key, policy)
    return {**public(result.doc), "key": result.key, "snippet": snippets.header, **extra}


def render_issued(result: dict[str, Any]) -> None:
    click.echo(f"access key {result['id']} ({result['prefix']}…) for user {result['user_id']}: shown only this once")
    click.echo(result["key"])
    click.echo("\n# Claude Code:")
    click.echo(result["snippet"])


@click.group(epilog=EXIT_CODES_HELP)
def keys() -> None:
    """Access keys (sk-ccp-...). Needs PROXY_MONGODB_URL and PROXY_SECRET_KEY (the server's)."""


@keys.command("create", epilog=EXIT_CODES_HELP)
@click.argument("user")
@click.option("--name", default=None, help="A label, e.g. laptop.")
@click.option("--policy", type=click.Choice(POLICIES), default=None,
              help="Fallback policy (default: PROXY_DEFAULT_FALLBACK_POLICY).")
@json_option
@click.pass_context
def create(ctx: click.Context, user: str, name: str | None, policy: str | None, as_json: bool) -> None:
    """Issue a key for USER (an id or e-mail); prints it once with the Claude Code snippet.
    PROXY_PUBLIC_BASE_URL sets the URL in the snippet."""
    async def work(services: CliServices) -> dict[str, Any]:
        owner = await find_user(services, user)
        result = await services.admin.create_key(cli_actor(), owner["_id"], name=name, fallback_policy=policy)
        return issued(services, result)

    run(ctx, as_json, work, render=render_issued)


@keys.command("list", epilog=EXIT_CODES_HELP)
@click.argument("user")
@json_option
@click.pass_context
def list_(ctx: click.Context, user: str, as_json: bool) -> None:
    """USER's keys (an id or e-mail), newest first: prefix, status, policy, times. Never the key."""
    async def work(services: CliServices) -> list[dict[str, Any]]:
        owner = await find_user(services, user)
        return [public(k) for k in await services.access_keys.list_for_user(owner["_id"])]

    run(ctx, as_json, work, render=lambda rows: echo_table(rows, KEY_COLUMNS, empty="no access keys"))


def _confirm(ctx: click.Context, as_json: bool, yes: bool, question: str) -> None:
    """Ask on the terminal unless ``--yes``; no (or no terminal answer) ends with exit 4."""
    if yes:
        return
    try:
        ok = click.confirm(question, default=False, err=True)
    except click.Abort:
        ok = False
    if not ok:
        fail(ctx, as_json, CommandFailed("not confirmed (pass --yes to skip the question)", EXIT_REJECTED,
                                         "invalid_request_error"))


@keys.command("revoke", epilog=EXIT_CODES_HELP)
@click.argument("key_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@click.pass_context
def revoke(ctx: click.Context, key_id: str, yes: bool, as_json: bool) -> None:
    """Revoke KEY_ID (ak_...): clients using it are refused (each replica within PROXY_KEY_CACHE_TTL_S)."""
    _confirm(ctx, as_json, yes, f"Revoke access key {key_id}?")

    async def work(services: CliServices) -> dict[str, Any]:
        return public(await services.admin.revoke_key(cli_actor(), key_id))

    run(ctx, as_json, work, render=lambda k: click.echo(f"access key {k['id']} ({k['prefix']}…) revoked"))


@keys.command("rotate", epilog=EXIT_CODES_HELP)
@click.argument("key_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@click.pass_context
def rotate(ctx: click.Context, key_id: str, yes: bool, as_json: bool) -> None:
    """Replace KEY_ID with a new key (same owner, policy, limits, Bedrock key); the old one stops after
    PROXY_KEY_ROTATE_GRACE_S. Prints the new key once."""
    _confirm(ctx, as_json, yes, f"Rotate access key {key_id}? It stops working and a new key is issued.")

    async def work(services: CliServices) -> dict[str, Any]:
        return issued(services, await services.admin.rotate_key(cli_actor(), key_id), rotated_from=key_id)

    run(ctx, as_json, work, render=render_issued)

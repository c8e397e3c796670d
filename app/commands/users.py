"""``claude-code-proxy users create|list|disable|enable|import``: AdminService and UserRepository,
as ``/admin/users`` uses them (one audit entry per change, actor ``cli:<os user>``)."""

from __future__ import annotations

from typing import Any

import click

from app.commands.runtime import (
    EXIT_CODES_HELP,
    CliServices,
    CommandFailed,
    EXIT_NOT_FOUND,
    EXIT_REJECTED,
    cli_actor,
    echo_table,
    json_option,
    pairs,
    run,
)

USER_COLUMNS = ("id", "name", "email", "status", "created_at")


def public(doc: dict[str, Any]) -> dict[str, Any]:
    from app.admin.service import public_user

    return public_user(doc)


async def find_user(services: CliServices, ref: str) -> dict[str, Any]:
    """A user by id (``usr_...``) or by exact e-mail (case-insensitive). Raises CommandFailed (3, 4)."""
    if ref.startswith("usr_"):
        return await services.admin.get_user(ref)
    matches = [u for u in await services.users.list(search=ref, limit=50)
               if (u.get("email") or "").lower() == ref.lower()]
    if not matches:
        raise CommandFailed(f"no user with id or e-mail {ref!r}", EXIT_NOT_FOUND, "not_found_error")
    if len(matches) > 1:
        raise CommandFailed(f"{len(matches)} users have the e-mail {ref!r}; use the id ({', '.join(u['_id'] for u in matches)})",
                            EXIT_REJECTED, "invalid_request_error")
    return matches[0]


@click.group(epilog=EXIT_CODES_HELP)
def users() -> None:
    """Users (the people access keys belong to). Needs PROXY_MONGODB_URL and PROXY_SECRET_KEY."""


@users.command("create", epilog=EXIT_CODES_HELP)
@click.argument("name")
@click.option("--email", default=None, help="E-mail address (optional).")
@json_option
@click.pass_context
def create(ctx: click.Context, name: str, email: str | None, as_json: bool) -> None:
    """Create a user called NAME; prints its id."""
    async def work(services: CliServices) -> dict[str, Any]:
        return public(await services.admin.create_user(cli_actor(), name, email))

    run(ctx, as_json, work, render=lambda u: click.echo(f"created user {u['id']} ({u['name']})"))


@users.command("list", epilog=EXIT_CODES_HELP)
@click.option("--search", default=None, help="Part of the name or e-mail (case-insensitive).")
@click.option("--status", type=click.Choice(["active", "disabled"]), default=None)
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000))
@json_option
@click.pass_context
def list_(ctx: click.Context, search: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """List users, newest first."""
    async def work(services: CliServices) -> list[dict[str, Any]]:
        return [public(u) for u in await services.users.list(search=search, status=status, limit=limit)]

    run(ctx, as_json, work, render=lambda rows: echo_table(rows, USER_COLUMNS, empty="no users"))


def _set_status(ctx: click.Context, ref: str, status: str, as_json: bool) -> None:
    async def work(services: CliServices) -> dict[str, Any]:
        user = await find_user(services, ref)
        return public(await services.admin.set_user_status(cli_actor(), user["_id"], status))

    run(ctx, as_json, work, render=lambda u: click.echo(f"user {u['id']} ({u['name']}) is {u['status']}"))


@users.command("disable", epilog=EXIT_CODES_HELP)
@click.argument("user")
@json_option
@click.pass_context
def disable(ctx: click.Context, user: str, as_json: bool) -> None:
    """Disable USER (an id or e-mail): every key of theirs is refused (at once on this store; each
    replica's key cache forgets within PROXY_KEY_CACHE_TTL_S)."""
    _set_status(ctx, user, "disabled", as_json)


@users.command("enable", epilog=EXIT_CODES_HELP)
@click.argument("user")
@json_option
@click.pass_context
def enable(ctx: click.Context, user: str, as_json: bool) -> None:
    """Enable USER (an id or e-mail) again."""
    _set_status(ctx, user, "active", as_json)


@users.command("import", epilog=EXIT_CODES_HELP)
@click.argument("csv_file", type=click.File("r", encoding="utf-8"))
@click.option("--dry-run", is_flag=True, help="Check the file and say what would happen; write nothing.")
@json_option
@click.pass_context
def import_(ctx: click.Context, csv_file: Any, dry_run: bool, as_json: bool) -> None:
    """Create users from CSV_FILE (``-`` for stdin): a header row with ``name`` and ``email``.
    Rows whose e-mail already belongs to a user are skipped, so running it twice creates nobody twice.
    The whole file is checked before anything is written."""
    text = csv_file.read()

    async def work(services: CliServices) -> dict[str, Any]:
        from app.admin.lifecycle import UserLifecycle
        from app.admin.user_import import parse_import

        rows = parse_import(text)  # the one parser (app/admin/user_import.py), shared with the API
        result = await UserLifecycle(services.admin, services.secret_key).import_users(
            cli_actor(), rows, dry_run=dry_run)
        return {"dry_run": dry_run, "created": result.created, "skipped": result.skipped}

    def render(result: dict[str, Any]) -> None:
        verb = "would create" if result["dry_run"] else "created"
        for row in result["created"]:
            click.echo(f"{verb}: {row.get('id', '-')} {row['name']} <{row.get('email') or ''}>")
        for row in result["skipped"]:
            click.echo(f"skipped: {row['id']} {row['name']} <{row['email']}> ({row['reason']})")
        pairs([(verb, len(result["created"])), ("skipped", len(result["skipped"]))])

    run(ctx, as_json, work, render=render)

"""``claude-code-proxy check-config``: are the settings complete and valid, and does the store answer?

Checks, in order: the ``PROXY_*`` settings parse; the secrets a real store needs are set
(``PROXY_SECRET_KEY`` >= 32 characters, ``PROXY_ADMIN_PASSWORD``); ``PROXY_PRICING_OVERRIDES`` is
valid; the store answers ``ping`` within ``--timeout`` seconds; the admin account exists (created by
the first ``serve``). Each finding is one line: ``ok`` lines on stdout, problems on stderr. Exit 0
when nothing is wrong, 2 for a configuration problem, 1 when only the store failed.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import Literal

import click

from app.commands.runtime import EXIT_CODES_HELP, EXIT_OK, EXIT_STORE, EXIT_USAGE, emit_json, json_option

Status = Literal["ok", "warning", "missing", "error"]


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    message: str


def check_settings(ctx: click.Context) -> tuple[object | None, list[Finding]]:
    from pydantic import ValidationError

    from app.config import Settings

    given = (ctx.obj or {}).get("settings")
    if given is not None:
        return given, [Finding("settings", "ok", "settings given by the caller")]
    try:
        return Settings(), [Finding("settings", "ok", "PROXY_* settings parse")]
    except ValidationError as exc:
        return None, [Finding("settings", "error", f"PROXY_{'_'.join(str(p) for p in err['loc']).upper()}: "
                              f"{err['msg']}") for err in exc.errors()]


def check_secrets(settings: object) -> list[Finding]:
    from app.bootstrap import ConfigError, resolve_secrets
    from app.usage.pricing import PriceTable

    out: list[Finding] = []
    try:
        found = resolve_secrets(settings)  # type: ignore[arg-type]
        if found.generated:
            out.append(Finding("secrets", "warning", f"{' and '.join(found.generated)} unset: generated for each "
                               "run of the embedded store (fine for a try-out)"))
        else:
            out.append(Finding("secrets", "ok", "PROXY_SECRET_KEY and PROXY_ADMIN_PASSWORD are set"))
    except ConfigError as exc:
        status: Status = "missing" if "must be set" in str(exc) else "error"
        out.append(Finding("secrets", status, str(exc)))
    try:
        PriceTable(settings.pricing_overrides)  # type: ignore[attr-defined]
        out.append(Finding("pricing", "ok", "PROXY_PRICING_OVERRIDES is valid"))
    except ValueError as exc:
        out.append(Finding("pricing", "error", f"PROXY_PRICING_OVERRIDES: {exc}"))
    return out


async def check_store(ctx: click.Context, settings: object, timeout_s: float) -> list[Finding]:
    from app.store.admins import AdminRepository
    from app.store.mongo import (STORE_ERRORS, Store, StoreUnreachable, describe_store_error, open_store,
                                 wait_until_reachable)

    from app.commands.runtime import store_url

    url = store_url(settings)  # type: ignore[arg-type]
    database = settings.mongodb_database  # type: ignore[attr-defined]
    given: Store | None = (ctx.obj or {}).get("store")
    if given is None and url is None:
        return [Finding("store", "warning", "PROXY_MONGODB_URL unset: the embedded in-memory store is used, and "
                        "every user, key and usage record is lost when `serve` exits")]
    owned = given is None
    store = given if given is not None else open_store(
        url, database, server_selection_timeout_ms=max(int(timeout_s * 1000), 100))
    try:
        if owned:
            try:
                await wait_until_reachable(store, url or "", timeout_s=0)
            except StoreUnreachable as exc:
                return [Finding("store", "error", f"store error: {exc}")]
        out = [Finding("store", "ok", f"the store answers (database {database!r})")]
        try:
            has_admin = await AdminRepository(store.db).password_hash(settings.admin_username)  # type: ignore[attr-defined]
        except STORE_ERRORS as exc:
            return [*out, Finding("admin", "error", f"store error: cannot read the admin account "
                                                     f"({describe_store_error(exc)})")]
        if has_admin is None:
            out.append(Finding("admin", "warning", "no admin account in the store yet: the first `serve` creates it "
                               "from PROXY_ADMIN_PASSWORD"))
        else:
            out.append(Finding("admin", "ok", f"admin account {settings.admin_username!r} exists"))  # type: ignore[attr-defined]
        return out
    finally:
        if owned:
            store.close()


def exit_code(findings: list[Finding]) -> int:
    problems = [f for f in findings if f.status in ("missing", "error")]
    if any(f.check != "store" and not f.message.startswith("store error") for f in problems):
        return EXIT_USAGE
    return EXIT_STORE if problems else EXIT_OK


@click.command("check-config", epilog=EXIT_CODES_HELP)
@click.option("--timeout", "timeout_s", default=5.0, show_default=True, type=click.FloatRange(0.1, 120),
              help="Seconds to wait for the store.")
@json_option
@click.pass_context
def check_config(ctx: click.Context, timeout_s: float, as_json: bool) -> None:
    """Check the PROXY_* settings and the store, as `serve` would use them; print what is missing.
    Exit 0: all good; 2: a setting is missing or wrong; 1: the store is unreachable."""
    settings, findings = check_settings(ctx)
    if settings is not None:
        findings += check_secrets(settings)
        findings += asyncio.run(check_store(ctx, settings, timeout_s))
    code = exit_code(findings)
    if as_json:
        emit_json({"ok": code == EXIT_OK, "exit_code": code, "checks": [asdict(f) for f in findings]})
    else:
        for finding in findings:
            if finding.status in ("ok", "warning"):
                click.echo(f"{finding.status:<8} {finding.check}: {finding.message}")
            else:
                click.echo(finding.message if finding.message.startswith("store error")
                           else f"{finding.status}: {finding.check}: {finding.message}", err=True)
    ctx.exit(code)

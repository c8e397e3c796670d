"""``claude-code-proxy usage export``: usage as CSV (or ``--json``), from the same queries as
``GET /admin/usage`` and ``GET /admin/usage/top-users`` (app/usage/query.py)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import click

from app.commands.runtime import EXIT_CODES_HELP, CliServices, json_option, run

SERIES_COLUMNS = ("start", "requests", "errors", "fallbacks", "input_tokens", "output_tokens",
                  "cache_creation_input_tokens", "cache_read_input_tokens", "total_tokens", "cost_usd",
                  "cost_unknown_requests")
USER_COLUMNS = ("user_id", "name", "email", *SERIES_COLUMNS[1:])
MAX_USERS = 1000


def to_csv(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    return out.getvalue()


@click.group(epilog=EXIT_CODES_HELP)
def usage() -> None:
    """Usage reports (tokens, requests, cost)."""


@usage.command("export", epilog=EXIT_CODES_HELP)
@click.option("--from", "from_", default=None, help="ISO 8601 start in --tz (default: 24 h before --to).")
@click.option("--to", default=None, help="ISO 8601 end, exclusive (default: now).")
@click.option("--granularity", type=click.Choice(["minute", "hour", "day", "week", "month"]), default="day",
              show_default=True)
@click.option("--tz", default="UTC", show_default=True, help="IANA time zone for the buckets and times.")
@click.option("--user", "user_id", default=None, help="Only this user id.")
@click.option("--key", "access_key_id", default=None, help="Only this access key id.")
@click.option("--per", type=click.Choice(["time", "user"]), default="time", show_default=True,
              help="One row per time bucket, or one row per user (totals over the range, UTC).")
@click.option("--output", "-o", type=click.File("w", encoding="utf-8"), default="-", show_default=True,
              help="Where to write the CSV.")
@json_option
@click.pass_context
def export(ctx: click.Context, from_: str | None, to: str | None, granularity: str, tz: str, user_id: str | None,
           access_key_id: str | None, per: str, output: Any, as_json: bool) -> None:
    """Usage as CSV: per time bucket (columns: start, requests, errors, fallbacks, the four token
    counts, total_tokens, cost_usd, cost_unknown_requests) or per user (--per user)."""
    from app.usage import query

    async def work(services: CliServices) -> dict[str, Any]:
        zone = query.parse_zone(tz)
        start, end = query.parse_time(from_, zone), query.parse_time(to, zone, name="to")
        retention = services.usage.retention
        if per == "user":
            return await query.top_users(services.store.db, start=start, end=end, limit=MAX_USERS,
                                         metric="tokens", retention=retention, now=datetime.now(UTC))
        return await query.usage_report(services.store.db, start=start, end=end,
                                        granularity=query.parse_granularity(granularity), tz=zone.key,
                                        user_id=user_id, access_key_id=access_key_id, retention=retention)

    def render(report: dict[str, Any]) -> None:
        if per == "user":
            output.write(to_csv(report["users"], USER_COLUMNS))
        else:
            output.write(to_csv(report["series"], SERIES_COLUMNS))

    run(ctx, as_json, work, render=render)

"""Usage pages: run the same queries as ``GET /admin/usage`` and shape their answers for the
templates (charts, shares, rows). At most two queries per page: ``usage_report`` (one store call)
and, for the global view, ``top_users`` (two).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from markupsafe import Markup

from app.services import Services
from app.ui.charts import Bar, share_bar, stacked_bars
from app.ui.forms import UsageQuery
from app.usage import query

TOKEN_SERIES = (("input", "input_tokens"), ("output", "output_tokens"),
                ("cache write", "cache_creation_input_tokens"), ("cache read", "cache_read_input_tokens"))
_LABEL_FORMAT = {"minute": "%m-%d %H:%M", "hour": "%m-%d %H:00", "day": "%Y-%m-%d", "week": "wk %Y-%m-%d",
                 "month": "%Y-%m"}


def bucket_label(start_iso: str, granularity: str) -> str:
    return datetime.fromisoformat(start_iso).strftime(_LABEL_FORMAT.get(granularity, "%Y-%m-%d %H:%M"))


def charts(report: dict[str, Any]) -> dict[str, Markup]:
    """``tokens``: tokens per bucket stacked by kind; ``requests``: requests per bucket split into
    served directly vs by the Bedrock fallback; ``providers``: share of requests per provider."""
    granularity = report["granularity"]
    labels = [bucket_label(p["start"], granularity) for p in report["series"]]
    token_bars = [Bar(label, tuple(float(p[field]) for _, field in TOKEN_SERIES))
                  for label, p in zip(labels, report["series"], strict=True)]
    request_bars = [Bar(label, (float(p["requests"] - p["fallbacks"]), float(p["fallbacks"])))
                    for label, p in zip(labels, report["series"], strict=True)]
    providers = [(name, float(c["requests"])) for name, c in report["by_provider"].items()]
    return {
        "tokens": stacked_bars(token_bars, [name for name, _ in TOKEN_SERIES],
                               title=f"Tokens per {granularity} ({report['tz']})"),
        "requests": stacked_bars(request_bars, ["direct", "fallback"],
                                 title=f"Requests per {granularity}, direct and via fallback ({report['tz']})",
                                 height=140),
        "providers": share_bar(providers, title="Requests by provider"),
    }


async def usage_view(services: Services, usage: UsageQuery, *, user_id: str | None = None,
                     with_top_users: bool = False) -> dict[str, Any]:
    """Template context for a usage report: ``usage`` (the query), ``report`` (``usage_report``'s
    answer), ``charts`` and, when asked, ``top`` (``top_users``' answer). Raises InvalidRequest."""
    report = await query.usage_report(services.store.db, start=usage.start, end=usage.end,
                                      granularity=usage.granularity, tz=usage.tz, user_id=user_id,
                                      retention=services.usage.retention)
    top = None
    if with_top_users:
        top = await query.top_users(services.store.db, start=usage.start, end=usage.end, limit=10,
                                    metric="tokens", retention=services.usage.retention)
    fallback_share = (report["totals"]["fallbacks"] / report["totals"]["requests"]
                      if report["totals"]["requests"] else 0.0)
    return {"usage": usage, "report": report, "charts": charts(report), "top": top,
            "fallback_share": fallback_share, "token_series": TOKEN_SERIES}

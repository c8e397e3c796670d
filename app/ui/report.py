"""Usage pages: run the same queries as ``GET /admin/usage`` and shape their answers for the
templates (charts, shares, rows). At most two queries per page: ``usage_report`` (one store call)
and, for the global view, ``top_users`` (two). The chosen time zone is remembered in the ``ccp_tz``
cookie and used when a page's query string names none.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from markupsafe import Markup
from starlette.responses import Response

from app.services import Services
from app.ui.charts import Bar, share_bar, stacked_bars
from app.ui.forms import RANGES, UsageQuery, all_zones, usage_query
from app.ui.session import cookie_is_secure
from app.usage import query

TOKEN_SERIES = (("input", "input_tokens"), ("output", "output_tokens"),
                ("cache write", "cache_creation_input_tokens"), ("cache read", "cache_read_input_tokens"))
ZONE_COOKIE = "ccp_tz"  # the usage pages' time zone, remembered per browser
ZONE_COOKIE_MAX_AGE_S = 365 * 24 * 3600
REQUEST_SERIES = ("direct", "via fallback", "Bedrock by policy")
_LABEL_FORMAT = {"minute": "%m-%d %H:%M", "hour": "%m-%d %H:00", "day": "%Y-%m-%d", "week": "wk %Y-%m-%d",
                 "month": "%Y-%m"}


def bucket_label(start_iso: str, granularity: str) -> str:
    return datetime.fromisoformat(start_iso).strftime(_LABEL_FORMAT.get(granularity, "%Y-%m-%d %H:%M"))


def charts(report: dict[str, Any]) -> dict[str, Markup]:
    """``tokens``: tokens per bucket stacked by kind; ``requests``: requests per bucket split into
    served directly, by the Bedrock fallback (Anthropic failed), and by Bedrock by policy
    (``bedrock_only`` keys, forced); ``providers``: share of requests per provider."""
    granularity = report["granularity"]
    labels = [bucket_label(p["start"], granularity) for p in report["series"]]
    token_bars = [Bar(label, tuple(float(p[field]) for _, field in TOKEN_SERIES))
                  for label, p in zip(labels, report["series"], strict=True)]
    request_bars = [Bar(label, (float(p["requests"] - p["fallbacks"]), float(p["fallbacks"] - p["bedrock_by_policy"]),
                                float(p["bedrock_by_policy"])))
                    for label, p in zip(labels, report["series"], strict=True)]
    providers = [(name, float(c["requests"])) for name, c in report["by_provider"].items()]
    return {
        "tokens": stacked_bars(token_bars, [name for name, _ in TOKEN_SERIES],
                               title=f"Tokens per {granularity} ({report['tz']})"),
        "requests": stacked_bars(request_bars, list(REQUEST_SERIES),
                                 title=f"Requests per {granularity}: direct, via fallback, Bedrock by policy "
                                       f"({report['tz']})", height=140),
        "providers": share_bar(providers, title="Requests by provider"),
    }


def remembered_zone(request: Request) -> str | None:
    """The zone saved in the ``ccp_tz`` cookie, if it is a real IANA name (else ignored)."""
    value = request.cookies.get(ZONE_COOKIE)
    return value if value and value in all_zones() else None


def remember_zone(request: Request, response: Response, usage: UsageQuery) -> None:
    """Save the page's zone in the ``ccp_tz`` cookie (a year, Path=/ui) when it changed."""
    if usage.tz != request.cookies.get(ZONE_COOKIE):
        secure = cookie_is_secure(request.app.state.services.settings.cookie_secure, request.url.scheme)
        response.set_cookie(ZONE_COOKIE, usage.tz, max_age=ZONE_COOKIE_MAX_AGE_S, path="/ui", httponly=True,
                            samesite="lax", secure=secure)


def page_usage_query(request: Request) -> UsageQuery:
    """The usage query of a page: its query string, with the remembered zone as the default."""
    return usage_query(request.query_params, datetime.now(UTC), default_tz=remembered_zone(request))


async def usage_view(services: Services, usage: UsageQuery, *, user_id: str | None = None,
                     with_top_users: bool = False, oob_controls: bool = False) -> dict[str, Any]:
    """Template context for a usage report: ``usage`` (the query), ``report`` (``usage_report``'s
    answer), ``charts``, ``share`` (:func:`fallback_share`), the controls' choices (``ranges``,
    ``granularities`` for this range, ``all_zones``) and, when asked, ``top`` (``top_users``'
    answer). ``oob_controls``: the report fragment also refreshes the controls (htmx out-of-band),
    so the granularity menu follows the range. Raises InvalidRequest."""
    report = await query.usage_report(services.store.db, start=usage.start, end=usage.end,
                                      granularity=usage.granularity, tz=usage.tz, user_id=user_id,
                                      retention=services.usage.retention)
    top = None
    if with_top_users:
        top = await query.top_users(services.store.db, start=usage.start, end=usage.end, limit=10,
                                    metric="tokens", retention=services.usage.retention)
    return {"usage": usage, "report": report, "charts": charts(report), "top": top,
            "share": fallback_share(report["totals"]), "token_series": TOKEN_SERIES,
            "request_series": REQUEST_SERIES, "ranges": RANGES, "granularities": usage.granularities,
            "all_zones": all_zones(), "oob_controls": oob_controls}


def fallback_share(totals: dict[str, Any]) -> dict[str, int]:
    """``{"fallbacks", "tried", "by_policy"}``: requests that fell back because Anthropic failed,
    out of those that tried Anthropic first; ``by_policy``: sent to Bedrock by a ``bedrock_only`` key
    or PROXY_FORCE_FALLBACK, counted apart (they are not failures)."""
    by_policy = int(totals.get("bedrock_by_policy") or 0)
    return {"fallbacks": int(totals["fallbacks"]) - by_policy, "tried": int(totals["requests"]) - by_policy,
            "by_policy": by_policy}

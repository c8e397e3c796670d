"""The fallback policy is a pure function of status, headers and time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from starlette.datastructures import Headers

from app.errors import InvalidRequest, UpstreamPoolExhausted, UpstreamTimeout, UpstreamUnavailable
from app.proxy.fallback import cooldown_seconds, decide_on_error, decide_on_status

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


def decide(status: int, headers: dict[str, str] | None = None, **kw: object):
    return decide_on_status(status, Headers(headers or {}), now=NOW, **kw)  # type: ignore[arg-type]


def test_429_falls_back_with_retry_after_seconds() -> None:
    d = decide(429, {"retry-after": "30"})
    assert (d.fall_back, d.reason, d.cooldown_s, d.counts_toward_circuit) == (True, "rate_limited", 30.0, False)


def test_429_retry_after_http_date() -> None:
    when = format_datetime(NOW + timedelta(seconds=90), usegmt=True)
    assert decide(429, {"retry-after": when}).cooldown_s == pytest.approx(90)


def test_429_uses_latest_reset_of_exhausted_limits_only() -> None:
    headers = {"anthropic-ratelimit-tokens-remaining": "0",
               "anthropic-ratelimit-tokens-reset": (NOW + timedelta(seconds=40)).isoformat(),
               "anthropic-ratelimit-requests-remaining": "12",
               "anthropic-ratelimit-requests-reset": (NOW + timedelta(seconds=500)).isoformat()}
    assert decide(429, headers).cooldown_s == pytest.approx(40)


def test_429_unified_subscription_reset_epoch_is_capped() -> None:
    headers = {"anthropic-ratelimit-unified-status": "rejected",
               "anthropic-ratelimit-unified-reset": str(int(NOW.timestamp()) + 5 * 86400)}
    assert decide(429, headers, cooldown_max_s=3600).cooldown_s == 3600


def test_429_without_hints_uses_default() -> None:
    assert decide(429, cooldown_default_s=60).cooldown_s == 60
    assert decide(429, {"retry-after": "garbage"}, cooldown_default_s=61).cooldown_s == 61
    assert decide(429, {"retry-after": "-5"}, cooldown_default_s=62).cooldown_s == 62


@pytest.mark.parametrize("status", [500, 502, 503, 504, 529])
def test_server_errors_fall_back_and_count_toward_circuit(status: int) -> None:
    d = decide(status)
    assert d.fall_back and d.counts_toward_circuit and d.cooldown_s is None


@pytest.mark.parametrize("status", [400, 404, 413, 422, 401, 403, 200, 501])
def test_client_errors_pass_through(status: int) -> None:
    assert not decide(status).fall_back


def test_auth_errors_fall_back_only_when_configured() -> None:
    assert decide(401, fallback_on_auth_errors=True).fall_back
    assert decide(403, fallback_on_auth_errors=True).reason == "auth_error_403"


def test_errors_before_response() -> None:
    assert decide_on_error(UpstreamTimeout("t")).reason == "timeout"
    assert decide_on_error(UpstreamUnavailable("c")).reason == "connect_error"
    assert not decide_on_error(InvalidRequest("x")).fall_back


def test_cooldown_seconds_prefers_retry_after_over_resets() -> None:
    headers = Headers({"retry-after": "7", "anthropic-ratelimit-tokens-remaining": "0",
                       "anthropic-ratelimit-tokens-reset": (NOW + timedelta(seconds=99)).isoformat()})
    assert cooldown_seconds(headers, now=NOW, default_s=60, max_s=3600) == 7


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e400", "-5", "0", "soon"])
def test_a_retry_after_that_is_not_a_positive_finite_number_falls_back_to_the_default(value: str) -> None:
    assert cooldown_seconds(Headers({"retry-after": value}), now=NOW, default_s=60, max_s=3600) == 60


def test_a_nan_reset_header_is_ignored_and_a_huge_one_capped() -> None:
    exhausted = {"anthropic-ratelimit-tokens-remaining": "0"}
    assert cooldown_seconds(Headers({**exhausted, "anthropic-ratelimit-tokens-reset": "nan"}),
                            now=NOW, default_s=60, max_s=3600) == 60
    assert cooldown_seconds(Headers({**exhausted, "anthropic-ratelimit-tokens-reset": "9999-12-31T23:59:59Z"}),
                            now=NOW, default_s=60, max_s=3600) == 3600


def test_a_full_local_pool_falls_back_without_cooldown_or_circuit() -> None:
    decision = decide_on_error(UpstreamPoolExhausted("full"))
    assert (decision.fall_back, decision.reason, decision.cooldown_s, decision.counts_toward_circuit) == (
        True, "local_pool_exhausted", None, False)

"""app/errors.py: the retry hints every proxy error carries (``x-should-retry``, ``retry-after``)."""

from __future__ import annotations

import pytest

from app.errors import (ApiError, AuthenticationFailed, InvalidRequest, NotFound, Overloaded, PermissionDenied,
                        ProxyError, RateLimited, RequestTooLarge, ServiceUnavailable, UpstreamPoolExhausted,
                        retry_after_value)
from app.proxy.responses import error_response


@pytest.mark.parametrize("cls", [InvalidRequest, AuthenticationFailed, PermissionDenied, NotFound, RequestTooLarge])
def test_refusals_a_retry_cannot_fix_say_do_not_retry(cls: type[ProxyError]) -> None:
    response = error_response(cls("no"))
    assert response.headers["x-should-retry"] == "false"


@pytest.mark.parametrize("cls", [RateLimited, ServiceUnavailable, UpstreamPoolExhausted, Overloaded, ApiError])
def test_transient_errors_leave_the_retry_to_the_client(cls: type[ProxyError]) -> None:
    assert "x-should-retry" not in error_response(cls("busy")).headers


@pytest.mark.parametrize(("cls", "status"), [(RateLimited, 429), (Overloaded, 529), (ServiceUnavailable, 503),
                                             (UpstreamPoolExhausted, 503)])
def test_every_429_529_503_carries_retry_after_in_whole_seconds(cls: type[ProxyError], status: int) -> None:
    response = error_response(cls("busy"))
    assert response.status_code == status
    assert response.headers["retry-after"].isdigit() and int(response.headers["retry-after"]) >= 1


@pytest.mark.parametrize(("seconds", "header"), [(0.2, "1"), (1.0, "1"), (2.1, "3"), (37800.0, "37800"),
                                                 (float("nan"), "1"), (-5.0, "1")])
def test_retry_after_rounds_up_to_whole_seconds(seconds: float, header: str) -> None:
    assert retry_after_value(seconds) == header
    assert RateLimited("x", retry_after_s=seconds).headers["retry-after"] == header


def test_one_error_can_override_its_class_hints() -> None:
    daily_cap = RateLimited("daily limit reached", retry_after_s=3600, should_retry=False)
    assert daily_cap.headers == {"retry-after": "3600", "x-should-retry": "false"}
    assert "retry-after" not in RateLimited("x", retry_after_s=None).headers
    assert ServiceUnavailable("x").retry_after_s == 5.0


def test_a_subclass_sets_the_hint_once_for_all_its_errors() -> None:
    class SpendCapReached(RateLimited):  # what a governance refusal looks like
        should_retry = False

    assert SpendCapReached("cap reached", retry_after_s=60).headers == {"retry-after": "60", "x-should-retry": "false"}
    assert "x-should-retry" not in RateLimited("x").headers  # the parent is untouched


def test_explicit_headers_win_over_the_defaults() -> None:
    error = UpstreamPoolExhausted("full", headers={"retry-after": "2"})
    assert error.headers["retry-after"] == "2"

"""app/ui/session.py: the signed session cookie."""

from __future__ import annotations

import time

from starlette.responses import Response

from app.ui.session import SESSION_COOKIE, SessionCodec, new_session

KEY = b"k" * 32


def test_round_trip_and_cookie_flags() -> None:
    codec = SessionCodec(KEY, ttl_s=60, secure=True)
    response = Response()
    codec.store(response, new_session("admin"))
    header = response.headers["set-cookie"]
    assert "HttpOnly" in header and "Secure" in header and "SameSite=lax" in header and "Path=/ui" in header
    value = header.split(";")[0].removeprefix(f"{SESSION_COOKIE}=")
    session = codec.load(value)
    assert session is not None and session.username == "admin" and not session.new


def test_tampered_foreign_or_expired_cookie_is_no_session() -> None:
    codec = SessionCodec(KEY, ttl_s=1, secure=False)
    response = Response()
    codec.store(response, new_session("admin"))
    value = response.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    assert codec.load(value[:-2] + "xx") is None
    assert SessionCodec(b"o" * 32, ttl_s=60, secure=False).load(value) is None
    assert codec.load(None) is None and codec.load("garbage") is None
    time.sleep(2.1)
    assert codec.load(value) is None


def test_new_sessions_have_distinct_tokens() -> None:
    assert new_session().csrf != new_session().csrf

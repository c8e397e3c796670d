"""``configure_logging``: one JSON object per line, without uvicorn's ANSI ``color_message``."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from app.logs import PREFORMATTED_FIELDS, configure_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root, server = logging.getLogger(), logging.getLogger("uvicorn.error")
    handlers, level, server_level = root.handlers[:], root.level, server.level
    server.setLevel(logging.INFO)  # test servers run uvicorn with log_level=warning, which sets it
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    server.setLevel(server_level)


def test_uvicorn_color_message_is_dropped_from_json_lines(capsys: pytest.CaptureFixture[str],
                                                           restore_logging: None) -> None:
    configure_logging("INFO")
    # What uvicorn.server does at start: the plain message plus a coloured copy in `extra`.
    logging.getLogger("uvicorn.error").info("Uvicorn running on %s", "http://127.0.0.1:8080",
                                             extra={"color_message": "Uvicorn running on \x1b[1m%s\x1b[0m"})
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1
    assert lines[0]["message"] == "Uvicorn running on http://127.0.0.1:8080"
    assert lines[0]["name"] == "uvicorn.error" and lines[0]["level"] == "INFO"
    assert "color_message" not in lines[0]
    assert "\x1b" not in json.dumps(lines[0])


def test_other_extra_fields_are_kept(capsys: pytest.CaptureFixture[str], restore_logging: None) -> None:
    configure_logging("INFO")
    logging.getLogger("claude_code_proxy.requests").info("request", extra={"status": 200, "provider": "anthropic"})
    line = json.loads(capsys.readouterr().err.strip())
    assert line["status"] == 200 and line["provider"] == "anthropic"


def test_a_preformatted_request_line_is_the_same_line_as_with_extra(capsys: pytest.CaptureFixture[str],
                                                                   restore_logging: None) -> None:
    configure_logging("INFO")
    fields = {"proxy_request_id": "preq_1", "status": 200, "model": "claude-x", "notes": None, "ttft_ms": 1.5}
    logger = logging.getLogger("claude_code_proxy.requests")
    logger.info("request", extra=fields)
    logger.info("request", extra={PREFORMATTED_FIELDS: json.dumps(fields)})
    plain, preformatted = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert list(preformatted) == list(plain)  # same keys in the same order
    assert {**preformatted, "time": None} == {**plain, "time": None}  # the two may be a millisecond apart

"""app/proxy/request_log.py: the request line, written in batches with the time its request finished;
at once while the writer is not running; everything left written on close; and through the app, one
line per request with its fields and no credential."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from app.proxy.request_log import RequestLog
from tests.conftest import RunningProxy
from tests.fakes.anthropic_server import FakeAnthropic
from tests.support.constants import CLIENT_API_KEY

REQUESTS = "claude_code_proxy.requests"


def lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == REQUESTS]


def test_without_the_writer_task_a_line_is_written_at_once(caplog: pytest.LogCaptureFixture) -> None:
    log = RequestLog(logging.getLogger(REQUESTS))
    with caplog.at_level(logging.INFO, logger=REQUESTS):
        log.add({"status": 200})
    [record] = lines(caplog)
    assert record.getMessage() == "request" and record.levelno == logging.INFO


async def test_lines_wait_for_the_interval_keep_their_time_and_close_writes_the_rest(
        caplog: pytest.LogCaptureFixture) -> None:
    log = RequestLog(logging.getLogger(REQUESTS), interval_s=0.2, batch_size=1000)
    with caplog.at_level(logging.INFO, logger=REQUESTS):
        log.start()
        before = time.time()
        log.add({"proxy_request_id": "preq_1"})
        await asyncio.sleep(0.05)
        assert lines(caplog) == []  # kept for the next write
        for _ in range(100):  # at most 2 s
            if lines(caplog):
                break
            await asyncio.sleep(0.02)
        [first] = lines(caplog)
        assert before <= first.created < before + 0.05  # when the request finished, not when written
        log.add({"proxy_request_id": "preq_2"})
        await log.aclose()
    assert [r.__dict__["fields_json"] for r in lines(caplog)] == ['{"proxy_request_id": "preq_1"}',
                                                                   '{"proxy_request_id": "preq_2"}']


async def test_a_full_batch_is_written_before_the_interval(caplog: pytest.LogCaptureFixture) -> None:
    log = RequestLog(logging.getLogger(REQUESTS), interval_s=60, batch_size=3)
    with caplog.at_level(logging.INFO, logger=REQUESTS):
        log.start()
        for i in range(3):
            log.add({"n": i})
        for _ in range(100):
            if len(lines(caplog)) == 3:
                break
            await asyncio.sleep(0.02)
        assert len(lines(caplog)) == 3
        await log.aclose()


def test_not_enabled_below_info() -> None:
    logger = logging.getLogger(REQUESTS + ".quiet")
    logger.setLevel(logging.WARNING)
    assert not RequestLog(logger).enabled


def test_one_line_per_request_through_the_app_with_its_fields_and_no_credential(
        proxy: RunningProxy, fake_anthropic: FakeAnthropic, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=REQUESTS):
        response = proxy.http.post("/v1/messages", headers={"x-api-key": CLIENT_API_KEY, "x-proxy-key": proxy.key},
                                   json={"model": "claude-sonnet-4-5", "max_tokens": 5,
                                         "messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code == 200
        proxy.app.state.services.forwarder.request_log.write()  # the writer's next round, now
    [record] = lines(caplog)
    text = record.__dict__["fields_json"]
    assert '"status": 200' in text and '"provider": "anthropic"' in text and proxy.key_id in text
    assert CLIENT_API_KEY not in text and proxy.key not in text

"""tests/proxy's ``proxy``: the app in-process (no socket), in front of the shared fake Anthropic.

The proxy path under test is the app's: routes, forwarding, fallback, usage. Tests about what only a
socket shows (bytes and headers on the wire, disconnects, server shutdown) start their own proxy
with ``start_proxy(settings)`` on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import RunningProxy, make_settings, start_proxy
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.bedrock_server import FakeBedrock, running_fake_bedrock


@pytest.fixture
def proxy(fake_anthropic: FakeAnthropic) -> Iterator[RunningProxy]:
    yield from start_proxy(make_settings(fake_anthropic.url), in_process=True)


@pytest.fixture
def fake_bedrock() -> Iterator[FakeBedrock]:
    """A fresh fake Bedrock on loopback (modules that need other answers override it)."""
    with running_fake_bedrock() as fake:
        yield fake


@pytest.fixture
def fb_proxy(fake_anthropic: FakeAnthropic, fake_bedrock: FakeBedrock) -> Iterator[RunningProxy]:
    """A proxy in front of both fakes, with the product's default policy (anthropic_first)."""
    yield from start_proxy(make_settings(fake_anthropic.url, bedrock_endpoint_url=fake_bedrock.url,
                                         default_fallback_policy="anthropic_first", bedrock_read_timeout_s=10.0),
                           in_process=True)

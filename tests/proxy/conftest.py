"""tests/proxy's ``proxy``: the app in-process (no socket), in front of the shared fake Anthropic.

The proxy path under test is the app's: routes, forwarding, fallback, usage. Tests about what only a
socket shows (bytes and headers on the wire, disconnects, server shutdown) start their own proxy
with ``start_proxy(settings)`` on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import RunningProxy, make_settings, start_proxy
from tests.fakes.anthropic_server import FakeAnthropic


@pytest.fixture
def proxy(fake_anthropic: FakeAnthropic) -> Iterator[RunningProxy]:
    yield from start_proxy(make_settings(fake_anthropic.url), in_process=True)

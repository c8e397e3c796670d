"""tests/e2e: the pinned Claude Code CLI installed (``npm ci``) once before the first test that runs;
``fakes``, a fake Anthropic and a fake Bedrock for a module (modules that need other ones override it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.claude_cli import ensure_claude_installed
from tests.fakes.anthropic_server import FakeAnthropic, running_fake_anthropic
from tests.fakes.bedrock_server import FakeBedrock, running_fake_bedrock


@pytest.fixture(scope="module", autouse=True)
def claude_installed() -> Path:
    return ensure_claude_installed()


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeAnthropic, FakeBedrock]]:
    with running_fake_anthropic() as anthropic, running_fake_bedrock() as bedrock:
        yield anthropic, bedrock

"""tests/e2e: the pinned Claude Code CLI installed (``npm ci``) once before the first test that runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.claude_cli import ensure_claude_installed


@pytest.fixture(scope="module", autouse=True)
def claude_installed() -> Path:
    return ensure_claude_installed()

"""Shared, cached mocked runs of the Pulumi program (one run per distinct config per session)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from tests.infra.harness import BASE_CONFIG, HTTPS_CONFIG, ProgramRun, run_program

_RUNS: dict[str, ProgramRun] = {}


def cached_run(config: Mapping[str, Any]) -> ProgramRun:
    """Run the program once per distinct ``config`` and reuse the result (runs are read-only)."""
    key = json.dumps(config, sort_keys=True)
    if key not in _RUNS:
        _RUNS[key] = run_program(config)
    return _RUNS[key]


@pytest.fixture
def run() -> Callable[[Mapping[str, Any]], ProgramRun]:
    """``run({...})``: the program's resources and outputs for a config (bare keys = project keys)."""
    return cached_run


@pytest.fixture
def http_stack() -> ProgramRun:
    """Default config: no certificate (plain HTTP), image built from the Dockerfile."""
    return cached_run(BASE_CONFIG)


@pytest.fixture
def https_stack() -> ProgramRun:
    """Domain + ACM certificate, image URI from config, configured admin password and metrics token."""
    return cached_run(HTTPS_CONFIG)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Silence pulumi_aws's own deprecation notices (raised at import, not by this program)."""
    for item in items:
        if "tests/infra/" in item.nodeid:
            item.add_marker(pytest.mark.filterwarnings("ignore::DeprecationWarning:pulumi_aws.*"))

"""Run the real Claude Code CLI (pinned in tests/e2e/package.json) headless, for e2e tests.

``run_claude`` runs ``claude -p PROMPT --output-format json`` in a clean environment: a fresh
temporary HOME and CLAUDE_CONFIG_DIR, no proxy variables, no telemetry, no auto-update, stdin
closed, a bounded time. In ``-p`` mode Claude Code shows no onboarding, workspace-trust or
"use this API key?" prompt, so nothing needs to be written into the config dir first
(checked with 2.1.330; see docs/testing-clients.md).

``CLAUDE_CODE_BIN`` (environment) points the harness at another ``claude`` binary instead of the
pinned one, e.g. one installed by ``scripts/claude_code_conformance.sh VERSION``; then nothing is
installed here.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

E2E_DIR = Path(__file__).resolve().parent
CLAUDE_BIN = E2E_DIR / "node_modules" / ".bin" / "claude"
CLAUDE_BIN_ENV = "CLAUDE_CODE_BIN"
# Every e2e module's ``pytestmark``: the ``e2e`` marker, and a skip where node/npm are missing.
E2E_MARKS = [
    pytest.mark.e2e,
    pytest.mark.skipif(not (shutil.which("node") and shutil.which("npm")), reason="needs node and npm"),
]
# The npm package ships a shell-script placeholder (~500 bytes) at bin/claude.exe; its postinstall
# (install.cjs) replaces it with the native binary from the platform package.
_PLACEHOLDER_MAX_BYTES = 64 * 1024
_INSTALL_TIMEOUT_S = 600


def npm_available() -> bool:
    return shutil.which("node") is not None and shutil.which("npm") is not None


def ensure_claude_installed() -> Path:
    """Install the pinned CLI with ``npm ci`` if needed; returns the path of the ``claude`` binary.

    Safe to call from several processes at once (a file lock serialises installs). Raises
    ``subprocess.CalledProcessError`` if npm fails, ``RuntimeError`` if the binary still won't run.
    With ``CLAUDE_CODE_BIN`` set, that binary is checked and returned instead.
    """
    if override := os.environ.get(CLAUDE_BIN_ENV):
        return _checked(Path(override))
    lock_path = Path(tempfile.gettempdir()) / "claude-code-proxy-e2e-npm.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not CLAUDE_BIN.exists():
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=E2E_DIR, check=True,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=_INSTALL_TIMEOUT_S)
        if CLAUDE_BIN.resolve().stat().st_size < _PLACEHOLDER_MAX_BYTES:
            # postinstall did not run (e.g. --ignore-scripts in the user's npmrc): run it now.
            subprocess.run(["node", "node_modules/@anthropic-ai/claude-code/install.cjs"], cwd=E2E_DIR,
                           check=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    return _checked(CLAUDE_BIN)


def _checked(binary: Path) -> Path:
    """``binary`` if ``binary --version`` runs; raises RuntimeError otherwise."""
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                             stdin=subprocess.DEVNULL, timeout=60)
    if version.returncode != 0:
        raise RuntimeError(f"{binary} --version failed: {version.stderr.strip()}")
    return binary


@dataclass(frozen=True)
class ClaudeResult:
    returncode: int
    stdout: str
    stderr: str
    json: dict[str, Any] | None  # the --output-format json result object, if stdout parsed as one
    result: str | None           # json["result"]: the final assistant text (or error text)
    home: Path                   # the HOME/CLAUDE_CONFIG_DIR used (deleted after the run unless passed in)


def claude_env(*, base_url: str, home: Path, api_key: str | None = None, auth_token: str | None = None,
               custom_headers: str | None = None, extra_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The whole environment for one run: nothing is inherited but PATH."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home),
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "TMPDIR": str(home / "tmp"),
        "LANG": "C.UTF-8",
        "SHELL": shutil.which("bash") or "/bin/sh",
        "ANTHROPIC_BASE_URL": base_url,
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    for name, value in (("ANTHROPIC_API_KEY", api_key), ("ANTHROPIC_AUTH_TOKEN", auth_token),
                        ("ANTHROPIC_CUSTOM_HEADERS", custom_headers)):
        if value is not None:
            env[name] = value
    env.update(extra_env or {})
    return env


def run_claude(prompt: str, *, base_url: str, api_key: str | None = None, auth_token: str | None = None,
               custom_headers: str | None = None, extra_env: Mapping[str, str] | None = None,
               cwd: Path, timeout_s: float = 120, extra_args: Sequence[str] = (),
               home: Path | None = None) -> ClaudeResult:
    """``claude -p PROMPT --output-format json [extra_args]`` against ``base_url``.

    ``custom_headers`` is ANTHROPIC_CUSTOM_HEADERS ("Name: value" lines). ``home`` keeps the
    config dir (transcripts under .claude/projects) for inspection; by default a temporary one
    is used and removed. Raises ``subprocess.TimeoutExpired`` (after killing the CLI and its
    children) if it runs longer than ``timeout_s`` seconds.
    """
    binary = ensure_claude_installed()
    with tempfile.TemporaryDirectory(prefix="claude-home-") as temp_home:
        run_home = home or Path(temp_home)
        (run_home / ".claude").mkdir(parents=True, exist_ok=True)
        (run_home / "tmp").mkdir(exist_ok=True)
        env = claude_env(base_url=base_url, home=run_home, api_key=api_key, auth_token=auth_token,
                         custom_headers=custom_headers, extra_env=extra_env)
        args = [str(binary), "-p", prompt, "--output-format", "json", *extra_args]
        process = subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            stdout, stderr = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the CLI's own group: Bash-tool children too
            stdout, stderr = process.communicate()
            raise subprocess.TimeoutExpired(args, timeout_s, output=stdout, stderr=stderr) from None
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # anything the CLI left running in background
        parsed = _parse_result(stdout)
        return ClaudeResult(returncode=process.returncode, stdout=stdout, stderr=stderr, json=parsed,
                            result=parsed.get("result") if parsed else None, home=run_home)


def _parse_result(stdout: str) -> dict[str, Any] | None:
    """The last line of stdout that parses as a JSON object (the CLI prints one result object)."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


FIXTURES_DIR = E2E_DIR.parent / "fixtures"
_SECRET_HEADERS = frozenset({"x-api-key", "authorization", "cookie", "proxy-authorization"})
CAPTURE_PROMPT = "Run `echo hi` with the Bash tool and tell me what it printed."


def redact_headers(headers: Sequence[tuple[str, str]]) -> list[list[str]]:
    """Header pairs with credential values replaced by "<redacted>"."""
    return [[name, "<redacted>" if name in _SECRET_HEADERS else value] for name, value in headers]


def capture_request_fixture(fixtures_dir: Path = FIXTURES_DIR) -> Path:
    """Regenerate tests/fixtures/claude_code_request.json (+ _headers.json) from the pinned CLI.

    Scenario: the fake answers the first turn with thinking + text + a Bash ``echo hi`` tool_use;
    the CLI runs it and sends the next turn, whose exact body bytes are stored (it holds every
    shape of the first turn plus an assistant thinking/tool_use turn and a tool_result).
    Run: ``.venv/bin/python -m tests.e2e.claude_cli`` after bumping the pinned version.
    """
    from tests.fakes.anthropic_server import (ends_with_tool_result, has_tools, message_reply,
                                              running_fake_anthropic, text_block, text_reply,
                                              thinking_block, tool_use_block)

    project = Path(tempfile.gettempdir()) / "claude-code-proxy-fixture-project"
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir()
    with running_fake_anthropic() as fake:
        fake.enqueue(message_reply(thinking_block("The user wants me to run echo hi."),
                                   text_block("Running it now."),
                                   tool_use_block("Bash", {"command": "echo hi", "description": "Print hi"})),
                     when=has_tools)
        fake.enqueue(text_reply("It printed: hi"), when=ends_with_tool_result)
        result = run_claude(CAPTURE_PROMPT, base_url=fake.url, api_key="sk-ant-api03-fixture-key-not-real",
                            cwd=project, extra_args=["--allowedTools", "Bash(echo:*)", "--max-turns", "3"])
        turn = next(r for r in fake.messages_requests() if ends_with_tool_result(r))
    shutil.rmtree(project, ignore_errors=True)
    if result.result != "It printed: hi":
        raise RuntimeError(f"capture run failed: {result.stdout or result.stderr}")
    body_path = fixtures_dir / "claude_code_request.json"
    body_path.write_bytes(turn.body)
    # One header pair a line, so a version bump shows up as a readable diff.
    headers = [[n, "127.0.0.1:PORT" if n == "host" else v] for n, v in redact_headers(turn.headers)]
    pairs = ",\n".join(f"    {json.dumps(pair)}" for pair in headers)
    (fixtures_dir / "claude_code_request_headers.json").write_text(
        f'{{\n  "method": "{turn.method}",\n  "path": "{turn.path}",\n  "query": "{turn.query}",\n'
        f'  "headers": [\n{pairs}\n  ]\n}}\n')
    return body_path


if __name__ == "__main__":
    print(capture_request_fixture())

"""The installed ``claude-code-proxy`` console script as a subprocess: ``--version``, ``--help`` of
every command, exit codes, and one clear line (no traceback, no password) when the store cannot be
reached or a setting is missing. Command logic on a real store is in tests/test_commands.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ENTRY_POINT = Path(sys.executable).parent / "claude-code-proxy"
UNREACHABLE = "mongodb://app:hunter2@127.0.0.1:1/?serverSelectionTimeoutMS=300"
SECRETS = {"PROXY_SECRET_KEY": "s" * 40, "PROXY_ADMIN_PASSWORD": "an-admin-password-for-tests"}

pytestmark = pytest.mark.skipif(not ENTRY_POINT.exists(), reason="console script not installed (pip install -e .)")


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PROXY_")}
    return subprocess.run([str(ENTRY_POINT), *args], env={**base, **(env or {})}, cwd=cwd, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_version(tmp_path: Path) -> None:
    done = cli("--version", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "claude-code-proxy, version 0.1.0"


def test_help_of_the_group_and_of_a_leaf(tmp_path: Path) -> None:
    top = cli("--help", cwd=tmp_path)
    assert top.returncode == 0
    for name in ("serve", "check-config", "users", "keys", "admin", "usage"):
        assert f"  {name}" in top.stdout
    leaf = cli("keys", "rotate", "--help", cwd=tmp_path)  # every leaf: tests/test_commands.py (in process)
    assert leaf.returncode == 0 and "--yes" in leaf.stdout and "Exit codes: 0 done" in " ".join(leaf.stdout.split())


def test_check_config_unreachable_store_is_one_line_and_exit_1(tmp_path: Path) -> None:
    done = cli("check-config", "--timeout", "0.3", env={"PROXY_MONGODB_URL": UNREACHABLE, **SECRETS}, cwd=tmp_path)
    assert done.returncode == 1
    [line] = lines(done.stderr)
    assert line.startswith("store error: cannot reach the store at mongodb://app:****@127.0.0.1:1/")
    assert "check PROXY_MONGODB_URL" in line
    assert "Traceback" not in done.stderr + done.stdout and "hunter2" not in done.stderr + done.stdout


def test_check_config_names_missing_secrets_exit_2(tmp_path: Path) -> None:
    done = cli("check-config", "--timeout", "0.3", env={"PROXY_MONGODB_URL": UNREACHABLE}, cwd=tmp_path)
    assert done.returncode == 2
    assert "missing: secrets: PROXY_SECRET_KEY and PROXY_ADMIN_PASSWORD must be set" in done.stderr


def test_check_config_names_a_bad_setting(tmp_path: Path) -> None:
    done = cli("check-config", "--json", env={"PROXY_CONNECT_TIMEOUT_S": "-1"}, cwd=tmp_path)
    assert done.returncode == 2
    assert '"PROXY_CONNECT_TIMEOUT_S: Input should be greater than 0"' in done.stdout


def test_check_config_on_the_embedded_store_warns_and_passes(tmp_path: Path) -> None:
    done = cli("check-config", cwd=tmp_path)
    assert done.returncode == 0
    assert "warning  store: PROXY_MONGODB_URL unset" in done.stdout


def test_data_commands_refuse_the_embedded_store(tmp_path: Path) -> None:
    done = cli("users", "list", env=SECRETS, cwd=tmp_path)
    assert done.returncode == 2
    [line] = lines(done.stderr)
    assert line.startswith("error: PROXY_MONGODB_URL is not set")


def test_data_command_with_unreachable_store_exit_1_json(tmp_path: Path) -> None:
    done = cli("keys", "list", "usr_x", "--json", env={"PROXY_MONGODB_URL": UNREACHABLE, **SECRETS}, cwd=tmp_path)
    assert done.returncode == 1
    assert '"type": "error"' in done.stdout and "store error: cannot reach the store" in done.stdout
    assert done.stderr == "" and "hunter2" not in done.stdout


def test_usage_errors_are_exit_2(tmp_path: Path) -> None:
    assert cli("no-such-command", cwd=tmp_path).returncode == 2
    assert cli("keys", "create", cwd=tmp_path).returncode == 2  # USER missing


def test_serve_on_all_interfaces_prints_urls_others_can_reach(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = {k: v for k, v in os.environ.items() if not k.startswith("PROXY_")}
    proc = subprocess.Popen([str(ENTRY_POINT), "serve", "--host", "0.0.0.0", "--port", str(port)], cwd=tmp_path,
                            env={**base, "PROXY_LOG_LEVEL": "WARNING"}, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    seen: list[str] = []
    import threading

    watchdog = threading.Timer(60, proc.kill)  # never hang the suite if the banner does not come
    watchdog.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # the banner comes from the lifespan, then uvicorn serves
            seen.append(line.rstrip())
            if line.startswith("# Admin (generated"):
                break
    finally:
        watchdog.cancel()
        proc.terminate()
        proc.wait(timeout=30)
    text = "\n".join(seen)
    hostname = socket.gethostname()
    assert f"reachable at http://{hostname}:{port}" in text and f"http://127.0.0.1:{port}" in text
    assert f"export ANTHROPIC_BASE_URL=http://{hostname}:{port}" in text  # not 127.0.0.1 for teammates
    assert f"http://{hostname}:{port}/ui/me" in text

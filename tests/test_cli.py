"""``claude-code-proxy serve`` against a MongoDB URL where nothing listens, as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys


def test_serve_with_an_unreachable_store_says_so_in_one_line_and_exits_non_zero() -> None:
    env = {**os.environ, "PROXY_MONGODB_URL": "mongodb://app:hunter2@127.0.0.1:1/?serverSelectionTimeoutMS=300",
           "PROXY_SECRET_KEY": "x" * 40, "PROXY_ADMIN_PASSWORD": "a-password-for-tests",
           "PROXY_STORE_STARTUP_TIMEOUT_S": "0"}
    done = subprocess.run([sys.executable, "-m", "app.cli", "serve", "--port", "0"], env=env, capture_output=True,
                          text=True, timeout=60, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("store error: cannot reach the store at mongodb://app:****@127.0.0.1:1/")
    assert "Traceback" not in done.stderr + done.stdout and "hunter2" not in done.stderr + done.stdout


def test_serve_waits_with_backoff_then_gives_up() -> None:
    env = {**os.environ, "PROXY_MONGODB_URL": "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200",
           "PROXY_SECRET_KEY": "x" * 40, "PROXY_ADMIN_PASSWORD": "a-password-for-tests",
           "PROXY_STORE_STARTUP_TIMEOUT_S": "1"}
    done = subprocess.run([sys.executable, "-m", "app.cli", "serve", "--port", "0"], env=env, capture_output=True,
                          text=True, timeout=60, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 2 and "retrying for up to 1 s" in lines[0] and lines[1].startswith("store error:")
    assert "Traceback" not in done.stderr

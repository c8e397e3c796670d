"""Helpers for benchmarks that run the proxy as its own process: start/stop processes pinned to a
CPU, read their CPU time and RSS from /proc, percentiles. Linux only (``/proc``, ``taskset``)."""

from __future__ import annotations

import base64
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all threads), from /proc/<pid>/stat
    (fields 14 and 15, in clock ticks: ``CLK_TCK`` = 100 per second here, so 10 ms resolution)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_busy_s(cpu: int) -> float:
    """Seconds CPU ``cpu`` spent busy (any process; user+nice+system+irq+softirq+steal in /proc/stat)."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, line.split()[1:9])
                return (user + nice + system + irq + softirq + steal) / CLK_TCK
    raise RuntimeError(f"no cpu{cpu} in /proc/stat")


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (``VmRSS`` in /proc/<pid>/status)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def raise_nofile(wanted: int) -> int:
    """Raise the soft open-files limit towards ``wanted`` (children inherit it); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard) if hard != resource.RLIM_INFINITY else max(soft, wanted)
    if target != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile, ``q`` in 0..100; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q / 100 * len(ordered) + 0.5)) - 1))]


def pinned(cpu: int | None, argv: list[str]) -> list[str]:
    """``argv`` run under ``taskset -c cpu`` (taskset execs, so the pid is the program's own)."""
    return argv if cpu is None else ["taskset", "-c", str(cpu), *argv]


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    url: str
    log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self, *, kill: bool = False) -> None:
        """SIGTERM (or SIGKILL) and wait up to 5 s, then SIGKILL."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        if self.log is not None:
            self.log.close()


def start_mock(cpu: int | None) -> Process:
    """bench/mock_anthropic.py on a free port; waits for its ``PORT n`` line (at most 10 s)."""
    popen = subprocess.Popen(pinned(cpu, [PYTHON, str(ROOT / "bench" / "mock_anthropic.py"), "--port", "0"]),
                             stdout=subprocess.PIPE, cwd=ROOT)
    assert popen.stdout is not None
    line = popen.stdout.readline().decode()
    if not line.startswith("PORT "):
        popen.kill()
        raise RuntimeError(f"mock upstream did not start: {line!r}")
    return Process(popen, f"http://127.0.0.1:{int(line.split()[1])}")


def start_proxy(cpu: int | None, upstream_url: str, env: dict[str, str], log_path: Path,
                app_root: Path | None = None) -> Process:
    """``claude-code-proxy serve`` on a free port with ``env`` on top of ours; waits for ``/health``
    (at most 30 s). Output (banner, JSON log lines) goes to ``log_path``. ``app_root``: run the
    ``app`` package found there instead (``python -m app.cli serve``), e.g. another checkout for A/B."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PROXY_")}
    full_env.update(env, PROXY_ANTHROPIC_BASE_URL=upstream_url)
    full_env.setdefault("MALLOC_MMAP_THRESHOLD_", "65536")  # as the Dockerfile sets it
    log = open(log_path, "wb")
    if app_root is None:
        argv, cwd = [str(Path(PYTHON).parent / "claude-code-proxy")], "/tmp"
    else:
        argv, cwd = [PYTHON, "-m", "app.cli"], str(app_root)
        full_env["PYTHONPATH"] = str(app_root)
    popen = subprocess.Popen(pinned(cpu, [*argv, "serve", "--host", "127.0.0.1", "--port", str(port)]),
                             stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=cwd)
    return wait_until_up(Process(popen, f"http://127.0.0.1:{port}", log), "/health", "proxy", log_path,
                         timeout_s=30, interval_s=0.1)


def wait_until_up(proc: Process, health_path: str, name: str, log_path: Path, *, timeout_s: float,
                  interval_s: float) -> Process:
    """``proc`` once ``GET health_path`` answers 200 (polled every ``interval_s``); RuntimeError
    (the process killed) if it exits or does not answer within ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{name} exited ({proc.popen.returncode}); see {log_path}")
        try:
            if httpx.get(proc.url + health_path, timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(interval_s)
    proc.stop(kill=True)
    raise RuntimeError(f"{name} did not answer {health_path} in {timeout_s:g} s; see {log_path}")


@dataclass
class IssuedKey:
    """An access key made through the admin API: the key (``sk-ccp-...``) and the ids to PATCH."""

    key: str
    key_id: str
    user_id: str


class Admin:
    """The admin API, as an admin uses it: log in with HTTP Basic (-> bearer), then JSON calls.
    Source: README "Admin API". Raises ``httpx.HTTPStatusError`` on any non-2xx answer."""

    def __init__(self, proxy: str, admin_password: str) -> None:
        self.client = httpx.Client(base_url=proxy, timeout=30)
        basic = base64.b64encode(f"admin:{admin_password}".encode()).decode()
        login = self.client.post("/admin/auth/login", headers={"authorization": f"Basic {basic}"})
        login.raise_for_status()
        self.client.headers["authorization"] = f"Bearer {login.json()['access_token']}"

    def call(self, method: str, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
        response = self.client.request(method, path, json=body)
        response.raise_for_status()
        return response.json()

    def issue_key(self, name: str = "bench") -> IssuedKey:
        """A new user ``name`` with one access key."""
        user = self.call("POST", "/admin/users", {"name": name, "email": f"{name}@example.com"})
        key = self.call("POST", f"/admin/users/{user['id']}/access-keys", {"name": name})
        return IssuedKey(str(key["key"]), str(key["id"]), str(user["id"]))

    def set_limits(self, issued: IssuedKey, limits: dict[str, object]) -> None:
        """The same ``limits`` (fields of docs/usage.md "Quotas and rate limits") on the key and its user."""
        self.call("PATCH", f"/admin/access-keys/{issued.key_id}", {"limits": limits})
        self.call("PATCH", f"/admin/users/{issued.user_id}", {"limits": limits})

    def close(self) -> None:
        self.client.close()


def issue_access_key(proxy: str, admin_password: str) -> str:
    """Through the admin API, as an admin would: log in (HTTP Basic -> bearer), create a user,
    create an access key for it; returns the key (``sk-ccp-...``)."""
    admin = Admin(proxy, admin_password)
    try:
        return admin.issue_key().key
    finally:
        admin.close()


def results_path(script: str) -> Path:
    """``bench/results/<script>-<UTC time>.json`` (the folder is git-ignored; made if missing)."""
    folder = ROOT / "bench" / "results"
    folder.mkdir(exist_ok=True)
    return folder / f"{script}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"


def markdown_table(header: list[str], rows: list[list[object]]) -> list[str]:
    """A GitHub Markdown table (lines); floats keep the text the caller formatted."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(str(c) for c in row) + " |" for row in rows)]


def load_average() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])

"""Memory of the proxy process around 100 concurrent failed admin logins (issue 10).

Each scenario runs in a fresh subprocess: the real app (embedded store) over ASGI, its lifespan
started, then 100 concurrent ``POST /admin/auth/login`` with wrong passwords. Prints RSS before,
RSS after, and the peak during the burst (``VmHWM`` reset through ``/proc/self/clear_refs`` just
before it), in MiB, from ``/proc/self/status`` (Linux).

Scenarios:
- ``one-client``: all from one IP and username (the login counter stops all but 5 before hashing);
- ``many-clients``: 100 distinct IPs and usernames (no counter stops them; the hashing cap of 2 does);
- ``uncapped``: as ``many-clients`` with the cap raised to 100 (what the old code did: one argon2
  thread per attempt).

Usage: ``python scripts/login_rss.py`` (runs all three and prints a table).
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys

SCENARIOS = ("one-client", "many-clients", "uncapped")


def rss_mib() -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


async def run(scenario: str) -> str:
    import httpx

    from app.config import Settings
    from app.main import create_app

    app = create_app(Settings(_env_file=None, secret_key="s" * 40, admin_password="the-right-password",
                              anthropic_base_url="http://127.0.0.1:9"))
    async with app.router.lifespan_context(app):
        if scenario == "uncapped":
            app.state.services.admin_auth._hash_slots = asyncio.Semaphore(100)
        header = {"authorization": "Basic " + base64.b64encode(b"admin:wrong").decode()}
        before, _ = rss_mib()
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # reset VmHWM: the peak below is the burst's, not start-up's

        async def attempt(i: int) -> int:
            ip = "192.0.2.1" if scenario == "one-client" else f"10.0.{i // 250}.{i % 250}"
            name = "admin" if scenario == "one-client" else f"admin{i}"
            auth = {"authorization": "Basic " + base64.b64encode(f"{name}:wrong".encode()).decode()}
            transport = httpx.ASGITransport(app=app, client=(ip, 40000 + i))
            async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as client:
                return (await client.post("/admin/auth/login", headers=auth if scenario != "one-client" else header)
                        ).status_code

        statuses = await asyncio.gather(*(attempt(i) for i in range(100)))
        after, peak = rss_mib()
    counts = {code: statuses.count(code) for code in sorted(set(statuses))}
    return f"{scenario:13s} before {before:6.1f} MiB  after {after:6.1f} MiB  peak {peak:6.1f} MiB  statuses {counts}"


def main() -> None:
    if len(sys.argv) == 2:
        print(asyncio.run(run(sys.argv[1])))
        return
    for scenario in SCENARIOS:
        out = subprocess.run([sys.executable, __file__, scenario], capture_output=True, text=True, check=True)
        print(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()

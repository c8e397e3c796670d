"""app/gc_tuning.py: ``serve``'s server freezes the start-up objects once the app has started.
Run in a child interpreter: freezing the test process's own objects would change every later test."""

import json
import subprocess
import sys

from app.gc_tuning import GEN0_THRESHOLD

CHILD = r"""
import asyncio, gc, json
import uvicorn
from app.proxy.drain import Drain, DrainingServer

DEFAULT = gc.get_threshold()
seen = {}

async def app(scope, receive, send):  # lifespan only: records the GC state during start-up
    await receive()
    seen["frozen_during_startup"] = gc.get_freeze_count()
    await send({"type": "lifespan.startup.complete"})
    await receive()
    await send({"type": "lifespan.shutdown.complete"})

async def main():
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_config=None)
    server = DrainingServer(config, drain=Drain())
    serving = asyncio.create_task(server.serve())
    for _ in range(500):  # at most 5 s
        if server.started:
            break
        await asyncio.sleep(0.01)
    print(json.dumps({**seen, "started": server.started, "frozen": gc.get_freeze_count(),
                      "threshold": gc.get_threshold(), "default_threshold": DEFAULT}))
    server.should_exit = True
    await serving

asyncio.run(main())
"""


def test_serve_freezes_the_objects_left_after_startup_and_raises_gen0_threshold() -> None:
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=True)
    state = json.loads(done.stdout.strip().splitlines()[-1])
    assert state["started"]
    assert state["frozen_during_startup"] == 0  # not before the app's own start-up has run
    assert state["frozen"] > 10_000  # uvicorn, the app's modules...
    assert state["threshold"] == [GEN0_THRESHOLD, *state["default_threshold"][1:]]

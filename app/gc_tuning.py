"""The garbage collector for a long-running ``serve`` process (issue 16).

After start-up the process holds ~170,000 container objects that live as long as it does (modules,
the botocore service models, settings, the app's routes and templates). CPython's full (generation 2)
collection walks every one of them: on the 2-vCPU bench machine each took ~130 ms, about once a
second at 50 connections, i.e. 13-15 % of the proxy's CPU and a 130 ms stall for every request in
flight. ``gc.freeze()`` moves them to the permanent generation, which no collection scans
(https://docs.python.org/3/library/gc.html#gc.freeze); a collection first, so no garbage is frozen.
A larger generation-0 threshold makes young collections rarer: the request path allocates many
short-lived containers that reference counting frees anyway.

Only ``serve`` calls this (``DrainingServer.startup``): a test process creating many apps must not
freeze each one's objects. Measured in bench/README.md ("Issue 16, third pass", item 1).
"""

from __future__ import annotations

import gc

# Generation-0 threshold: allocations minus deallocations of container objects between young
# collections (CPython's default 700).
GEN0_THRESHOLD = 7_000


def freeze_startup_objects() -> int:
    """Collect once, freeze what is left and raise the generation-0 threshold; returns the number
    of objects frozen. Call once, after the app's start-up (lifespan) has finished."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
    return gc.get_freeze_count()

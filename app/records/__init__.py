"""What usage is recorded as, shared by the store and the usage domain (pure: stdlib only).

``events.py``: the ``UsageEvent`` (one per finished request). ``buckets.py``: the time buckets it
is aggregated into (periods, bucket keys, counters). The store persists these shapes and the usage
modules compute with them, so they sit below both (see the import contracts in pyproject.toml).
"""

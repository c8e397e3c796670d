"""Pulumi entry point (``Pulumi.yaml``: ``main: infra/``): read and validate config, build, export.

Pulumi runs this file with ``infra/`` itself at the front of ``sys.path``; the program imports its
modules as the ``infra`` package from the repository root instead, so no module here can shadow a
top-level package of the same name.
"""

from __future__ import annotations

import sys
from pathlib import Path

_INFRA_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _INFRA_DIR]
if str(_INFRA_DIR.parent) not in sys.path:
    sys.path.insert(0, str(_INFRA_DIR.parent))

import pulumi

from infra.stack import build_stack
from infra.stack_config import load_config, load_secrets

for _name, _value in build_stack(load_config(), load_secrets()).items():
    pulumi.export(_name, _value)

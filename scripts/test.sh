#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, then runs pytest.
#   Python deps: .venv from requirements.lock (app + dev + infra extras)
#   Browser:     Debian's chromium (apt), for the dashboard's Playwright tests
#   Node:        the pinned Claude Code CLI, htmx and oidc-provider (npm ci), for the end-to-end and SSO tests
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k bedrock -x`.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c requirements.lock -e ".[dev,infra]"

if [ ! -x /usr/bin/chromium ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium
fi

for dir in tests/e2e tests/ui tests/sso; do
  if [ -f "$dir/package-lock.json" ] && [ ! -d "$dir/node_modules" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done

# Lint first (unused and undefined names, syntax errors): seconds, and it fails the run.
.venv/bin/ruff check --quiet app tests bench infra scripts
# Import contracts (pyproject.toml [tool.importlinter]): layers point one way, pure modules do no I/O.
.venv/bin/lint-imports --no-cache
# Types (pyproject.toml [tool.mypy], with the pydantic plugin): app/ only.
.venv/bin/mypy app

exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"

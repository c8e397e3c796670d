#!/usr/bin/env bash
# Run the Claude Code end-to-end tests (tests/e2e) against any published Claude Code version.
#   bash scripts/claude_code_conformance.sh 2.1.330
#   bash scripts/claude_code_conformance.sh latest        (any npm version or tag)
# Installs @anthropic-ai/claude-code@VERSION into a temporary prefix (its postinstall fetches the
# native binary), points the harness at it (CLAUDE_CODE_BIN, read by tests/e2e/claude_cli.py), runs
# pytest on tests/e2e and prints one line: "claude-code <version>: PASS|FAIL (<pytest summary>)".
# Exit status: pytest's. Extra arguments go to pytest (e.g. -k fallback). Needs node/npm and .venv
# (scripts/test.sh makes it). The pinned version CI runs stays in tests/e2e/package.json.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ]; then
  echo "usage: $0 VERSION [pytest args...]" >&2
  exit 2
fi
version=$1
shift

prefix=$(mktemp -d "${TMPDIR:-/tmp}/claude-code-conformance.XXXXXX")
trap 'rm -rf "$prefix"' EXIT

npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "@anthropic-ai/claude-code@$version" >&2
package="$prefix/node_modules/@anthropic-ai/claude-code"
binary="$prefix/node_modules/.bin/claude"
# The package ships a small placeholder that its postinstall replaces with the native binary; run
# the postinstall by hand if npm skipped scripts (e.g. ignore-scripts in the user's npmrc).
if [ "$(stat -L -c %s "$binary")" -lt 65536 ] && [ -f "$package/install.cjs" ]; then
  (cd "$prefix" && node "$package/install.cjs") >&2
fi
installed=$(node -p "require('$package/package.json').version")
"$binary" --version >&2

log="$prefix/pytest.log"
status=0
CLAUDE_CODE_BIN="$binary" .venv/bin/python -m pytest -q -p no:cacheprovider tests/e2e "$@" | tee "$log" >&2 \
  || status=${PIPESTATUS[0]}
summary=$(grep -E '(passed|failed|error)' "$log" | tail -1 | sed -E 's/=+//g; s/^ +| +$//g')
if [ "$status" -eq 0 ]; then result=PASS; else result=FAIL; fi
echo "claude-code $installed: $result ($summary)"
exit "$status"

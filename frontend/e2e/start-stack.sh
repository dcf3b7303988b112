#!/usr/bin/env bash
# Starts the real prefaudit stack for the Playwright tests: a throwaway SQLite database and data
# directory, the filesystem broker, one admin user (e2e / e2e-password), and `serve --with-worker`
# serving the built frontend on 127.0.0.1:${E2E_PORT:-8765}. Run from frontend/.
set -euo pipefail
cd "$(dirname "$0")/.."

PREFAUDIT_BIN="${PREFAUDIT_BIN:-../.venv/bin/prefaudit}"
PORT="${E2E_PORT:-8765}"
if [[ ! -x "$PREFAUDIT_BIN" ]]; then
  echo "start-stack: $PREFAUDIT_BIN is missing; create the virtualenv first (make run / pip install -e ..) or set PREFAUDIT_BIN" >&2
  exit 1
fi

# The backend serves dist/: rebuild it when any source is newer than the last build.
if [[ ! -f dist/index.html ]] || [[ -n "$(find src index.html openapi.json -newer dist/index.html -print -quit)" ]]; then
  echo "start-stack: building the frontend" >&2
  npx vite build --logLevel warn >&2
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/prefaudit-e2e.XXXXXX")"
export PREFAUDIT_DATA_DIR="$tmp"
export DATABASE_URL="sqlite:///$tmp/prefaudit.db"
export BROKER_URL="filesystem://"
export PREFAUDIT_FRONTEND_DIR="$PWD/dist"
export HF_HUB_OFFLINE=1
echo "start-stack: data in $tmp, serving on port $PORT" >&2

"$PREFAUDIT_BIN" migrate
"$PREFAUDIT_BIN" create-user e2e --password e2e-password --admin

# Not `exec`: this shell stays to remove the throwaway data when Playwright stops the stack
# (playwright.config.ts sends SIGTERM to the whole process group).
"$PREFAUDIT_BIN" serve --port "$PORT" --with-worker &
server=$!
cleanup() {
  kill -TERM "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 143' INT TERM
wait "$server"

#!/usr/bin/env bash
# Install the system programs the tests drive when they are missing: Redis and PostgreSQL
# (the tests start private servers when none is running), Chromium for the browser tests,
# and docker-compose to validate the compose file. Needs root or sudo for apt; without it the
# missing pieces are reported, and the tests that need them skip (or fail under CI=true).
set -uo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v docker-compose >/dev/null 2>&1 || missing+=(compose)

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing test tools: ${missing[*]}"
  scripts/install-system-packages.sh "${missing[@]}" || echo "could not install ${missing[*]}; tests needing them will not run" >&2
fi
exit 0

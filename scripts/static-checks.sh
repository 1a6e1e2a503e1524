#!/usr/bin/env bash
# The checks `npm test` runs before the tests: the typecheck and the build on one core, and lint on
# the other. Lint is the slowest of the three (its promise rules build the whole TypeScript program,
# eslint.config.js), and none of them depends on another, so running it beside the other two takes
# about its own time instead of the sum. Lint's output is held back and printed after the other two,
# so the two never interleave; the exit status is non-zero when any of them failed.
set -uo pipefail
lint_log=$(mktemp)
trap 'rm -f "$lint_log"' EXIT

npm run --silent lint >"$lint_log" 2>&1 &
lint_pid=$!

status=0
npm run --silent typecheck && npm run --silent build || status=1
wait "$lint_pid" || { status=1; echo "lint failed:"; }
cat "$lint_log"
exit "$status"

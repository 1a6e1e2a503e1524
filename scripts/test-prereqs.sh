#!/usr/bin/env bash
# The programs the test suite runs for real, checked before anything else by `npm test`:
#   pass, gpg (Debian package gnupg)  the exec sink with `pass` as its store
#   age, age-keygen (package age)     the file sink's encryption
#   git (package git)                 the daemon's git source, the CI kit's install step
#   curl (package curl)               the CI kit's webhook step
#   prometheus, promtool (prometheus) the alert rules' checks and unit tests, a real scrape of the daemon
#   jq (package jq)                   the GitHub Action's comment step (scripts/action/comment.sh)
# All present: exit 0, silently. Missing, as root on a machine with apt-get: `apt-get update`, then
# install the missing packages, then check again. Otherwise: stop at once (exit 1), naming the
# programs and the packages to install; the suite would fail later and less clearly without them.
#
# CF_OAUTH_GITOPS_PREREQS_UID stands in for the user id; it exists only so that
# test/ship/test-prereqs.test.ts can take the not-root path while running as root.
set -euo pipefail

# program:package
TOOLS=(pass:pass gpg:gnupg age:age age-keygen:age git:git curl:curl jq:jq promtool:prometheus prometheus:prometheus)

missing_programs=()
missing_packages=()
find_missing() {
  missing_programs=()
  missing_packages=()
  local entry seen=" "
  for entry in "${TOOLS[@]}"; do
    command -v "${entry%%:*}" >/dev/null 2>&1 && continue
    missing_programs+=("${entry%%:*}")
    if [[ $seen != *" ${entry##*:} "* ]]; then
      missing_packages+=("${entry##*:}")
      seen+="${entry##*:} "
    fi
  done
}

find_missing
((${#missing_programs[@]} == 0)) && exit 0

uid=${CF_OAUTH_GITOPS_PREREQS_UID:-$EUID}
if [[ $uid != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  why="not running as root"
  [[ $uid == 0 ]] && why="apt-get not found"
  printf 'test-prereqs: the tests need %s, not found on PATH (%s).\n' "${missing_programs[*]}" "$why" >&2
  printf 'test-prereqs: install the Debian packages: apt-get install %s\n' "${missing_packages[*]}" >&2
  exit 1
fi

printf 'test-prereqs: installing %s (for %s)\n' "${missing_packages[*]}" "${missing_programs[*]}" >&2
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  "${missing_packages[@]}"; } >&2; then
  printf 'test-prereqs: apt-get install %s failed\n' "${missing_packages[*]}" >&2
  exit 1
fi
find_missing
if ((${#missing_programs[@]} > 0)); then
  printf 'test-prereqs: still not found after installing: %s\n' "${missing_programs[*]}" >&2
  exit 1
fi

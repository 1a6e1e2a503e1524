#!/usr/bin/env bash
# cf-oauth-gitops GitHub Action (action.yml), step 1: install the tool from the action's own checkout.
#
# The runner checks out the action at the ref a workflow names (`uses: <owner>/cf-oauth-gitops@<sha>`)
# into GITHUB_ACTION_PATH, so the code that runs is exactly that commit: its locked dependencies
# (`npm ci`; the `prepare` script builds dist/), then a global install of that directory, as
# examples/gitlab-ci/.gitlab-ci.yml does from a clone. Never installed by package name.
# INPUT_VERSION, when set, is the version that commit must report (a guard against a moved ref).
set -euo pipefail
src="${GITHUB_ACTION_PATH:?GITHUB_ACTION_PATH is not set: run this as a step of action.yml}"
(cd "$src" && npm ci --no-audit --no-fund)
npm install --global --ignore-scripts --no-audit --no-fund "$src"
installed="$(cf-oauth-gitops --version)"
echo "$installed"
want="${INPUT_VERSION:-}"
if [ -n "$want" ] && [ "$installed" != "cf-oauth-gitops ${want#v}" ]; then
  echo "::error title=cf-oauth-gitops version::The action's commit is $installed, but the workflow asks for version ${want#v}."
  exit 1
fi

#!/usr/bin/env bash
# cf-oauth-gitops GitHub Action (action.yml), last step: the job's status from the plan's exit code.
# 0 (no changes) and 2 (changes pending) pass: a pull request with changes is what a plan is for,
# and has-changes=true says so. 3 (a safety valve refused the plan) and any error fail the job.
set -euo pipefail
code="${PLAN_EXIT:-}"
case "$code" in
  0) echo "cf-oauth-gitops: no changes" ;;
  2) echo "cf-oauth-gitops: changes pending (has-changes=true)" ;;
  3) echo "::error title=cf-oauth-gitops plan refused::A safety valve refused the plan (exit 3); see the plan."; exit 3 ;;
  '') echo "::error title=cf-oauth-gitops::The plan did not run."; exit 1 ;;
  *) echo "::error title=cf-oauth-gitops failed::${PLAN_STAGE:-plan} exited $code; see the log above."; exit "$code" ;;
esac

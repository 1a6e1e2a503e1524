#!/usr/bin/env bash
# cf-oauth-gitops GitHub Action (action.yml), step 2: validate, then plan with --detailed-exitcode.
#
# Never fails by itself: the exit code goes to the outputs (exit-code, has-changes, stage) so the
# comment step runs either way, and the action's last step turns it into the job's status
# (scripts/action/finish.sh). The plan is written to plan-file and added to the job summary.
# CLOUDFLARE_API_TOKEN reaches the program through this step's environment only (action.yml).
set -uo pipefail
config="${INPUT_CONFIG:-cf-oauth-gitops.yaml}"
format="${INPUT_FORMAT:-markdown}"
out_dir="${RUNNER_TEMP:?}/cf-oauth-gitops"
mkdir -p "$out_dir"
case "$format" in
  markdown) plan="$out_dir/plan.md" ;;
  text) plan="$out_dir/plan.txt" ;;
  json) plan="$out_dir/plan.json" ;;
  *)
    echo "::error title=cf-oauth-gitops::format must be text, markdown or json, not '$format'."
    { echo "exit-code=1"; echo "has-changes=false"; echo "stage=input"; } >> "$GITHUB_OUTPUT"
    exit 0
    ;;
esac
echo "plan-file=$plan" >> "$GITHUB_OUTPUT"
if [ -n "${INPUT_BASE_URL:-}" ]; then export CLOUDFLARE_BASE_URL="$INPUT_BASE_URL"; fi
# With `ownership: {git: {}}`, plan fetches the daemon's ownership record from this repository's
# origin (README, "Plans in CI"); the token reaches git through the environment, never argv.
if [ -n "${GIT_READ_TOKEN:-}" ] && [ -n "${GITHUB_SERVER_URL:-}" ]; then
  export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0="http.${GITHUB_SERVER_URL}/.extraheader"
  GIT_CONFIG_VALUE_0="AUTHORIZATION: basic $(printf 'x-access-token:%s' "$GIT_READ_TOKEN" | base64 -w0)"
  export GIT_CONFIG_VALUE_0
fi
unset GIT_READ_TOKEN

cf-oauth-gitops validate -c "$config"
code=$?
stage=validate
if [ "$code" = 0 ]; then
  stage=plan
  cf-oauth-gitops plan -c "$config" --format "$format" --detailed-exitcode > "$plan"
  code=$?
fi
has=false
if [ "$code" = 2 ]; then has=true; fi
{ echo "exit-code=$code"; echo "has-changes=$has"; echo "stage=$stage"; } >> "$GITHUB_OUTPUT"
if [ "$stage" = plan ] && [ -s "$plan" ] && [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  if [ "$format" = markdown ]; then cat "$plan"; else printf '```\n%s\n```\n' "$(cat "$plan")"; fi >> "$GITHUB_STEP_SUMMARY"
fi
echo "cf-oauth-gitops $stage exited $code"
exit 0

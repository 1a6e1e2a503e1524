#!/usr/bin/env bash
# cf-oauth-gitops GitHub Action (action.yml): post or update ONE pull-request comment with the plan.
#
# The comment is found by its hidden marker AND its author (COMMENT_AUTHOR, GITHUB_TOKEN's login by
# default), so a look-alike written by someone else is never edited; found, it is PATCHed, else one
# is POSTed. A failed validate or plan never replaces the last good plan: the comment keeps it and
# says, above it, that the newest commit failed. GitHub REST API with curl at GITHUB_API_URL:
#   GET   /repos/{owner}/{repo}/issues/{pr}/comments   (every page, by its Link header)
#   POST  /repos/{owner}/{repo}/issues/{pr}/comments
#   PATCH /repos/{owner}/{repo}/issues/comments/{id}
# GITHUB_TOKEN reaches curl on its standard input (`--config -`, printf being a shell builtin), so it
# is in no process's argv, and is never printed.
set -euo pipefail
MARKER="<!-- cf-oauth-gitops-plan -->"
GOOD="<!-- cf-oauth-gitops-plan:last-good -->"
api_url="${GITHUB_API_URL:-https://api.github.com}"
repo="${GITHUB_REPOSITORY:?}"
author="${COMMENT_AUTHOR:-github-actions[bot]}"
exit_code="${PLAN_EXIT:-}"
stage="${PLAN_STAGE:-}"
plan="${PLAN_FILE:-}"
format="${PLAN_FORMAT:-markdown}"

pr="$(jq -r '.pull_request.number // empty' "${GITHUB_EVENT_PATH:?}")"
if [ -z "$pr" ]; then
  echo "::notice title=cf-oauth-gitops::Not a pull request event: no comment (the plan is in the job summary)."
  exit 0
fi
if [ -z "${GITHUB_TOKEN:-}" ]; then
  echo "::warning title=cf-oauth-gitops::No github-token: no pull-request comment."
  exit 0
fi
case "$GITHUB_TOKEN" in
  *[!A-Za-z0-9_.-]*) echo "::error title=cf-oauth-gitops::github-token has characters a token never has."; exit 1 ;;
esac
head_sha="$(jq -r '.pull_request.head.sha // empty' "$GITHUB_EVENT_PATH")"
head_sha="${head_sha:-${GITHUB_SHA:-unknown}}"
sha="${head_sha:0:12}"
log="${GITHUB_SERVER_URL:-https://github.com}/$repo/actions/runs/${GITHUB_RUN_ID:-0}"

tmp="$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/cfog-comment.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# api METHOD URL [PAYLOAD-FILE]: the response body in $tmp/body, its headers in $tmp/headers.
api() {
  local method="$1" url="$2" data="${3:-}" status
  local args=(--silent --show-error --connect-timeout 10 --max-time 30 -X "$method"
    -H "Accept: application/vnd.github+json" -H "X-GitHub-Api-Version: 2022-11-28"
    -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}')
  if [ -n "$data" ]; then args+=(-H "Content-Type: application/json" --data-binary "@$data"); fi
  status="$(printf 'header = "Authorization: Bearer %s"\n' "$GITHUB_TOKEN" | curl --config - "${args[@]}" "$url")" || {
    echo "::error title=cf-oauth-gitops comment::GitHub API $method ${url%%\?*}: no answer."
    return 1
  }
  case "$status" in
    2??) return 0 ;;
    *)
      echo "::error title=cf-oauth-gitops comment::GitHub API $method ${url%%\?*}: HTTP $status $(jq -r '.message? // empty' "$tmp/body" 2>/dev/null || true)"
      return 1
      ;;
  esac
}

# The comment to update: the first one by $author whose body starts with the marker, on any page.
id=""
next="$api_url/repos/$repo/issues/$pr/comments?per_page=100"
while [ -n "$next" ] && [ -z "$id" ]; do
  api GET "$next"
  id="$(jq -r --arg a "$author" --arg m "$MARKER" \
    'first(.[] | select(.user.login == $a and ((.body // "") | startswith($m)))) | .id' "$tmp/body")"
  if [ -n "$id" ]; then
    jq -j --arg id "$id" '.[] | select((.id | tostring) == $id) | .body' "$tmp/body" > "$tmp/old"
  fi
  next="$(tr -d '\r' < "$tmp/headers" | sed -n 's/^[Ll]ink:.*<\([^>]*\)>; *rel="next".*/\1/p')"
done

{
  printf '%s\n' "$MARKER"
  if [[ "$exit_code" =~ ^[023]$ ]] && [ "$stage" = plan ] && [ -n "$plan" ] && [ -s "$plan" ]; then
    printf '%s\nPlan for `%s` (exit %s):\n\n' "$GOOD" "$sha" "$exit_code"
    # 65,536 characters is GitHub's limit for a comment; the whole plan is in the job summary.
    # (A cut in the middle of a character becomes U+FFFD in jq's JSON.) Markdown as written; text
    # and json in a code block.
    if [ "$format" = markdown ]; then
      head -c 60000 "$plan"
    else
      printf '```\n%s\n```\n' "$(head -c 60000 "$plan")"
    fi
    if [ "$(wc -c < "$plan")" -gt 60000 ]; then
      printf '\n… truncated: the whole plan is in the [job summary](%s).\n' "$log"
    fi
  else
    if [ -n "$exit_code" ]; then what="${stage:-plan} exited $exit_code"; else what="install failed"; fi
    printf '> [!WARNING]\n> **The plan for `%s` failed** (%s; see the [job log](%s)).\n\n' "$sha" "$what" "$log"
    if [ -n "$id" ] && grep -qF -- "$GOOD" "$tmp/old"; then
      printf "The plan below is the last one that succeeded, for an earlier commit; it does not show this commit's changes.\n\n"
      old="$(cat "$tmp/old"; printf x)" # the x keeps the body's trailing newlines
      old="${old%x}"
      printf '%s' "$GOOD${old#*"$GOOD"}"
    else
      printf 'No plan has succeeded for this pull request yet.\n'
    fi
    echo "::warning title=cf-oauth-gitops::The plan for $sha failed ($what); the comment says so." >&2
  fi
} > "$tmp/text"
jq -Rs '{body: .}' "$tmp/text" > "$tmp/payload"

if [ -n "$id" ]; then
  api PATCH "$api_url/repos/$repo/issues/comments/$id" "$tmp/payload"
  echo "pull-request comment $id updated"
else
  api POST "$api_url/repos/$repo/issues/$pr/comments" "$tmp/payload"
  echo "pull-request comment $(jq -r .id "$tmp/body") posted"
fi

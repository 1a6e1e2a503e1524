#!/usr/bin/env bash
# Container smoke test for cf-oauth-gitops: builds the image from the Dockerfile and runs it, with no
# Docker engine and no image registry. The local check of the container image (docs/CONTAINER.md);
# NOT run by .ci/run (it needs root, apt and about a gigabyte of disk).
#
#   sudo scripts/container-smoke.sh
#
# 1. A base image standing in for node:24-bookworm-slim: a debootstrap'ed bookworm (minbase +
#    ca-certificates) plus this machine's node and npm (whatever their version), committed as
#    localhost/cfog-base:bookworm.
#    The rootfs tarball and the base image are cached under $CFOG_SMOKE_DIR (default
#    /var/tmp/cfog-smoke), in a container store of their own, so a second run reuses them.
# 2. `buildah bud --build-arg BASE=localhost/cfog-base:bookworm` of the repository's Dockerfile
#    (chroot isolation, host network: `npm ci` reaches the npm registry, `apt-get` deb.debian.org).
# 3. podman runs the image with a read-only root filesystem and host networking against an emulator
#    started on the host: --version, uid, `run --once` (4 clients created, secrets written as uid
#    10001), a second reconcile that plans no change, and the daemon with its HEALTHCHECK and SIGTERM.
#
# Prints one PASS/FAIL line per check and exits 1 if any check failed.
#
# Environment: CFOG_SMOKE_DIR (cache), STORAGE_DRIVER (overlay; vfs where overlay is unavailable),
# CFOG_SMOKE_KEEP=1 keeps the work directory (/tmp/cfog-smoke.*). The daemon check needs port 9090
# free on the host (the image's CMD and HEALTHCHECK use it, and the container shares the host
# network); it is skipped, and says so, when the port is taken.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${CFOG_SMOKE_DIR:-/var/tmp/cfog-smoke}
DRIVER=${STORAGE_DRIVER:-overlay}
HEALTH_PORT=9090
BASE_IMAGE=localhost/cfog-base:bookworm
IMAGE=localhost/cf-oauth-gitops:smoke
MIRROR=http://deb.debian.org/debian
TOKEN=smoke-token
# config/examples: 4 present clients (one more is `ensure: absent`), of which acme-cli is public
# (token_endpoint_auth_method: none) and has no secret.
EXPECTED_CLIENTS=4
EXPECTED_SECRETS=3

STARTED=$SECONDS
FAILED=0
EMULATOR_PID=""
DAEMON=cfog-smoke-daemon
WORK=""

log() { printf '==> %s\n' "$*"; }
pass() { printf 'PASS: %s\n' "$*"; }
fail() {
  printf 'FAIL: %s\n' "$*"
  FAILED=1
}
die() {
  printf 'FAIL: %s\n' "$*"
  exit 1
}

cleanup() {
  if [[ -v PODMAN ]]; then "${PODMAN[@]}" rm -f "$DAEMON" >/dev/null 2>&1 || true; fi
  if [[ -n $EMULATOR_PID ]]; then kill "$EMULATOR_PID" 2>/dev/null || true; fi
  if [[ -n $WORK && ${CFOG_SMOKE_KEEP:-0} != 1 ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

[[ $(id -u) == 0 ]] || die "run as root (buildah and debootstrap need it)"

# --- tools -----------------------------------------------------------------------------------------
need=()
for tool in buildah podman runc debootstrap; do command -v "$tool" >/dev/null || need+=("$tool"); done
if ((${#need[@]})); then
  log "installing ${need[*]}"
  mkdir -p "$CACHE"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${need[@]}"; } >"$CACHE/apt.log" 2>&1 || die "apt-get install ${need[*]} failed (see $CACHE/apt.log)"
fi
NODE=$(command -v node) || die "node is not on PATH"
NODE=$(readlink -f "$NODE")
NPM_DIR=$(readlink -f "$(dirname "$(readlink -f "$(command -v npm)")")/..")
[[ -f $NPM_DIR/bin/npm-cli.js ]] || die "npm installation not found (looked in $NPM_DIR)"

mkdir -p "$CACHE"
STORE=(--root "$CACHE/storage" --runroot "$CACHE/run" --storage-driver "$DRIVER")
BUILDAH=(buildah "${STORE[@]}")
# runc, not crun: crun 1.8 refuses a hybrid cgroup v1/v2 host ("cgroups in hybrid mode not supported").
PODMAN=(podman "${STORE[@]}" --runtime runc --cgroup-manager cgroupfs --events-backend file)

# --- 1. base image ---------------------------------------------------------------------------------
ROOTFS_TAR=$CACHE/bookworm-minbase.tar
if [[ ! -s $ROOTFS_TAR ]]; then
  log "debootstrap bookworm (minbase + ca-certificates) -> $ROOTFS_TAR"
  tmp=$(mktemp -d "$CACHE/rootfs.XXXXXX")
  debootstrap --variant=minbase --include=ca-certificates bookworm "$tmp" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
    die "debootstrap failed (see $CACHE/debootstrap.log)"
  # The same sources as the official bookworm images; the package caches go (the Dockerfile updates).
  cat >"$tmp/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
  rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/* "$tmp"/var/log/*.log
  tar -C "$tmp" --numeric-owner -cf "$ROOTFS_TAR.part" .
  mv "$ROOTFS_TAR.part" "$ROOTFS_TAR"
  rm -rf "$tmp"
fi

# The node binary must run on bookworm's glibc (2.36): refuse a binary that needs a newer one.
glibc_max=$(objdump -T "$NODE" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1 || true)
if [[ -n $glibc_max ]] && [[ $(printf '%s\n' "$glibc_max" GLIBC_2.36 | sort -V | tail -1) != GLIBC_2.36 ]]; then
  die "$NODE needs $glibc_max, newer than bookworm's glibc 2.36"
fi
NODE_VERSION=$("$NODE" --version)
NPM_VERSION=$("$NODE" "$NPM_DIR/bin/npm-cli.js" --version)
# CAs this machine added locally (a TLS-intercepting egress proxy's, say) go into the base, and node
# is told to use the system bundle, so `npm ci` in the build stage reaches the registry as it does here.
shopt -s nullglob
HOST_CAS=(/usr/local/share/ca-certificates/*.crt)
shopt -u nullglob
CA_ENV=()
((${#HOST_CAS[@]})) && CA_ENV=(--env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt)
CA_SUM=$(cat /dev/null "${HOST_CAS[@]}" | sha256sum | cut -c1-8)
BASE_KEY="$(sha256sum "$NODE" | cut -c1-16)-npm$NPM_VERSION-ca$CA_SUM-$(stat -c %Y "$ROOTFS_TAR")"
have_key=$("${BUILDAH[@]}" inspect --type image --format '{{index .OCIv1.Config.Labels "io.cfog.base-key"}}' \
  "$BASE_IMAGE" 2>/dev/null || true)
if [[ $have_key != "$BASE_KEY" ]]; then
  log "committing $BASE_IMAGE (node $NODE_VERSION, npm $NPM_VERSION from $NODE)"
  ctr=$("${BUILDAH[@]}" from scratch)
  "${BUILDAH[@]}" add "$ctr" "$ROOTFS_TAR" / >/dev/null
  "${BUILDAH[@]}" copy "$ctr" "$NODE" /usr/local/bin/node >/dev/null
  "${BUILDAH[@]}" copy "$ctr" "$NPM_DIR" /usr/local/lib/node_modules/npm >/dev/null
  for crt in "${HOST_CAS[@]}"; do "${BUILDAH[@]}" copy "$ctr" "$crt" /usr/local/share/ca-certificates/ >/dev/null; done
  # npm's builtin npmrc is this machine's packaging (nodedir=/usr, ...); the official image has none.
  "${BUILDAH[@]}" run --isolation chroot "$ctr" -- sh -ec '
    rm -f /usr/local/lib/node_modules/npm/npmrc
    ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm
    ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx
    update-ca-certificates >/dev/null 2>&1
    node --version >/dev/null && npm --version >/dev/null'
  "${BUILDAH[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env NODE_VERSION="${NODE_VERSION#v}" "${CA_ENV[@]}" --cmd node --label io.cfog.base-key="$BASE_KEY" "$ctr"
  "${BUILDAH[@]}" commit --quiet --rm --format docker "$ctr" "$BASE_IMAGE" >/dev/null
else
  log "reusing $BASE_IMAGE (node $NODE_VERSION, npm $NPM_VERSION)"
fi
pass "base image $BASE_IMAGE: debootstrap bookworm minbase + node $NODE_VERSION + npm $NPM_VERSION + ${#HOST_CAS[@]} local CA(s)"

# --- 2. the image ----------------------------------------------------------------------------------
# --format docker: the OCI image format has no HEALTHCHECK, buildah would drop it with a warning.
# --layers: the npm ci and apt-get layers are reused on the next run when their inputs are unchanged.
log "buildah bud $IMAGE"
build_log=$CACHE/build.log
if "${BUILDAH[@]}" bud --isolation chroot --network host --pull=never --layers --force-rm --format docker \
  --build-arg BASE="$BASE_IMAGE" -t "$IMAGE" -f "$ROOT/Dockerfile" "$ROOT" >"$build_log" 2>&1; then
  grep -E 'STEP [0-9]|^COMMIT|^Successfully tagged|Using cache|^added [0-9]+ packages|^Setting up git ' \
    "$build_log" | sed 's/^/    /'
  pass "buildah bud -t $IMAGE ($(du -sh --apparent-size "$CACHE/storage" | cut -f1) store)"
else
  tail -40 "$build_log" | sed 's/^/    /'
  die "buildah bud failed (full log: $build_log)"
fi

cfg=$("${BUILDAH[@]}" inspect --type image --format \
  '{{.Docker.Config.User}}|{{.Docker.Config.Entrypoint}}|{{.Docker.Config.Healthcheck.Test}}' "$IMAGE")
IFS='|' read -r img_user img_entry img_health <<<"$cfg"
[[ $img_user == 10001:10001 ]] && pass "image config: USER $img_user" || fail "image config: USER is '$img_user'"
[[ $img_entry == '[/usr/bin/tini -- node /app/dist/cli/main.js]' ]] && pass "image config: ENTRYPOINT $img_entry" ||
  fail "image config: ENTRYPOINT is $img_entry"
[[ $img_health == *healthz* ]] && pass "image config: HEALTHCHECK $img_health" ||
  fail "image config: no HEALTHCHECK ($img_health)"

# --- 3. run it -------------------------------------------------------------------------------------
log "building the host copy for the emulator (npm run build)"
# A fresh clone has no node_modules: install the locked dependencies first, as the README's commands do.
[ -x "$ROOT/node_modules/.bin/tsc" ] || (cd "$ROOT" && npm ci --no-audit --no-fund) || die "npm ci failed on the host"
(cd "$ROOT" && npm run build --silent) || die "npm run build failed on the host"

WORK=$(mktemp -d /tmp/cfog-smoke.XXXXXX)
chmod 755 "$WORK"
# config/examples as the user would mount it (read-only); its file sink writes to ./secrets, which
# gets a writable mount of its own. The state directory is the image's volume.
cp -r "$ROOT/config/examples" "$WORK/config"
rm -rf "$WORK/config/secrets" "$WORK/config/.cf-oauth-gitops"
mkdir -p "$WORK/config/secrets" "$WORK/secrets" "$WORK/state"
chown 10001:10001 "$WORK/secrets" "$WORK/state"

"$NODE" "$ROOT/dist/cli/main.js" emulator --port 0 --token "$TOKEN" --seed 1 >"$WORK/emulator.out" 2>&1 &
EMULATOR_PID=$!
for _ in $(seq 100); do
  grep -qs '^listening on ' "$WORK/emulator.out" && break
  kill -0 "$EMULATOR_PID" 2>/dev/null || break
  sleep 0.1
done
BASE_URL=$(sed -n 's/^listening on //p' "$WORK/emulator.out" | head -1)
[[ -n $BASE_URL ]] || die "emulator did not start: $(cat "$WORK/emulator.out")"
ORIGIN=${BASE_URL%%/client/v4*}
log "emulator on the host: $BASE_URL"

# As root, podman asks for 1048576 open files and processes, above this machine's hard limits (the
# runtime then fails with EPERM): ask for what the host allows. There is no systemd here to time
# healthchecks, so one-shot runs have none and the daemon's is run by hand (`podman healthcheck run`).
nproc=$(ulimit -Hu)
[[ $nproc == unlimited || $nproc -gt 32768 ]] && nproc=32768
LIMITS=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit "nproc=$nproc:$nproc")
RUN=("${PODMAN[@]}" run --rm --read-only --read-only-tmpfs=false --network host "${LIMITS[@]}" --no-healthcheck
  -e CLOUDFLARE_BASE_URL="$BASE_URL" -e CLOUDFLARE_API_TOKEN="$TOKEN"
  -v "$WORK/config:/config:ro" -v "$WORK/secrets:/config/secrets:rw"
  -v "$WORK/state:/var/lib/cf-oauth-gitops:rw")
ARGS=(-c /config/cf-oauth-gitops.yaml --state-dir /var/lib/cf-oauth-gitops)

version=$("${RUN[@]}" "$IMAGE" --version 2>"$WORK/err") || cat "$WORK/err"
want="cf-oauth-gitops $("$NODE" -p "require('$ROOT/package.json').version")"
[[ $version == "$want" ]] && pass "--version: $version" || fail "--version printed '$version', want '$want'"

ids=$("${RUN[@]}" --entrypoint node "$IMAGE" -e 'console.log(`${process.getuid()}:${process.getgid()}`)' 2>"$WORK/err") ||
  cat "$WORK/err"
[[ $ids == 10001:10001 ]] && pass "runs as uid:gid $ids" || fail "runs as '$ids', want 10001:10001"

# The probe must run and be refused by the filesystem: a container that fails to start proves nothing.
probe=$("${RUN[@]}" --entrypoint sh "$IMAGE" -c 'touch /app/probe /tmp/probe 2>&1; echo "exit $?"' 2>&1) || true
if [[ $probe == *"Read-only file system"* && $probe == *"exit 1"* ]]; then
  pass "root filesystem is read-only: $(head -1 <<<"$probe")"
else
  fail "root filesystem is not read-only under --read-only: $probe"
fi

if "$NODE" "$ROOT/dist/cli/main.js" run --help >/dev/null 2>&1; then VERB=(run --once); else VERB=(apply); fi
set +e
"${RUN[@]}" "$IMAGE" "${VERB[@]}" "${ARGS[@]}" >"$WORK/once.out" 2>&1
code=$?
set -e
if [[ $code == 0 ]]; then
  # The daemon's last log line: {"msg":"run finished","result":"ok","applied":4,"failed":0,...}
  finished=$("$NODE" -e '
    const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n");
    const end = lines.filter((l) => l.includes("\"run finished\"")).map((l) => JSON.parse(l)).pop();
    console.log(end ? `result ${end.result}, applied ${end.applied}, failed ${end.failed}` : "no run-finished line");
  ' "$WORK/once.out" 2>&1 || true)
  pass "${VERB[*]} exited 0 ($finished)"
else
  sed 's/^/    /' "$WORK/once.out" | tail -30
  fail "${VERB[*]} exited $code"
fi

count=$("$NODE" -e 'fetch(process.argv[1]).then((r) => r.json()).then((j) => console.log(j.result.length))' \
  "$ORIGIN/__emulator/clients" 2>&1) || true
[[ $count == "$EXPECTED_CLIENTS" ]] && pass "emulator has $count clients" ||
  fail "emulator has $count clients, want $EXPECTED_CLIENTS"

secrets=$(find "$WORK/secrets" -type f -uid 10001 -perm 600 | wc -l)
[[ $secrets == "$EXPECTED_SECRETS" ]] && pass "$secrets secret files written by uid 10001, mode 0600" ||
  fail "$secrets secret files owned by 10001 with mode 0600, want $EXPECTED_SECRETS: $(ls -lnR "$WORK/secrets")"
[[ -s $WORK/state/inventory.json ]] && pass "state volume holds inventory.json" ||
  fail "no inventory.json in the state volume: $(ls -la "$WORK/state")"

set +e
"${RUN[@]}" "$IMAGE" plan --detailed-exitcode "${ARGS[@]}" >"$WORK/plan.out" 2>&1
code=$?
set -e
[[ $code == 0 ]] && pass "plan --detailed-exitcode after the run: exit 0 (no changes)" ||
  { sed 's/^/    /' "$WORK/plan.out" | tail -20; fail "plan --detailed-exitcode exited $code"; }

# The daemon with the image's default CMD (`run ... --listen 0.0.0.0:9090`), which the HEALTHCHECK
# probes; then SIGTERM, which tini (PID 1) forwards and node must turn into a clean exit 0.
check_daemon() {
  "${PODMAN[@]}" rm -f "$DAEMON" >/dev/null 2>&1 || true
  "${PODMAN[@]}" run -d --name "$DAEMON" --read-only --read-only-tmpfs=false --network host "${LIMITS[@]}" \
    --health-interval disable -e CLOUDFLARE_BASE_URL="$BASE_URL" -e CLOUDFLARE_API_TOKEN="$TOKEN" \
    -v "$WORK/config:/config:ro" -v "$WORK/secrets:/config/secrets:rw" \
    -v "$WORK/state:/var/lib/cf-oauth-gitops:rw" "$IMAGE" >/dev/null 2>"$WORK/daemon.err" ||
    { fail "podman run -d: $(cat "$WORK/daemon.err")"; return; }
  local healthy="" tries=0
  while ((tries++ < 40)); do
    if "${PODMAN[@]}" healthcheck run "$DAEMON" >/dev/null 2>&1; then healthy=1 && break; fi
    sleep 0.5
  done
  if [[ -n $healthy ]]; then
    pass "daemon (default CMD, --read-only): HEALTHCHECK healthy after $tries probe(s)"
  else
    "${PODMAN[@]}" logs "$DAEMON" 2>&1 | tail -20 | sed 's/^/    /'
    fail "daemon: HEALTHCHECK never passed"
  fi
  # The default ENTRYPOINT puts tini at PID 1 (it reaps what exec sinks' programs leave behind).
  local init
  init=$("${PODMAN[@]}" exec "$DAEMON" cat /proc/1/comm 2>>"$WORK/daemon.err" || true)
  [[ $init == tini ]] && pass "daemon: PID 1 is tini" || fail "daemon: PID 1 is '$init', want tini"
  local t0=$SECONDS stopped
  "${PODMAN[@]}" stop -t 20 "$DAEMON" >/dev/null 2>>"$WORK/daemon.err" || true
  "${PODMAN[@]}" logs "$DAEMON" >"$WORK/daemon.log" 2>&1 || true
  stopped=$("${PODMAN[@]}" inspect --format '{{.State.ExitCode}}' "$DAEMON" 2>/dev/null || echo "?")
  if [[ $stopped == 0 ]]; then
    pass "daemon: SIGTERM (podman stop) -> exit 0 in $((SECONDS - t0))s"
  else
    tail -20 "$WORK/daemon.log" | sed 's/^/    /'
    fail "daemon: exit $stopped after SIGTERM"
  fi
}
port_free="require('net').createServer().once('error', () => process.exit(1))
  .listen($HEALTH_PORT, '0.0.0.0', function () { this.close(); })"
if "$NODE" -e "$port_free"; then
  check_daemon
else
  log "port $HEALTH_PORT is busy on the host: daemon/HEALTHCHECK check skipped"
fi

# No secret the run wrote may appear in anything the container printed.
leaked=0
for f in $(find "$WORK/secrets" -type f -name '*.json'); do
  secret=$("$NODE" -p "require('$f').client_secret ?? ''")
  if [[ -n $secret ]] && grep -qsF -- "$secret" "$WORK"/*.out "$WORK"/*.log; then leaked=$((leaked + 1)); fi
done
((leaked == 0)) && pass "no client secret appears in the container's output" ||
  fail "$leaked client secret(s) appear in the container's output"

elapsed=$((SECONDS - STARTED))
if ((FAILED)); then
  printf 'FAIL: container smoke test (%ds)\n' "$elapsed"
  exit 1
fi
printf 'PASS: container smoke test (%ds)\n' "$elapsed"

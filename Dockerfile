# syntax=docker/dockerfile:1
# cf-oauth-gitops: the reconciler daemon as a container.
#
#   docker build -t cf-oauth-gitops .
#   docker run --read-only -v state:/var/lib/cf-oauth-gitops -v $PWD/gitops:/config:ro \
#     -e CLOUDFLARE_API_TOKEN -p 9090:9090 cf-oauth-gitops
#
# BASE can be overridden (scripts/container-smoke.sh builds from a locally made base).
ARG BASE=node:24-bookworm-slim

FROM ${BASE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM ${BASE} AS runtime
# git is needed for the git source (`source: {git: ...}`), tini is PID 1 (see ENTRYPOINT); nothing
# else is installed.
RUN apt-get update \
  && apt-get install -y --no-install-recommends git ca-certificates tini \
  && rm -rf /var/lib/apt/lists/* \
  && groupadd --gid 10001 cfog \
  && useradd --uid 10001 --gid 10001 --home-dir /var/lib/cf-oauth-gitops --no-create-home --shell /usr/sbin/nologin cfog \
  && mkdir -p /var/lib/cf-oauth-gitops \
  && chown 10001:10001 /var/lib/cf-oauth-gitops
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY config/scopes.json ./config/scopes.json
COPY config/schema ./config/schema

ENV NODE_ENV=production \
    HOME=/var/lib/cf-oauth-gitops
# The state directory (ownership inventory, rotation journal, git checkout) must survive restarts.
VOLUME ["/var/lib/cf-oauth-gitops"]
USER 10001:10001
EXPOSE 9090
# node itself answers the probe: the image has no curl. Works with a read-only root filesystem.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9090/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# tini is PID 1: it reaps the processes that children leave behind (an exec sink's gpg starts a
# gpg-agent that outlives it; git can leave ssh), which node, as PID 1, would keep as zombies, and it
# forwards SIGTERM/SIGINT to node, which finishes the step in flight and exits 0 (tini exits with it).
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/dist/cli/main.js"]
# The config (and desired state, unless a git source is configured) is mounted at /config.
CMD ["run", "-c", "/config/cf-oauth-gitops.yaml", "--state-dir", "/var/lib/cf-oauth-gitops", "--listen", "0.0.0.0:9090"]

# syntax=docker/dockerfile:1
#
# PersonaHub Stream: one image for every role; the command picks the role.
#   docker run IMAGE processor draft           one stage per container (draft, enrich, validate, index)
#   docker run IMAGE topics init --strict      create missing topics, register schemas; exit 2 on drift
#   docker run IMAGE llm serve                 the local model server (models in PERSONAHUB_MODELS_DIR)
#   docker run IMAGE api                       the HTTP API, once it exists (any CLI command works)
# Configuration is the PERSONAHUB_* environment only (README: Configuration, or `IMAGE config docs`).
#
# Base: Node 24.21.0 LTS (the version the project is developed and tested on) on Debian 12 slim, pinned by
# the digest of its multi-platform index. No Docker engine or registry is reachable where this file was
# written, so the digest is the one that independent public Dockerfiles pin for this exact tag (among them
# Renovate-managed ones, which resolve it from Docker Hub). Check it before a release, and after each base
# update: `docker buildx imagetools inspect node:24.21.0-bookworm-slim`.
ARG NODE_IMAGE=node:24.21.0-bookworm-slim@sha256:0e0ff40c39bc087845bfb27465a0df4ea419520094bc35842ff83dd8cbe6f9b6

# Build: every dependency (typescript compiles), then the same script CI runs to build the artefact it tests.
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY . .
RUN scripts/build-artefact.sh /app

# Runtime: production dependencies and compiled JavaScript only; no TypeScript, no tsx at start-up, no
# compiler. Files belong to root and are read-only for the user the process runs as.
FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    NODE_OPTIONS="--enable-source-maps --disable-warning=TimeoutNegativeWarning" \
    PERSONAHUB_METRICS_PORT=9464
WORKDIR /app
COPY --from=build /app /app
# The base image's `node` user, by number so that Kubernetes' runAsNonRoot can verify it; it owns nothing here
# but its home (/home/node, where the model cache goes by default).
USER 1000:1000
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ["node", "/app/healthcheck.mjs"]
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
CMD ["--help"]

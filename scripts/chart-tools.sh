#!/usr/bin/env bash
# Installs the tools that check the Helm chart, pinned, into $PERSONAHUB_CACHE_DIR/tools (outside the
# repo), idempotently: a tool already there and intact is not fetched again.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/chart-tools.sh install [TOOL...]   install the tools (all when none is named)
       scripts/chart-tools.sh path TOOL           print the installed tool's executable (exit 1 if missing)
       scripts/chart-tools.sh versions            print the pinned versions
       scripts/chart-tools.sh --help

Tools (all run offline once installed):
  helm                 helm v3.22.0, built with `go install helm.sh/helm/v3/cmd/helm@v3.22.0` (modules
                       verified by go against the Go checksum database), linked with helm's release
                       -X flags set to Kubernetes 1.34 (a plain build believes it is 1.20); the chart
                       tests pass --kube-version 1.34.0 anyway. Needs Go >= 1.25. 2-3 min cold.
  promtool             promtool 2.42.0 from Debian bookworm's prometheus_2.42.0+ds-5+deb12u1_amd64.deb
                       (apt-get download, sha-256 checked, dpkg-deb -x; nothing is installed system-wide).
  kubernetes-validate  PyPI kubernetes-validate==1.37.0 in a venv, every wheel pinned by sha-256
                       (scripts/chart-tools-requirements.txt). Needs python3 3.11-3.13 with venv.
  shellcheck           shellcheck 0.9.0 from Debian bookworm's shellcheck_0.9.0-1_amd64.deb (sha-256
                       checked, dpkg-deb -x), for linting scripts/*.sh.

Environment: PERSONAHUB_CACHE_DIR (default ~/.cache/personahub). apt-get download needs the package
lists: when the pinned version is not known to apt, the script runs `apt-get update` once (as root).
EOF
}

HELM_VERSION=v3.22.0
HELM_K8S_MAJOR=1
HELM_K8S_MINOR=34
PROMETHEUS_DEB_VERSION=2.42.0+ds-5+deb12u1
PROMETHEUS_DEB_SHA256=81d59a24fce84f7fbe97a45a4f2914b6a5881b5cd1db2a6a0e129e515e1a5f55
SHELLCHECK_DEB_VERSION=0.9.0-1
SHELLCHECK_DEB_SHA256=8c40f8a4ecccf3d746b933853972f1cd1be6df84fc5977d0137269d4debefa4f
KUBERNETES_VALIDATE_VERSION=1.37.0

here="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
cache="${PERSONAHUB_CACHE_DIR:-$HOME/.cache/personahub}"
tools="$cache/tools"
ALL_TOOLS=(helm promtool kubernetes-validate shellcheck)

die() { echo "chart-tools: $*" >&2; exit 1; }
say() { echo "chart-tools: $*" >&2; }

helm_dir() { echo "$tools/helm-$HELM_VERSION-k8s$HELM_K8S_MAJOR.$HELM_K8S_MINOR"; }
promtool_dir() { echo "$tools/prometheus-deb-$PROMETHEUS_DEB_VERSION"; }
shellcheck_dir() { echo "$tools/shellcheck-deb-$SHELLCHECK_DEB_VERSION"; }
kv_dir() { echo "$tools/kubernetes-validate-$KUBERNETES_VALIDATE_VERSION"; }

tool_path() {
  case "$1" in
    helm) echo "$(helm_dir)/bin/helm" ;;
    promtool) echo "$(promtool_dir)/root/usr/bin/promtool" ;;
    shellcheck) echo "$(shellcheck_dir)/root/usr/bin/shellcheck" ;;
    kubernetes-validate) echo "$(kv_dir)/venv/bin/kubernetes-validate" ;;
    *) die "unknown tool '$1'; tools: ${ALL_TOOLS[*]}" ;;
  esac
}

# A tool counts as installed when its stamp file exists (written last, after every check passed).
installed() { [ -f "$(tool_dir "$1")/.personahub-installed" ]; }
tool_dir() {
  case "$1" in
    helm) helm_dir ;;
    promtool) promtool_dir ;;
    shellcheck) shellcheck_dir ;;
    kubernetes-validate) kv_dir ;;
  esac
}

install_helm() {
  local dir; dir="$(helm_dir)"
  command -v go >/dev/null 2>&1 || die "helm is built from source with Go (>= 1.25), and no 'go' is on PATH"
  say "building helm $HELM_VERSION with go install (2-3 min on 2 cores) into $dir"
  mkdir -p "$dir/bin"
  local pkg=helm.sh/helm/v3
  GOBIN="$dir/bin" GOFLAGS="-buildvcs=false" go install -trimpath -ldflags "-s -w \
    -X $pkg/internal/version.version=$HELM_VERSION \
    -X $pkg/pkg/lint/rules.k8sVersionMajor=$HELM_K8S_MAJOR -X $pkg/pkg/lint/rules.k8sVersionMinor=$HELM_K8S_MINOR \
    -X $pkg/pkg/chartutil.k8sVersionMajor=$HELM_K8S_MAJOR -X $pkg/pkg/chartutil.k8sVersionMinor=$HELM_K8S_MINOR" \
    "$pkg/cmd/helm@$HELM_VERSION" >&2 || die "go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION failed (see above)"
  local got; got="$("$dir/bin/helm" version --template '{{.Version}}')"
  [ "$got" = "$HELM_VERSION" ] || die "built helm reports $got, expected $HELM_VERSION"
  touch "$dir/.personahub-installed"
}

# apt-get download of one pinned .deb, sha-256 checked, unpacked with dpkg-deb -x under DIR/root.
install_deb() {
  local package="$1" version="$2" sha="$3" dir="$4"
  command -v apt-get >/dev/null 2>&1 || die "$package comes from Debian's archive, and apt-get is not here"
  if ! apt-cache show "$package=$version" >/dev/null 2>&1; then
    say "apt does not know $package=$version yet: apt-get update"
    apt-get update -qq >&2 || die "apt-get update failed (run it as root, then re-run)"
    apt-cache show "$package=$version" >/dev/null 2>&1 || die "Debian's archive has no $package=$version (pinned here); update the pin in scripts/chart-tools.sh"
  fi
  local work; work="$(mktemp -d)"
  chmod 755 "$work"  # apt downloads as the _apt user where it can
  (cd "$work" && apt-get download -qq "$package=$version" >&2) || { rm -rf "$work"; die "apt-get download $package=$version failed"; }
  local deb; deb="$(ls "$work"/*.deb)"
  local actual; actual="$(sha256sum "$deb" | cut -d' ' -f1)"
  if [ "$actual" != "$sha" ]; then rm -rf "$work"; die "checksum mismatch for $(basename "$deb"): expected $sha, got $actual"; fi
  rm -rf "$dir" && mkdir -p "$dir"
  dpkg-deb -x "$deb" "$dir/root" || { rm -rf "$work"; die "dpkg-deb -x $(basename "$deb") failed"; }
  rm -rf "$work"
}

install_promtool() {
  say "fetching promtool from prometheus_$PROMETHEUS_DEB_VERSION (Debian)"
  install_deb prometheus "$PROMETHEUS_DEB_VERSION" "$PROMETHEUS_DEB_SHA256" "$(promtool_dir)"
  # Only promtool is kept: the server, its web assets and docs are of no use here.
  find "$(promtool_dir)/root" -mindepth 1 -maxdepth 1 ! -name usr -exec rm -rf {} +
  find "$(promtool_dir)/root/usr/bin" -type f ! -name promtool -delete
  rm -rf "$(promtool_dir)/root/usr/share"
  "$(tool_path promtool)" --version >/dev/null 2>&1 || die "the unpacked promtool does not run"
  touch "$(promtool_dir)/.personahub-installed"
}

install_shellcheck() {
  say "fetching shellcheck from shellcheck_$SHELLCHECK_DEB_VERSION (Debian)"
  install_deb shellcheck "$SHELLCHECK_DEB_VERSION" "$SHELLCHECK_DEB_SHA256" "$(shellcheck_dir)"
  "$(tool_path shellcheck)" --version >/dev/null 2>&1 || die "the unpacked shellcheck does not run (it needs libffi8 and libgmp10)"
  touch "$(shellcheck_dir)/.personahub-installed"
}

install_kubernetes_validate() {
  local dir; dir="$(kv_dir)"
  command -v python3 >/dev/null 2>&1 || die "kubernetes-validate needs python3 (3.11-3.13) with the venv module"
  say "installing kubernetes-validate==$KUBERNETES_VALIDATE_VERSION into a venv under $dir"
  rm -rf "$dir" && mkdir -p "$dir"
  python3 -m venv "$dir/venv" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
  "$dir/venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --only-binary=:all: --require-hashes \
    -r "$here/chart-tools-requirements.txt" >&2 || die "pip install of the pinned wheels failed (see above)"
  "$dir/venv/bin/kubernetes-validate" --version >/dev/null 2>&1 || die "kubernetes-validate does not run"
  touch "$dir/.personahub-installed"
}

install_one() {
  local t="$1"
  tool_path "$t" >/dev/null
  if installed "$t" && [ -x "$(tool_path "$t")" ]; then return 0; fi
  case "$t" in
    helm) install_helm ;;
    promtool) install_promtool ;;
    shellcheck) install_shellcheck ;;
    kubernetes-validate) install_kubernetes_validate ;;
  esac
  say "$t ready: $(tool_path "$t")"
}

cmd="${1:-}"
case "$cmd" in
  -h|--help|help) usage ;;
  install)
    shift
    if [ "$#" -eq 0 ]; then set -- "${ALL_TOOLS[@]}"; fi
    for t in "$@"; do install_one "$t"; done
    ;;
  path)
    [ "$#" -eq 2 ] || die "usage: scripts/chart-tools.sh path TOOL (tools: ${ALL_TOOLS[*]})"
    p="$(tool_path "$2")"
    if installed "$2" && [ -x "$p" ]; then echo "$p"; else die "$2 is not installed: run scripts/chart-tools.sh install $2"; fi
    ;;
  versions)
    echo "helm $HELM_VERSION (Kubernetes $HELM_K8S_MAJOR.$HELM_K8S_MINOR defaults)"
    echo "promtool from prometheus $PROMETHEUS_DEB_VERSION sha256:$PROMETHEUS_DEB_SHA256"
    echo "kubernetes-validate $KUBERNETES_VALIDATE_VERSION"
    echo "shellcheck $SHELLCHECK_DEB_VERSION sha256:$SHELLCHECK_DEB_SHA256"
    ;;
  "") usage >&2; exit 2 ;;
  *) echo "chart-tools: unknown command '$cmd'" >&2; usage >&2; exit 2 ;;
esac

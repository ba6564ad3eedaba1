# Shared by the operations scripts (deploy, scale, pause, replay, snapshot, DLQ rotation); sourced, not run.
# shellcheck shell=bash

PH_SCRIPTS="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
PH_REPO="$(cd "$PH_SCRIPTS/.." && pwd)"
PH_CHART="$PH_REPO/helm/personahub"
PH_RELEASE="${PH_RELEASE:-personahub}"
PH_NAMESPACE="${PH_NAMESPACE:-personahub}"
PH_DRY_RUN=false

ph_die() { echo "$(basename "$0"): $*" >&2; exit 1; }
# Bad arguments: exit 2 with the reason and a pointer to --help.
ph_usage_error() { echo "$(basename "$0"): $*" >&2; echo "Run $(basename "$0") --help for usage." >&2; exit 2; }

# The stages of the chart (files/topology.json, generated from topology/index.ts).
ph_stages() { grep -o '"name": "[^"]*"' "$PH_CHART/files/topology.json" | cut -d'"' -f4; }

ph_check_stage() {
  local stage="$1" s
  for s in $(ph_stages); do [ "$s" = "$stage" ] && return 0; done
  ph_usage_error "unknown stage '$stage'; stages: $(ph_stages | tr '\n' ' ')"
}

# A stage's input event (files/topology.json), e.g. draft -> seed.
ph_stage_input() {
  tr -d '\n ' < "$PH_CHART/files/topology.json" | grep -o "{\"name\":\"$1\",\"input\":\"[^\"]*\"" | cut -d'"' -f8
}

ph_check_count() { # name value
  [[ "$2" =~ ^[0-9]+$ ]] || ph_usage_error "$1 must be a whole number, got '$2'"
}

ph_check_name() { # what value (DNS-1123 label, as Kubernetes and Helm want)
  if ! [[ "$2" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || [ "${#2}" -gt 53 ]; then
    ph_usage_error "$1 '$2' is not a valid name (lower-case letters, digits and '-', at most 53 characters)"
  fi
}

# helm on PATH, else the pinned build scripts/chart-tools.sh installs.
ph_helm() {
  if command -v helm >/dev/null 2>&1; then command -v helm; else "$PH_SCRIPTS/chart-tools.sh" path helm; fi
}

ph_need() { command -v "$1" >/dev/null 2>&1 || ph_die "$1 is needed and not on PATH"; }

# Runs a command, or only prints it with --dry-run.
ph_run() {
  if [ "$PH_DRY_RUN" = true ]; then printf 'would run:'; printf ' %q' "$@"; printf '\n'; else "$@"; fi
}

# The chart's full name (templates/_helpers.tpl): <release>-personahub, or the release name when it
# already contains "personahub"; a component's resources are <fullname>-<component>.
ph_fullname() {
  if [[ "$PH_RELEASE" == *personahub* ]]; then echo "${PH_RELEASE:0:63}"; else local f="$PH_RELEASE-personahub"; echo "${f:0:63}"; fi
}
ph_component_name() {
  local base; base="$(ph_fullname)"
  base="${base:0:$((62 - ${#1}))}"
  echo "${base%-}-$1"
}

#!/usr/bin/env bash
# Installs or upgrades PersonaHub Stream on Kubernetes with a profile of the Helm chart.
set -euo pipefail
# shellcheck source=scripts/ops-lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/ops-lib.sh"

usage() {
  cat <<'USAGE'
Usage: scripts/deploy.sh [--profile default|small|large] [--release NAME] [--namespace NS]
                         [-f|--values FILE]... [--set KEY=VALUE]... [--wait] [--dry-run]

Runs `helm upgrade --install` of helm/personahub with the profile's values file (values-small.yaml,
values-large.yaml; default: values.yaml alone), then your values files and --set values, in that order.
The pre-install/pre-upgrade hook runs `personahub topics init` before any stage starts.

  --profile P      default, small or large (default: default)
  --release NAME   Helm release (default: $PH_RELEASE or personahub)
  --namespace NS   namespace, created if missing (default: $PH_NAMESPACE or personahub)
  -f, --values F   extra values file (repeatable)
  --set K=V        extra value (repeatable)
  --wait           wait until every Deployment is ready, then run `helm test`
  --dry-run        render the manifests offline (helm template) instead of installing
  -h, --help       this text

Example: scripts/deploy.sh --profile small --set config.kafkaBrokers=kafka:9092 \
           --set secrets.existingSecret=personahub-credentials --wait
USAGE
}

profile=default
wait=false
extra=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --profile) [ "$#" -ge 2 ] || ph_usage_error "--profile needs a value"; profile="$2"; shift 2 ;;
    --release) [ "$#" -ge 2 ] || ph_usage_error "--release needs a value"; PH_RELEASE="$2"; shift 2 ;;
    --namespace|-n) [ "$#" -ge 2 ] || ph_usage_error "--namespace needs a value"; PH_NAMESPACE="$2"; shift 2 ;;
    -f|--values)
      [ "$#" -ge 2 ] || ph_usage_error "$1 needs a file"
      [ -f "$2" ] || ph_usage_error "values file '$2' does not exist"
      extra+=(-f "$2"); shift 2 ;;
    --set)
      [ "$#" -ge 2 ] || ph_usage_error "--set needs KEY=VALUE"
      [[ "$2" == *=* ]] || ph_usage_error "--set needs KEY=VALUE, got '$2'"
      extra+=(--set "$2"); shift 2 ;;
    --wait) wait=true; shift ;;
    --dry-run) PH_DRY_RUN=true; shift ;;
    *) ph_usage_error "unknown argument '$1'" ;;
  esac
done

case "$profile" in
  default) profile_args=() ;;
  small|large) profile_args=(-f "$PH_CHART/values-$profile.yaml") ;;
  *) ph_usage_error "unknown profile '$profile'; profiles: default, small, large" ;;
esac
ph_check_name release "$PH_RELEASE"
ph_check_name namespace "$PH_NAMESPACE"
helm="$(ph_helm)"

if [ "$PH_DRY_RUN" = true ]; then
  exec "$helm" template "$PH_RELEASE" "$PH_CHART" --namespace "$PH_NAMESPACE" "${profile_args[@]}" "${extra[@]}"
fi
ph_need kubectl
wait_args=()
if [ "$wait" = true ]; then wait_args=(--wait --timeout 15m); fi
"$helm" upgrade --install "$PH_RELEASE" "$PH_CHART" --namespace "$PH_NAMESPACE" --create-namespace \
  "${profile_args[@]}" "${extra[@]}" "${wait_args[@]}"
if [ "$wait" = true ]; then "$helm" test "$PH_RELEASE" --namespace "$PH_NAMESPACE" --logs; fi

#!/usr/bin/env bash
# Scales one stage: its KEDA ScaledObject's bounds, or its Deployment when it is not autoscaled.
set -euo pipefail
# shellcheck source=scripts/ops-lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/ops-lib.sh"

usage() {
  cat <<'USAGE'
Usage: scripts/scale-stage.sh STAGE (--replicas N | [--min N] [--max N]) [--release NAME] [--namespace NS] [--dry-run]

  --replicas N     a fixed number of instances: the Deployment is scaled (autoscaling off), or the
                   ScaledObject/HPA bounds are both set to N (autoscaling on)
  --min N, --max N autoscaling bounds (ScaledObject minReplicaCount/maxReplicaCount, or HPA min/max)
  --release NAME   Helm release (default: $PH_RELEASE or personahub)
  --namespace NS   namespace (default: $PH_NAMESPACE or personahub)
  --dry-run        print the kubectl commands instead of running them

A stage has no use for more instances than its input topic has partitions (the extra ones sit idle);
the script refuses a maximum above the release's PERSONAHUB_PARTITIONS. The change lasts until the next
`helm upgrade`: to keep it, set stageDefaults/stages.<stage> in your values. Stages: from
helm/personahub/files/topology.json.
USAGE
}

stage=""
replicas=""
min=""
max=""
while [ "$#" -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --replicas) [ "$#" -ge 2 ] || ph_usage_error "--replicas needs a number"; replicas="$2"; shift 2 ;;
    --min) [ "$#" -ge 2 ] || ph_usage_error "--min needs a number"; min="$2"; shift 2 ;;
    --max) [ "$#" -ge 2 ] || ph_usage_error "--max needs a number"; max="$2"; shift 2 ;;
    --release) [ "$#" -ge 2 ] || ph_usage_error "--release needs a value"; PH_RELEASE="$2"; shift 2 ;;
    --namespace|-n) [ "$#" -ge 2 ] || ph_usage_error "--namespace needs a value"; PH_NAMESPACE="$2"; shift 2 ;;
    --dry-run) PH_DRY_RUN=true; shift ;;
    -*) ph_usage_error "unknown option '$1'" ;;
    *) [ -z "$stage" ] || ph_usage_error "one stage at a time (got '$stage' and '$1')"; stage="$1"; shift ;;
  esac
done
[ -n "$stage" ] || ph_usage_error "which stage? stages: $(ph_stages | tr '\n' ' ')"
ph_check_stage "$stage"
if [ -n "$replicas" ]; then
  [ -z "$min$max" ] || ph_usage_error "--replicas or --min/--max, not both"
  ph_check_count --replicas "$replicas"
  min="$replicas"; max="$replicas"
else
  [ -n "$min$max" ] || ph_usage_error "say --replicas N, or --min N and/or --max N"
fi
[ -z "$min" ] || ph_check_count --min "$min"
[ -z "$max" ] || ph_check_count --max "$max"
if [ -n "$min" ] && [ -n "$max" ] && [ "$min" -gt "$max" ]; then ph_usage_error "--min $min is above --max $max"; fi
ph_check_name release "$PH_RELEASE"
ph_check_name namespace "$PH_NAMESPACE"
name="$(ph_component_name "$stage")"
k=(kubectl --namespace "$PH_NAMESPACE")

if [ "$PH_DRY_RUN" = false ]; then
  ph_need kubectl
  partitions="$("${k[@]}" get configmap "$(ph_fullname)" -o jsonpath='{.data.PERSONAHUB_PARTITIONS}' 2>/dev/null || true)"
  if [ -n "$max" ] && [ -n "$partitions" ] && [ "$max" -gt "$partitions" ]; then
    ph_die "--max/--replicas $max is above the $partitions partitions of the input topic: the extra instances would sit idle"
  fi
fi

patch_bounds() { # kind minField maxField
  local fields=()
  [ -z "$min" ] || fields+=("\"$2\":$min")
  [ -z "$max" ] || fields+=("\"$3\":$max")
  ph_run "${k[@]}" patch "$1" "$name" --type merge -p "{\"spec\":{$(IFS=,; echo "${fields[*]}")}}"
}

if [ "$PH_DRY_RUN" = true ] || "${k[@]}" get scaledobject "$name" >/dev/null 2>&1; then
  patch_bounds scaledobject minReplicaCount maxReplicaCount
elif "${k[@]}" get hpa "$name" >/dev/null 2>&1; then
  [ "${min:-1}" -ge 1 ] || ph_die "an HPA keeps at least 1 instance: use scripts/pause-stage.sh to stop the stage"
  patch_bounds hpa minReplicas maxReplicas
else
  [ -n "$replicas" ] || ph_die "$name is not autoscaled: use --replicas N"
  ph_run "${k[@]}" scale deployment "$name" --replicas "$replicas"
fi

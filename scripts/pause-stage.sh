#!/usr/bin/env bash
# Pauses a stage (no instance consumes; its lag waits in Kafka) or resumes it.
set -euo pipefail
# shellcheck source=scripts/ops-lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/ops-lib.sh"

usage() {
  cat <<'USAGE'
Usage: scripts/pause-stage.sh pause|resume STAGE [--release NAME] [--namespace NS] [--dry-run]

pause   With KEDA: annotates the stage's ScaledObject with autoscaling.keda.sh/paused-replicas=0, so
        KEDA scales it to 0 and stops autoscaling it. Without KEDA: records the current replica count
        in the Deployment's personahub.io/paused-from annotation and scales it to 0 (an HPA does not
        act on a Deployment at 0). Instances stop on SIGTERM: the transaction in progress commits or
        is abandoned, nothing is lost (docs/OPERATIONS.md, Lifecycle).
resume  Removes the annotation (KEDA), or scales the Deployment back to the recorded count.

  --release NAME   Helm release (default: $PH_RELEASE or personahub)
  --namespace NS   namespace (default: $PH_NAMESPACE or personahub)
  --dry-run        print the kubectl commands instead of running them

Pausing is what a consumer-group offset reset needs (scripts/replay-topic.sh --pause-stage does it).
USAGE
}

action=""
stage=""
while [ "$#" -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --release) [ "$#" -ge 2 ] || ph_usage_error "--release needs a value"; PH_RELEASE="$2"; shift 2 ;;
    --namespace|-n) [ "$#" -ge 2 ] || ph_usage_error "--namespace needs a value"; PH_NAMESPACE="$2"; shift 2 ;;
    --dry-run) PH_DRY_RUN=true; shift ;;
    -*) ph_usage_error "unknown option '$1'" ;;
    *)
      if [ -z "$action" ]; then action="$1"
      elif [ -z "$stage" ]; then stage="$1"
      else ph_usage_error "unexpected argument '$1'"; fi
      shift ;;
  esac
done
case "$action" in
  pause|resume) ;;
  "") ph_usage_error "say pause or resume, and the stage" ;;
  *) ph_usage_error "unknown action '$action'; actions: pause, resume" ;;
esac
[ -n "$stage" ] || ph_usage_error "which stage? stages: $(ph_stages | tr '\n' ' ')"
ph_check_stage "$stage"
ph_check_name release "$PH_RELEASE"
ph_check_name namespace "$PH_NAMESPACE"
name="$(ph_component_name "$stage")"
k=(kubectl --namespace "$PH_NAMESPACE")
[ "$PH_DRY_RUN" = true ] || ph_need kubectl

if [ "$PH_DRY_RUN" = true ] || "${k[@]}" get scaledobject "$name" >/dev/null 2>&1; then
  if [ "$action" = pause ]; then
    ph_run "${k[@]}" annotate scaledobject "$name" autoscaling.keda.sh/paused-replicas=0 --overwrite
  else
    ph_run "${k[@]}" annotate scaledobject "$name" autoscaling.keda.sh/paused-replicas-
  fi
elif [ "$action" = pause ]; then
  current="$("${k[@]}" get deployment "$name" -o jsonpath='{.spec.replicas}')"
  [ "$current" != 0 ] || { echo "$name is already paused"; exit 0; }
  ph_run "${k[@]}" annotate deployment "$name" "personahub.io/paused-from=$current" --overwrite
  ph_run "${k[@]}" scale deployment "$name" --replicas 0
else
  from="$("${k[@]}" get deployment "$name" -o jsonpath='{.metadata.annotations.personahub\.io/paused-from}')"
  [ -n "$from" ] || ph_die "$name carries no personahub.io/paused-from annotation: was it paused by this script? Use scripts/scale-stage.sh"
  ph_run "${k[@]}" scale deployment "$name" --replicas "$from"
  ph_run "${k[@]}" annotate deployment "$name" personahub.io/paused-from-
fi

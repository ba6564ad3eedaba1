#!/usr/bin/env bash
# Replays a stage's input from an offset or a time: moves the stage's consumer group back.
set -euo pipefail
# shellcheck source=scripts/ops-lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/ops-lib.sh"

usage() {
  cat <<'USAGE'
Usage: scripts/replay-topic.sh STAGE (--to-offset N | --to-datetime TIME | --to-earliest) [--topic TOPIC]
                               [--pause-stage] [--release NAME] [--namespace NS] [--dry-run]

Moves the committed offsets of the stage's consumer group (<topicPrefix>.<stage>) on its input topic
(<topicPrefix>.<input>.v1, or --topic) back to an offset (every partition; clamped to what the topic
still holds) or to the first record at or after a time, so the stage reads those records again.
Kafka refuses to move the offsets of a group with running members: pause the stage first
(scripts/pause-stage.sh pause STAGE), or pass --pause-stage to pause it, reset, and resume it.

What a replay does: every stage claims its inputs by identity (docs/OPERATIONS.md), so records it
already processed are skipped (personahub_inputs_skipped_total) and only those never processed (lost
to an outage of a downstream system, a new stage, a dead letter replayed meanwhile) produce output.

  --to-offset N        offset N on every partition
  --to-datetime TIME   ISO 8601 time, e.g. 2026-11-26T08:00:00Z
  --to-earliest        the oldest record the topic still holds
  --topic TOPIC        another topic than the stage's input
  --pause-stage        pause the stage (kubectl), reset, resume it
  --dry-run            show the offsets that would be set; change nothing
  --release, --namespace   the Helm release of --pause-stage (default: personahub, personahub)

Runs the reset from this machine with the project's Kafka client (scripts/kafka-ops.ts), configured
like the stages by the PERSONAHUB_* variables (PERSONAHUB_KAFKA_BROKERS, TLS, SASL, PERSONAHUB_TOPIC_PREFIX).
Needs Node 24 (./personahub installs it) and network access to the brokers (e.g. kubectl port-forward
or a bastion inside the cluster network).
USAGE
}

stage=""
topic=""
pause=false
target=()
targets=0
while [ "$#" -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --to-offset) [ "$#" -ge 2 ] || ph_usage_error "--to-offset needs a number"; ph_check_count --to-offset "$2"; target=(--to-offset "$2"); targets=$((targets + 1)); shift 2 ;;
    --to-datetime)
      [ "$#" -ge 2 ] || ph_usage_error "--to-datetime needs a time"
      [[ "$2" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:[0-9]{2})$ ]] || ph_usage_error "--to-datetime wants an ISO 8601 time like 2026-11-26T08:00:00Z, got '$2'"
      target=(--to-datetime "$2"); targets=$((targets + 1)); shift 2 ;;
    --to-earliest) target=(--to-earliest); targets=$((targets + 1)); shift ;;
    --topic) [ "$#" -ge 2 ] || ph_usage_error "--topic needs a name"; topic="$2"; shift 2 ;;
    --pause-stage) pause=true; shift ;;
    --release) [ "$#" -ge 2 ] || ph_usage_error "--release needs a value"; PH_RELEASE="$2"; shift 2 ;;
    --namespace|-n) [ "$#" -ge 2 ] || ph_usage_error "--namespace needs a value"; PH_NAMESPACE="$2"; shift 2 ;;
    --dry-run) PH_DRY_RUN=true; shift ;;
    -*) ph_usage_error "unknown option '$1'" ;;
    *) [ -z "$stage" ] || ph_usage_error "one stage at a time (got '$stage' and '$1')"; stage="$1"; shift ;;
  esac
done
[ -n "$stage" ] || ph_usage_error "which stage? stages: $(ph_stages | tr '\n' ' ')"
ph_check_stage "$stage"
case "$targets" in
  0) ph_usage_error "say where to replay from: --to-offset N, --to-datetime TIME or --to-earliest" ;;
  1) ;;
  *) ph_usage_error "one of --to-offset, --to-datetime, --to-earliest, not several" ;;
esac
[ -z "$topic" ] || [[ "$topic" =~ ^[a-zA-Z0-9._-]+$ ]] || ph_usage_error "'$topic' is not a Kafka topic name"

prefix="${PERSONAHUB_TOPIC_PREFIX:-personahub}"
group="$prefix.$stage"
[ -n "$topic" ] || topic="$prefix.$(ph_stage_input "$stage").v1"
ops=(node --import tsx "$PH_SCRIPTS/kafka-ops.ts" reset-offsets --group "$group" --topic "$topic" "${target[@]}")
[ "$PH_DRY_RUN" = false ] || ops+=(--dry-run)

cd "$PH_REPO"
if [ "$pause" = true ] && [ "$PH_DRY_RUN" = false ]; then
  "$PH_SCRIPTS/pause-stage.sh" pause "$stage" --release "$PH_RELEASE" --namespace "$PH_NAMESPACE"
  trap '"$PH_SCRIPTS/pause-stage.sh" resume "$stage" --release "$PH_RELEASE" --namespace "$PH_NAMESPACE"' EXIT
  echo "waiting for the members of $group to leave..." >&2
  sleep 10
fi
"${ops[@]}"

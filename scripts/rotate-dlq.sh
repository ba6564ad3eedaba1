#!/usr/bin/env bash
# Rotates the dead-letter topic: copies it to a dated archive topic, then empties it.
set -euo pipefail
# shellcheck source=scripts/ops-lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/ops-lib.sh"

usage() {
  cat <<'USAGE'
Usage: scripts/rotate-dlq.sh [--archive TOPIC] [--copy-only] [--dry-run]

Copies every dead letter of <topicPrefix>.dlq.v1 (key, value and headers byte for byte, each to the
same partition) into a new topic <topicPrefix>.dlq.v1.archive-<UTC time> (or --archive), with the DLQ's
retention, checks that the archive holds as many records as were copied, then deletes the copied
records from the DLQ (Kafka DeleteRecords: the topic stays, its low watermark moves), so that
`personahub dlq inspect` and the DLQ alerts start from zero. Nothing is deleted if the copy falls short.

Rotate after the dead letters were inspected and, where a fix was deployed, replayed
(`personahub dlq replay`): replay reads the DLQ topic, not the archive.

  --archive TOPIC   name of the archive topic (must not exist)
  --copy-only       copy, do not delete from the DLQ
  --dry-run         print the DLQ's partitions and record count and the archive name; change nothing

Runs from this machine with the project's Kafka client (scripts/kafka-ops.ts), configured like the
stages by the PERSONAHUB_* variables (brokers, TLS, SASL, topic prefix). Prints a JSON summary.
USAGE
}

args=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --archive)
      [ "$#" -ge 2 ] || ph_usage_error "--archive needs a topic name"
      [[ "$2" =~ ^[a-zA-Z0-9._-]{1,249}$ ]] || ph_usage_error "'$2' is not a Kafka topic name (letters, digits, '.', '_', '-')"
      args+=(--archive "$2"); shift 2 ;;
    --copy-only) args+=(--copy-only); shift ;;
    --dry-run) args+=(--dry-run); shift ;;
    *) ph_usage_error "unknown argument '$1'" ;;
  esac
done
cd "$PH_REPO"
exec node --import tsx "$PH_SCRIPTS/kafka-ops.ts" rotate-dlq "${args[@]}"

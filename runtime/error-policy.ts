import { PersonaHubError, type Dependency } from '../core/errors.ts';

/**
 * The runner's one error policy (docs/OPERATIONS.md has it as a table). Every failure is either
 * transient (a dependency is unreachable, overloaded or restarting: the event is waited out, never
 * dead-lettered) or permanent (the event itself cannot be processed: it goes to the DLQ at once).
 */
export interface Failure {
  code: string;
  transient: boolean;
  /** Whose outage a transient failure reports, when known: it feeds that dependency's circuit breaker. */
  dependency: Dependency | undefined;
  /** The dependency's own hint of when to try again. */
  retryAfterMs: number | undefined;
  error: Error;
}

/** Socket-level errors: the peer is gone or not there yet. Whoever threw them, trying again later is right. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND']);

export function classifyFailure(error: unknown): Failure {
  const err = error instanceof Error ? error : new Error(String(error));
  if (error instanceof PersonaHubError) {
    return { code: error.code, transient: error.transient, dependency: error.dependency, retryAfterMs: error.retryAfterMs, error: err };
  }
  // kafkajs errors reach the runner from the transaction (send, sendOffsets, commit): the broker's state.
  if (err.name.startsWith('KafkaJS')) return { code: 'PH_BROKER_UNAVAILABLE', transient: true, dependency: 'broker', retryAfterMs: undefined, error: err };
  const errno = (err as NodeJS.ErrnoException).code;
  if (errno !== undefined && NETWORK_CODES.has(errno)) return { code: 'PH_NETWORK', transient: true, dependency: undefined, retryAfterMs: undefined, error: err };
  // Anything else is a defect or a value this code cannot handle: retrying would fail the same way.
  return { code: 'PH_UNEXPECTED', transient: false, dependency: undefined, retryAfterMs: undefined, error: err };
}

/** kafkajs errors that mean another producer took over this transactional id: the partition moved, stop. */
export function isFenced(error: unknown): boolean {
  const e = error as { type?: unknown; name?: unknown; cause?: unknown } | undefined;
  if (!e) return false;
  if (e.type === 'PRODUCER_FENCED' || e.type === 'INVALID_PRODUCER_EPOCH' || e.type === 'INVALID_PRODUCER_ID_MAPPING') return true;
  return e.cause !== undefined && e.cause !== error && isFenced(e.cause);
}

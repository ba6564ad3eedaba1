/**
 * Jittered, capped exponential backoff, shared by the runner's event retries and the LLM client's
 * request retries. "Equal jitter": half of the ceiling is fixed and half random, so a retry never
 * comes back at once and clients that failed together do not return in lock-step.
 */
export interface BackoffPolicy {
  baseMs: number;
  capMs: number;
}

/** Delay before retry number `attempt + 1` (attempt counts from 0). */
export function backoffDelayMs(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.max(0, attempt));
  return ceiling / 2 + random() * (ceiling / 2);
}

/** The LLM client's retry policy: how long to wait before the next attempt, and what the server asked for. */
import { backoffDelayMs, type BackoffPolicy } from '../core/backoff.ts';

const LLM_BACKOFF: BackoffPolicy = { baseMs: 200, capMs: 10_000 };
/** Longer Retry-After hints (a quota reset, say) are not slept through here: the error goes to the runner with the hint. */
export const MAX_HONOURED_RETRY_AFTER_MS = 60_000;

/**
 * The server's retry hint in ms: `retry-after-ms` (OpenAI's extension) first, then `Retry-After` as
 * seconds or an HTTP date. Undefined when absent or unparseable.
 */
export function parseRetryAfterMs(headers: Headers | undefined, nowMs: number): number | undefined {
  const ms = headers?.get('retry-after-ms');
  if (ms != null && ms.trim() !== '') {
    const v = Number(ms);
    if (Number.isFinite(v) && v >= 0) return v;
  }
  const ra = headers?.get('retry-after');
  if (ra == null || ra.trim() === '') return undefined;
  const seconds = Number(ra);
  if (Number.isFinite(seconds)) return seconds >= 0 ? seconds * 1000 : undefined;
  const date = Date.parse(ra);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}

/**
 * Delay before retry number `attempt + 1`. With a server hint: the hint plus up to 10% (≤1 s) so that
 * clients told the same Retry-After do not return in lock-step. Without: the shared jittered
 * exponential backoff (core/backoff.ts).
 */
export function computeRetryDelayMs(attempt: number, random: () => number, hintMs?: number): number {
  if (hintMs !== undefined) return hintMs + random() * Math.min(hintMs * 0.1, 1000);
  return backoffDelayMs(attempt, LLM_BACKOFF, random);
}

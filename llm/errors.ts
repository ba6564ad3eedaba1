/** The LLM client's errors: stable codes, which of them are transient, and how an HTTP attempt's failure maps to one. */
import { APIConnectionError, APIConnectionTimeoutError, APIError } from 'openai';
import { PersonaHubError } from '../core/errors.ts';
import { parseRetryAfterMs } from './retry.ts';

export type LlmErrorCode =
  | 'PH_LLM_RATE_LIMITED'
  | 'PH_LLM_SERVER_ERROR'
  | 'PH_LLM_TIMEOUT'
  | 'PH_LLM_CONNECTION'
  | 'PH_LLM_BAD_REQUEST'
  | 'PH_LLM_AUTH'
  | 'PH_LLM_BAD_OUTPUT'
  | 'PH_LLM_CLOSED';

// CLOSED is transient because it means "this process is shutting down", not "this event is poison":
// the event must be re-delivered to the next consumer, not dead-lettered.
const TRANSIENT: ReadonlySet<LlmErrorCode> = new Set(['PH_LLM_RATE_LIMITED', 'PH_LLM_SERVER_ERROR', 'PH_LLM_TIMEOUT', 'PH_LLM_CONNECTION', 'PH_LLM_CLOSED']);

/**
 * An LLM or embedding call that failed. `transient` stays true for transient codes even after our
 * retries are exhausted, so the runner can still choose to retry the event later rather than DLQ it.
 * PH_LLM_AUTH (401/403) is permanent but a configuration problem, not a poison event.
 */
export class LlmError extends PersonaHubError {
  declare readonly code: LlmErrorCode;
  /** HTTP status of the last response, when there was one. */
  readonly status: number | undefined;
  /** Attempts made: HTTP attempts for transport failures, output attempts (seeds tried) for PH_LLM_BAD_OUTPUT. */
  readonly attempts: number;
  constructor(code: LlmErrorCode, message: string, options: { cause?: unknown; status?: number; attempts?: number; retryAfterMs?: number } = {}) {
    // CLOSED is this process shutting down, not the endpoint being down: no dependency to blame.
    super(code, message, { cause: options.cause, transient: TRANSIENT.has(code), ...(code === 'PH_LLM_CLOSED' ? {} : { dependency: 'llm' }), retryAfterMs: options.retryAfterMs });
    this.status = options.status;
    this.attempts = options.attempts ?? 0;
  }
}

export class ClosedError extends LlmError {
  constructor() {
    super('PH_LLM_CLOSED', 'LLM client is closed');
  }
}

/**
 * A 200 whose body is not an OpenAI-shaped response (a proxy's HTML page, a truncated body). Note
 * that the SDK hands back non-JSON bodies as a string rather than throwing, so shapes are checked here.
 */
export class InvalidResponseError extends Error {}

/** Maps whatever one HTTP attempt threw to an LlmError (or rethrows programming errors unchanged). */
export function classify(err: unknown, ctx: { timedOut: boolean; closing: boolean; attempts: number }): LlmError {
  const { attempts } = ctx;
  // Our own deadline and close() both abort through the signal; the SDK then reports a user abort
  // (before headers) or the body read fails with an AbortError (after), so the flags decide.
  if (ctx.closing) return new LlmError('PH_LLM_CLOSED', 'LLM client closed while the request was in flight', { cause: err, attempts });
  if (ctx.timedOut || err instanceof APIConnectionTimeoutError) return new LlmError('PH_LLM_TIMEOUT', 'LLM request timed out', { cause: err, attempts });
  if (err instanceof APIConnectionError) return new LlmError('PH_LLM_CONNECTION', `LLM endpoint unreachable: ${err.message}`, { cause: err, attempts });
  if (err instanceof APIError && typeof err.status === 'number') {
    const status = err.status;
    // openai@6 exposes response headers on APIError as a WHATWG Headers object (not a plain record).
    const retryAfterMs = status === 429 || status === 503 ? parseRetryAfterMs(err.headers, Date.now()) : undefined;
    const opts = { cause: err, status, attempts, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
    if (status === 429) return new LlmError('PH_LLM_RATE_LIMITED', `LLM rate limited: ${err.message}`, opts);
    if (status === 408) return new LlmError('PH_LLM_TIMEOUT', `LLM request timed out at the server: ${err.message}`, opts);
    // 409 is what OpenAI uses for lock timeouts; the SDK's own policy retries it too.
    if (status >= 500 || status === 409) return new LlmError('PH_LLM_SERVER_ERROR', `LLM server error: ${err.message}`, opts);
    if (status === 401 || status === 403) return new LlmError('PH_LLM_AUTH', `LLM endpoint refused the credentials: ${err.message}`, opts);
    return new LlmError('PH_LLM_BAD_REQUEST', `LLM rejected the request: ${err.message}`, opts);
  }
  // SyntaxError: the SDK's response.json() on a body announced as JSON that is not.
  if (err instanceof InvalidResponseError || err instanceof SyntaxError) return new LlmError('PH_LLM_SERVER_ERROR', err.message, { cause: err, attempts });
  throw err;
}

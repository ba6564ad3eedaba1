/**
 * The pipeline's one LLM and embedding client: every call goes through the `openai` SDK to an
 * OpenAI-compatible endpoint, behind one retry policy, one concurrency limit, one tokens-per-minute
 * budget and one content-addressed cache (so a re-delivered event costs no second call).
 *
 * The SDK's own retries are disabled: they would stack with ours (and with the runner's), hold a
 * concurrency slot while sleeping, and not share 429 back-pressure across requests.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OpenAI, APIConnectionError, APIConnectionTimeoutError, APIError } from 'openai';
import { z } from 'zod';
import { ConfigError, PersonaHubError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';

export interface LlmClientOptions {
  baseURL: string;
  apiKey: string;
  model: string;
  embeddingModel: string;
  /** Per request (one HTTP attempt), covering the whole response body, not just the headers. */
  timeoutMs: number;
  /** Retries of transient failures (429, 5xx, 408/409, timeouts, connection errors). */
  maxRetries: number;
  /** Maximum requests in flight. */
  concurrency: number;
  /** 0 = unlimited. A token bucket on estimated tokens (prompt chars / 4 + max_tokens), corrected by reported usage. */
  tokensPerMinute: number;
  /** Content-addressed response cache on disk; absent or empty = in-memory LRU only. */
  cacheDir?: string;
  /** In-memory LRU size; 0 disables it. */
  cacheMaxEntries: number;
  logger: Logger;
  /** Metrics hook, called once per chatJson/embed call with its final outcome. */
  onCall?: (e: LlmCallEvent) => void;
  /** For deterministic jitter in tests. */
  random?: () => number;
}

export interface LlmCallEvent {
  kind: 'chat' | 'embed';
  model: string;
  status: 'ok' | 'error' | 'cache_hit';
  durationMs: number;
  promptTokens?: number;
  completionTokens?: number;
  errorCode?: string;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface ChatJsonRequest<T> {
  messages: ChatMessage[];
  schemaName: string;
  /** JSON schema sent as `response_format.json_schema.schema` with `strict: true`. */
  schema: Record<string, unknown>;
  /** Validates and types the parsed JSON (e.g. a zod schema's parse); throws on invalid. */
  parse: (value: unknown) => T;
  maxTokens: number;
  temperature?: number;
  seed?: number;
}

export interface LlmClient {
  chatJson<T>(req: ChatJsonRequest<T>): Promise<{ value: T; model: string; cached: boolean }>;
  embed(inputs: string[]): Promise<{ vectors: number[][]; model: string; dimensions: number }>;
  /** Rejects waiting and new calls with PH_LLM_CLOSED, aborts requests in flight, and waits for them to settle. */
  close(): Promise<void>;
}

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
  /** The server's Retry-After hint from the last response, when it gave one. */
  readonly retryAfterMs: number | undefined;

  constructor(code: LlmErrorCode, message: string, options: { cause?: unknown; status?: number; attempts?: number; retryAfterMs?: number } = {}) {
    super(code, message, { cause: options.cause, transient: TRANSIENT.has(code) });
    this.status = options.status;
    this.attempts = options.attempts ?? 0;
    this.retryAfterMs = options.retryAfterMs;
  }
}

// ---------------------------------------------------------------------------------------------
// Retry policy

const BACKOFF_BASE_MS = 200;
const BACKOFF_CAP_MS = 10_000;
/** Longer Retry-After hints (a quota reset, say) are not slept through here: the error goes to the runner with the hint. */
const MAX_HONOURED_RETRY_AFTER_MS = 60_000;
/** Extra attempts, with seed+attempt, when the output is not JSON or fails `parse`: sampling may fix it. */
const BAD_OUTPUT_RETRIES = 2;
const SNIPPET_CHARS = 200;

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
 * clients told the same Retry-After do not return in lock-step. Without: exponential backoff with
 * "equal jitter" (half fixed, half random), so a retry never comes back immediately.
 */
export function computeRetryDelayMs(attempt: number, random: () => number, hintMs?: number): number {
  if (hintMs !== undefined) return hintMs + random() * Math.min(hintMs * 0.1, 1000);
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
  return ceiling / 2 + random() * (ceiling / 2);
}

/**
 * A 200 whose body is not an OpenAI-shaped response (a proxy's HTML page, a truncated body). Note
 * that the SDK hands back non-JSON bodies as a string rather than throwing, so shapes are checked here.
 */
class InvalidResponseError extends Error {}

const ChatCompletionShape = z.object({
  model: z.string(),
  choices: z.array(
    z.object({
      message: z.object({ content: z.string().nullish(), refusal: z.string().nullish() }),
      finish_reason: z.string().nullish(),
    }),
  ),
  usage: z.object({ prompt_tokens: z.number(), completion_tokens: z.number(), total_tokens: z.number() }).nullish(),
});

const EmbeddingsShape = z.object({
  model: z.string().nullish(),
  data: z.array(z.object({ index: z.number(), embedding: z.array(z.number()) })),
  usage: z.object({ prompt_tokens: z.number(), total_tokens: z.number() }).nullish(),
});

function shaped<S extends z.ZodType>(schema: S, body: unknown, what: string): z.infer<S> {
  const result = schema.safeParse(body);
  if (!result.success) throw new InvalidResponseError(`${what} response body is malformed: ${snippet(z.prettifyError(result.error))}`);
  return result.data;
}

/** Maps whatever one HTTP attempt threw to an LlmError (or rethrows programming errors unchanged). */
function classify(err: unknown, ctx: { timedOut: boolean; closing: boolean; attempts: number }): LlmError {
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

// ---------------------------------------------------------------------------------------------
// Concurrency limit + token bucket

class ClosedError extends LlmError {
  constructor() {
    super('PH_LLM_CLOSED', 'LLM client is closed');
  }
}

interface Waiter {
  cost: number;
  resolve: (release: () => void) => void;
  reject: (err: Error) => void;
}

/**
 * Admits requests FIFO when a concurrency slot is free, the token bucket holds the request's
 * estimate, and no 429 pause is in force. Waiting is one timer for the head of the queue (or a
 * release), never polling. FIFO means a large request is not starved by a stream of small ones.
 */
class RequestGate {
  private inFlight = 0;
  private tokens: number;
  private refilledAt = performance.now();
  private pausedUntil = 0;
  private readonly queue: Waiter[] = [];
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly concurrency: number,
    private readonly tokensPerMinute: number,
  ) {
    this.tokens = tokensPerMinute;
  }

  acquire(cost: number): Promise<() => void> {
    if (this.closed) return Promise.reject(new ClosedError());
    return new Promise((resolve, reject) => {
      this.queue.push({ cost, resolve, reject });
      this.pump();
    });
  }

  /** Corrects the bucket once the real usage is known (positive = refund). */
  adjust(delta: number): void {
    if (this.tokensPerMinute <= 0 || delta === 0) return;
    this.refill(performance.now());
    // Debt is bounded so one huge mis-estimate cannot stall the client for more than a minute.
    this.tokens = Math.max(-this.tokensPerMinute, Math.min(this.tokensPerMinute, this.tokens + delta));
    this.pump();
  }

  /** Holds every new admission for `ms`: a 429 means the endpoint is saturated for everyone, not just one request. */
  pause(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, performance.now() + ms);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const w of this.queue.splice(0)) w.reject(new ClosedError());
  }

  private refill(now: number): void {
    if (this.tokensPerMinute <= 0) return;
    this.tokens = Math.min(this.tokensPerMinute, this.tokens + ((now - this.refilledAt) * this.tokensPerMinute) / 60_000);
    this.refilledAt = now;
  }

  private pump(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.queue.length > 0 && this.inFlight < this.concurrency) {
      const head = this.queue[0] as Waiter;
      const now = performance.now();
      if (now < this.pausedUntil) return this.wakeIn(this.pausedUntil - now);
      if (this.tokensPerMinute > 0) {
        this.refill(now);
        // A request larger than the whole bucket would otherwise wait forever; it waits for a full bucket instead.
        const need = Math.min(head.cost, this.tokensPerMinute);
        if (this.tokens < need) return this.wakeIn(((need - this.tokens) * 60_000) / this.tokensPerMinute);
        this.tokens -= need;
      }
      this.queue.shift();
      this.inFlight++;
      let released = false;
      head.resolve(() => {
        if (released) return;
        released = true;
        this.inFlight--;
        this.pump();
      });
    }
  }

  private wakeIn(ms: number): void {
    this.timer = setTimeout(() => this.pump(), Math.max(1, Math.ceil(ms)));
  }
}

// ---------------------------------------------------------------------------------------------
// Cache

type CacheEntry = { kind: 'chat'; model: string; value: unknown } | { kind: 'embed'; model: string; vectors: number[][] };

const DiskRecord = z.object({
  v: z.literal(1),
  key: z.string(),
  entry: z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('chat'), model: z.string(), value: z.unknown() }),
    z.object({ kind: z.literal('embed'), model: z.string(), vectors: z.array(z.array(z.number())) }),
  ]),
});

/** JSON with object keys sorted at every level, so equal requests hash equally whatever the key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const src = v as Record<string, unknown>;
    return Object.fromEntries(Object.keys(src).sort().map((k) => [k, src[k]]));
  });
}

export function cacheKey(request: unknown): string {
  return createHash('sha256').update(canonicalJson(request)).digest('hex');
}

/**
 * In-memory LRU in front of an optional disk store. Disk files are sharded by the key's first two
 * bytes (no directory grows past a few thousand files) and written tmp + rename, so a crash never
 * leaves a torn entry that a later process would trust. Cache failures are logged, never thrown:
 * the cache saves money, it must not fail a call.
 */
class ResponseCache {
  private readonly memory = new Map<string, CacheEntry>();

  constructor(
    private readonly maxEntries: number,
    private readonly dir: string | undefined,
    private readonly log: Logger,
  ) {}

  async get(key: string): Promise<CacheEntry | undefined> {
    const hit = this.memory.get(key);
    if (hit) {
      this.remember(key, hit);
      return hit;
    }
    if (!this.dir) return undefined;
    let text: string;
    try {
      text = await readFile(this.path(key), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ err, key }, 'LLM cache read failed; calling the model');
      return undefined;
    }
    let parsed: z.infer<typeof DiskRecord> | undefined;
    try {
      const result = DiskRecord.safeParse(JSON.parse(text));
      if (result.success && result.data.key === key) parsed = result.data;
    } catch {
      // Unparseable JSON falls through to the warning below.
    }
    if (!parsed) {
      this.log.warn({ key }, 'LLM cache entry is corrupt; ignoring it');
      return undefined;
    }
    const entry = parsed.entry as CacheEntry;
    this.remember(key, entry);
    return entry;
  }

  async set(key: string, entry: CacheEntry): Promise<void> {
    this.remember(key, entry);
    if (!this.dir) return;
    const file = this.path(key);
    const tmp = `${file}.${process.pid}.${randomUUID()}.tmp`;
    try {
      await mkdir(join(this.dir, key.slice(0, 2), key.slice(2, 4)), { recursive: true });
      await writeFile(tmp, JSON.stringify({ v: 1, key, entry }));
      await rename(tmp, file);
    } catch (err) {
      this.log.warn({ err, key }, 'LLM cache write failed; the response is not persisted');
      await rm(tmp, { force: true }).catch(() => undefined);
    }
  }

  private path(key: string): string {
    return join(this.dir as string, key.slice(0, 2), key.slice(2, 4), `${key}.json`);
  }

  private remember(key: string, entry: CacheEntry): void {
    if (this.maxEntries <= 0) return;
    // Map iteration order is insertion order: delete + set moves the key to the young end.
    this.memory.delete(key);
    this.memory.set(key, entry);
    while (this.memory.size > this.maxEntries) {
      const oldest = this.memory.keys().next();
      if (oldest.done) break;
      this.memory.delete(oldest.value);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Client

function snippet(text: string): string {
  return text.length > SNIPPET_CHARS ? `${text.slice(0, SNIPPET_CHARS)}…` : text;
}

/** Some OpenAI-compatible servers wrap JSON in a Markdown fence even under response_format; the JSON inside is still the answer. */
function stripFence(text: string): string {
  const m = /^\s*```(?:json)?\s*\n([\s\S]*?)\n?```\s*$/i.exec(text);
  return m?.[1] ?? text;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new ClosedError());
    const onAbort = () => {
      clearTimeout(timer);
      reject(new ClosedError());
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

interface Usage {
  promptTokens: number;
  completionTokens: number;
}

interface ChatOutcome {
  raw: unknown;
  model: string;
}

export function createLlmClient(opts: LlmClientOptions): LlmClient {
  if (!(opts.timeoutMs > 0)) throw new ConfigError(`LLM timeoutMs must be > 0, got ${opts.timeoutMs}`);
  if (!(opts.concurrency >= 1)) throw new ConfigError(`LLM concurrency must be >= 1, got ${opts.concurrency}`);
  if (!(opts.maxRetries >= 0)) throw new ConfigError(`LLM maxRetries must be >= 0, got ${opts.maxRetries}`);
  if (!(opts.tokensPerMinute >= 0)) throw new ConfigError(`LLM tokensPerMinute must be >= 0, got ${opts.tokensPerMinute}`);

  const log = opts.logger.child({ component: 'llm-client' });
  const random = opts.random ?? Math.random;
  // The SDK insists on an integer timeout.
  const timeoutMs = Math.ceil(opts.timeoutMs);
  const openai = new OpenAI({ baseURL: opts.baseURL, apiKey: opts.apiKey, maxRetries: 0, timeout: timeoutMs });
  const gate = new RequestGate(opts.concurrency, opts.tokensPerMinute);
  const cache = new ResponseCache(opts.cacheMaxEntries, opts.cacheDir || undefined, log);
  const closer = new AbortController();
  // Identical concurrent calls (a re-delivered event racing the original) share one HTTP call.
  const pending = new Map<string, Promise<CacheEntry>>();
  const active = new Set<Promise<unknown>>();

  function emit(e: LlmCallEvent): void {
    try {
      opts.onCall?.(e);
    } catch (err) {
      log.error({ err }, 'LLM onCall hook threw; ignoring');
    }
  }

  /**
   * One logical request with the transport retry policy: each attempt takes a gate slot and its
   * token estimate, and gives the slot back before any backoff sleep.
   */
  async function withRetries<R>(kind: 'chat' | 'embed', estimate: number, send: (signal: AbortSignal) => Promise<R>, tokensUsed: (r: R) => number | undefined): Promise<R> {
    for (let attempt = 0; ; attempt++) {
      const release = await gate.acquire(estimate);
      const deadline = new AbortController();
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        deadline.abort();
      }, timeoutMs);
      let failure: LlmError;
      try {
        const result = await send(AbortSignal.any([deadline.signal, closer.signal]));
        const used = tokensUsed(result);
        // Only successes are refunded: providers count failed requests against the per-minute limit too.
        if (used !== undefined) gate.adjust(estimate - used);
        return result;
      } catch (err) {
        failure = classify(err, { timedOut, closing: closer.signal.aborted, attempts: attempt + 1 });
      } finally {
        clearTimeout(timer);
        release();
      }
      const hint = failure.retryAfterMs;
      if (!failure.transient || failure.code === 'PH_LLM_CLOSED' || attempt >= opts.maxRetries) throw failure;
      if (hint !== undefined && hint > MAX_HONOURED_RETRY_AFTER_MS) throw failure;
      const delayMs = computeRetryDelayMs(attempt, random, hint);
      if (hint !== undefined) gate.pause(delayMs);
      log.warn({ kind, code: failure.code, status: failure.status, attempt: attempt + 1, delayMs: Math.round(delayMs) }, 'LLM request failed; retrying');
      await sleep(delayMs, closer.signal);
    }
  }

  function track<R>(p: Promise<R>): Promise<R> {
    active.add(p);
    const forget = () => active.delete(p);
    p.then(forget, forget);
    return p;
  }

  /** Cache lookup, then (once per key at a time) `load`, then cache store. `load` returns only validated results. */
  async function cached(key: string, load: () => Promise<CacheEntry>): Promise<{ entry: CacheEntry; hit: boolean }> {
    const hit = await cache.get(key);
    if (hit) return { entry: hit, hit: true };
    const shared = pending.get(key);
    if (shared) return { entry: await shared, hit: true };
    const p = (async () => {
      const entry = await load();
      await cache.set(key, entry);
      return entry;
    })();
    pending.set(key, p);
    try {
      return { entry: await p, hit: false };
    } finally {
      pending.delete(key);
    }
  }

  async function completeJson<T>(req: ChatJsonRequest<T>, usage: Usage): Promise<ChatOutcome> {
    const promptChars = req.messages.reduce((n, m) => n + m.content.length, 0);
    const estimate = Math.ceil(promptChars / 4) + req.maxTokens;
    let problem = '';
    let output = '';
    for (let k = 0; k <= BAD_OUTPUT_RETRIES; k++) {
      const seed = k === 0 ? req.seed : (req.seed ?? 0) + k;
      const completion = await withRetries(
        'chat',
        estimate,
        async (signal) => {
          const body = await openai.chat.completions.create(
            {
              model: opts.model,
              messages: req.messages,
              response_format: { type: 'json_schema', json_schema: { name: req.schemaName, schema: req.schema, strict: true } },
              // max_tokens rather than max_completion_tokens: vLLM, Ollama and llama.cpp all accept it.
              max_tokens: req.maxTokens,
              ...(req.temperature === undefined ? {} : { temperature: req.temperature }),
              ...(seed === undefined ? {} : { seed }),
            },
            { signal, timeout: timeoutMs, maxRetries: 0 },
          );
          return shaped(ChatCompletionShape, body, 'chat completion');
        },
        (c) => c.usage?.total_tokens,
      );
      usage.promptTokens += completion.usage?.prompt_tokens ?? 0;
      usage.completionTokens += completion.usage?.completion_tokens ?? 0;
      const choice = completion.choices[0];
      output = choice?.message.content ?? '';
      if (!choice || choice.message.content == null) {
        problem = choice?.message.refusal ? `the model refused: ${choice.message.refusal}` : 'the response has no message content';
      } else {
        let json: unknown;
        let isJson = true;
        try {
          json = JSON.parse(stripFence(output));
        } catch {
          isJson = false;
        }
        if (!isJson) {
          problem = choice.finish_reason === 'length' ? 'the output is not JSON (cut off at max_tokens)' : 'the output is not JSON';
        } else {
          try {
            req.parse(json);
            return { raw: json, model: completion.model };
          } catch (err) {
            problem = `the output does not match ${req.schemaName}: ${err instanceof Error ? err.message : String(err)}`;
          }
        }
      }
      log.warn({ schema: req.schemaName, attempt: k + 1, problem: snippet(problem) }, 'LLM output rejected; retrying with another seed');
    }
    throw new LlmError('PH_LLM_BAD_OUTPUT', `LLM output rejected after ${BAD_OUTPUT_RETRIES + 1} attempts: ${snippet(problem)}; last output: ${JSON.stringify(snippet(output))}`, {
      attempts: BAD_OUTPUT_RETRIES + 1,
    });
  }

  async function chatJson<T>(req: ChatJsonRequest<T>): Promise<{ value: T; model: string; cached: boolean }> {
    if (closer.signal.aborted) throw new ClosedError();
    const started = performance.now();
    const usage: Usage = { promptTokens: 0, completionTokens: 0 };
    const key = cacheKey({ v: 1, kind: 'chat', model: opts.model, messages: req.messages, schemaName: req.schemaName, schema: req.schema, maxTokens: req.maxTokens, temperature: req.temperature, seed: req.seed });
    try {
      let { entry, hit } = await cached(key, async () => {
        const out = await completeJson(req, usage);
        return { kind: 'chat', model: out.model, value: out.raw };
      });
      if (entry.kind !== 'chat') throw new Error(`LLM cache key collision between chat and embed entries: ${key}`);
      let value: T;
      try {
        // A clone, so a parse that returns its input cannot hand the caller an object shared with the cache.
        value = req.parse(structuredClone(entry.value));
      } catch (err) {
        if (!hit) throw err;
        // A cached answer the current parser rejects (the parser changed, the JSON schema did not): ask again.
        log.warn({ key, schema: req.schemaName }, 'cached LLM output no longer parses; calling the model');
        const out = await completeJson(req, usage);
        entry = { kind: 'chat', model: out.model, value: out.raw };
        await cache.set(key, entry);
        hit = false;
        value = req.parse(entry.value);
      }
      emit({ kind: 'chat', model: opts.model, status: hit ? 'cache_hit' : 'ok', durationMs: performance.now() - started, ...tokenFields(usage) });
      return { value, model: entry.model, cached: hit };
    } catch (err) {
      emit({ kind: 'chat', model: opts.model, status: 'error', durationMs: performance.now() - started, ...tokenFields(usage), ...(err instanceof PersonaHubError ? { errorCode: err.code } : {}) });
      throw err;
    }
  }

  async function embed(inputs: string[]): Promise<{ vectors: number[][]; model: string; dimensions: number }> {
    if (closer.signal.aborted) throw new ClosedError();
    if (inputs.length === 0) return { vectors: [], model: opts.embeddingModel, dimensions: 0 };
    const started = performance.now();
    const usage: Usage = { promptTokens: 0, completionTokens: 0 };
    const key = cacheKey({ v: 1, kind: 'embed', model: opts.embeddingModel, inputs });
    try {
      const { entry, hit } = await cached(key, async () => {
        const estimate = Math.ceil(inputs.reduce((n, s) => n + s.length, 0) / 4);
        const res = await withRetries(
          'embed',
          estimate,
          // 'float' explicitly: the SDK otherwise asks for base64, which not every compatible server implements.
          async (signal) => shaped(EmbeddingsShape, await openai.embeddings.create({ model: opts.embeddingModel, input: inputs, encoding_format: 'float' }, { signal, timeout: timeoutMs, maxRetries: 0 }), 'embeddings'),
          (r) => r.usage?.total_tokens,
        );
        usage.promptTokens += res.usage?.prompt_tokens ?? 0;
        return { kind: 'embed', model: res.model || opts.embeddingModel, vectors: validVectors(res.data, inputs.length) };
      });
      if (entry.kind !== 'embed') throw new Error(`LLM cache key collision between chat and embed entries: ${key}`);
      emit({ kind: 'embed', model: opts.embeddingModel, status: hit ? 'cache_hit' : 'ok', durationMs: performance.now() - started, ...tokenFields(usage) });
      // Copies: callers may normalise in place, and the cached vectors must not change under later hits.
      return { vectors: entry.vectors.map((v) => v.slice()), model: entry.model, dimensions: entry.vectors[0]?.length ?? 0 };
    } catch (err) {
      emit({ kind: 'embed', model: opts.embeddingModel, status: 'error', durationMs: performance.now() - started, ...tokenFields(usage), ...(err instanceof PersonaHubError ? { errorCode: err.code } : {}) });
      throw err;
    }
  }

  return {
    chatJson: (req) => track(chatJson(req)),
    embed: (inputs) => track(embed(inputs)),
    async close() {
      if (closer.signal.aborted) return;
      closer.abort();
      gate.close();
      await Promise.allSettled([...active]);
    },
  };
}

function tokenFields(u: Usage): { promptTokens?: number; completionTokens?: number } {
  return { ...(u.promptTokens > 0 ? { promptTokens: u.promptTokens } : {}), ...(u.completionTokens > 0 ? { completionTokens: u.completionTokens } : {}) };
}

/** One finite vector per input, in input order, all of one non-zero dimension; anything else is PH_LLM_BAD_OUTPUT. */
function validVectors(data: { index: number; embedding: number[] }[], expected: number): number[][] {
  const bad = (why: string) => new LlmError('PH_LLM_BAD_OUTPUT', `embedding response rejected: ${why}`, { attempts: 1 });
  if (data.length !== expected) throw bad(`${data.length} vectors for ${expected} inputs`);
  const vectors: number[][] = new Array<number[]>(expected);
  for (const d of data) {
    if (!Number.isInteger(d.index) || d.index < 0 || d.index >= expected || vectors[d.index] !== undefined) throw bad(`bad or duplicate index ${d.index}`);
    vectors[d.index] = d.embedding;
  }
  const dims = vectors[0]?.length ?? 0;
  if (dims === 0 || vectors.some((v) => v.length !== dims)) throw bad('vectors have zero or unequal dimensions');
  return vectors;
}

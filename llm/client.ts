/**
 * The pipeline's one LLM and embedding client: every call goes through the `openai` SDK to an
 * OpenAI-compatible endpoint, behind one retry policy, one concurrency limit, one tokens-per-minute
 * budget and one content-addressed cache (so a re-delivered event costs no second call).
 *
 * The SDK's own retries are disabled: they would stack with ours (and with the runner's), hold a
 * concurrency slot while sleeping, and not share 429 back-pressure across requests.
 */
import { OpenAI } from 'openai';
import { z } from 'zod';
import type { ChatMessage } from '../core/chat.ts';
import { ConfigError, PersonaHubError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { cacheKey, ResponseCache, type CacheEntry } from './cache.ts';
import { classify, ClosedError, InvalidResponseError, LlmError } from './errors.ts';
import { RequestGate } from './limiter.ts';
import { computeRetryDelayMs, MAX_HONOURED_RETRY_AFTER_MS } from './retry.ts';

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

/** Extra attempts, with seed+attempt, when the output is not JSON or fails `parse`: sampling may fix it. */
const BAD_OUTPUT_RETRIES = 2;
const SNIPPET_CHARS = 200;

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
        gate.succeeded();
        return result;
      } catch (err) {
        failure = classify(err, { timedOut, closing: closer.signal.aborted, attempts: attempt + 1 });
      } finally {
        clearTimeout(timer);
        release();
      }
      if (failure.code === 'PH_LLM_RATE_LIMITED') gate.rateLimited();
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

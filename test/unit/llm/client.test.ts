import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { z } from 'zod';
import { createLogger } from '../../../core/logger.ts';
import { cacheKey } from '../../../llm/cache.ts';
import { LlmError } from '../../../llm/errors.ts';
import { computeRetryDelayMs, parseRetryAfterMs } from '../../../llm/retry.ts';
import {
  createLlmClient,
  type ChatJsonRequest,
  type LlmCallEvent,
  type LlmClient,
  type LlmClientOptions,
} from '../../../llm/client.ts';
import { FIXTURE_CHAT_MODEL, FIXTURE_EMBEDDING_MODEL, startFixtureLlm, type FixtureLlm, type FixtureLlmOptions } from '../../helpers/fixture-llm.ts';

const logger = createLogger({ level: 'silent' });

const Answer = z.object({ title: z.string().min(1).max(60), score: z.int().min(1).max(5) });
const answerSchema = (() => {
  const { $schema: _drop, ...rest } = z.toJSONSchema(Answer);
  return rest as Record<string, unknown>;
})();

const SYSTEM = 'You rate travel ideas. Answer with JSON.';

function ask(text: string, overrides: Partial<ChatJsonRequest<z.infer<typeof Answer>>> = {}): ChatJsonRequest<z.infer<typeof Answer>> {
  return {
    messages: [
      { role: 'system', content: SYSTEM },
      { role: 'user', content: text },
    ],
    schemaName: 'answer',
    schema: answerSchema,
    parse: (v) => Answer.parse(v),
    maxTokens: 100,
    temperature: 0.7,
    seed: 1,
    ...overrides,
  };
}

/** The LlmError a promise rejects with (fails the test if it resolves or rejects with anything else). */
async function llmError(p: Promise<unknown>): Promise<LlmError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(LlmError);
  return err as LlmError;
}

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}

const bodyOf = (f: FixtureLlm, i: number) => f.requests[i]?.body as Record<string, unknown> | undefined;

describe('llm-client pure helpers', () => {
  it('parses Retry-After as seconds, as an HTTP date, and prefers retry-after-ms', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfterMs(new Headers({ 'retry-after': '2' }), now)).toBe(2000);
    expect(parseRetryAfterMs(new Headers({ 'retry-after': '0.5' }), now)).toBe(500);
    expect(parseRetryAfterMs(new Headers({ 'retry-after': 'Wed, 01 Jan 2025 00:00:07 GMT' }), now)).toBe(7000);
    expect(parseRetryAfterMs(new Headers({ 'retry-after': 'Tue, 31 Dec 2024 23:59:00 GMT' }), now)).toBe(0);
    expect(parseRetryAfterMs(new Headers({ 'retry-after': '9', 'retry-after-ms': '250' }), now)).toBe(250);
    expect(parseRetryAfterMs(new Headers({ 'retry-after': 'soon' }), now)).toBeUndefined();
    expect(parseRetryAfterMs(new Headers({ 'retry-after': '-3' }), now)).toBeUndefined();
    expect(parseRetryAfterMs(new Headers(), now)).toBeUndefined();
    expect(parseRetryAfterMs(undefined, now)).toBeUndefined();
  });

  it('backs off exponentially with equal jitter, capped, and adds at most 10% (≤1 s) to a server hint', () => {
    expect(computeRetryDelayMs(0, () => 0)).toBe(100);
    expect(computeRetryDelayMs(0, () => 1)).toBe(200);
    expect(computeRetryDelayMs(3, () => 0)).toBe(800);
    expect(computeRetryDelayMs(3, () => 1)).toBe(1600);
    expect(computeRetryDelayMs(30, () => 1)).toBe(10_000);
    expect(computeRetryDelayMs(30, () => 0)).toBe(5_000);
    expect(computeRetryDelayMs(0, () => 0, 3000)).toBe(3000);
    expect(computeRetryDelayMs(0, () => 1, 3000)).toBe(3300);
    expect(computeRetryDelayMs(0, () => 1, 50_000)).toBe(51_000);
  });

  it('derives cache keys from content, not key order', () => {
    expect(cacheKey({ a: 1, b: { c: [1, { d: 2, e: 3 }] } })).toBe(cacheKey({ b: { c: [1, { e: 3, d: 2 }] }, a: 1 }));
    expect(cacheKey({ a: 1 })).not.toBe(cacheKey({ a: 2 }));
    expect(cacheKey({ a: [1, 2] })).not.toBe(cacheKey({ a: [2, 1] }));
  });
});

describe('llm-client against the fixture server', () => {
  let fixture: FixtureLlm;
  let clients: LlmClient[];
  let events: LlmCallEvent[];
  let dirs: string[];

  async function start(opts: FixtureLlmOptions = {}): Promise<FixtureLlm> {
    await fixture.close();
    fixture = await startFixtureLlm(opts);
    return fixture;
  }

  function client(overrides: Partial<LlmClientOptions> = {}): LlmClient {
    const c = createLlmClient({
      baseURL: fixture.baseURL,
      apiKey: 'sk-test',
      model: FIXTURE_CHAT_MODEL,
      embeddingModel: FIXTURE_EMBEDDING_MODEL,
      timeoutMs: 5_000,
      maxRetries: 3,
      concurrency: 4,
      tokensPerMinute: 0,
      cacheMaxEntries: 100,
      logger,
      onCall: (e) => events.push(e),
      random: () => 0.5,
      ...overrides,
    });
    clients.push(c);
    return c;
  }

  async function tempDir(): Promise<string> {
    const d = await mkdtemp(join(tmpdir(), 'ph-llm-cache-'));
    dirs.push(d);
    return d;
  }

  beforeEach(async () => {
    fixture = await startFixtureLlm();
    clients = [];
    events = [];
    dirs = [];
  });

  afterEach(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await fixture.close();
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it('returns parsed, schema-valid JSON and sends a strict json_schema request', async () => {
    const res = await client().chatJson(ask('a week of hiking in the alps'));
    expect(Answer.safeParse(res.value).success).toBe(true);
    expect(res.model).toBe(FIXTURE_CHAT_MODEL);
    expect(res.cached).toBe(false);
    expect(fixture.requests).toHaveLength(1);
    expect(bodyOf(fixture, 0)).toMatchObject({
      model: FIXTURE_CHAT_MODEL,
      max_tokens: 100,
      temperature: 0.7,
      seed: 1,
      response_format: { type: 'json_schema', json_schema: { name: 'answer', schema: answerSchema, strict: true } },
    });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ kind: 'chat', model: FIXTURE_CHAT_MODEL, status: 'ok' });
    expect(events[0]?.promptTokens).toBeGreaterThan(0);
    expect(events[0]?.completionTokens).toBeGreaterThan(0);
  });

  it('honours Retry-After (seconds) on 429: the retry arrives no sooner than the hint', async () => {
    await start({ faults: { sequence: [{ status: 429, retryAfterSeconds: 1 }] } });
    const res = await client().chatJson(ask('rate limited once'));
    expect(res.cached).toBe(false);
    expect(fixture.requests.map((r) => r.status)).toEqual([429, 200]);
    const [first, second] = fixture.requests;
    expect((second?.receivedAt ?? 0) - (first?.respondedAt ?? Infinity)).toBeGreaterThanOrEqual(1000);
  });

  it.each([
    { status: 429, retryAfterMs: 400 },
    { status: 503, retryAfterMs: 400 },
  ])('honours retry-after-ms on $status', async (fault) => {
    await start({ faults: { sequence: [fault] } });
    await client().chatJson(ask('retry-after-ms'));
    const [first, second] = fixture.requests;
    expect(fixture.requests.map((r) => r.status)).toEqual([fault.status, 200]);
    expect((second?.receivedAt ?? 0) - (first?.respondedAt ?? Infinity)).toBeGreaterThanOrEqual(400);
  });

  it('holds other requests back while a 429 Retry-After is in force', async () => {
    await start({ faults: { match: (r) => r.text.includes('FIRST'), sequence: [{ status: 429, retryAfterMs: 400 }] } });
    // The client logs the retry only after it has registered the 429; starting the second call then
    // (not merely after the server answered) is what makes this deterministic.
    const lines: string[] = [];
    const c = client({ logger: pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) }) });
    const first = c.chatJson(ask('FIRST request'));
    await until(() => lines.some((l) => l.includes('retrying')));
    const second = c.chatJson(ask('second request'));
    await Promise.all([first, second]);
    const limitedAt = fixture.requests[0]?.respondedAt ?? Infinity;
    const secondReq = fixture.requests.find((r) => r.text.includes('second request'));
    expect((secondReq?.receivedAt ?? 0) - limitedAt).toBeGreaterThanOrEqual(400);
  });

  it('does not sleep through a Retry-After beyond a minute: fails at once with the hint for the runner', async () => {
    await start({ faults: { sequence: [{ status: 429, retryAfterSeconds: 120 }] } });
    const err = await llmError(client().chatJson(ask('quota exhausted')));
    expect(err.code).toBe('PH_LLM_RATE_LIMITED');
    expect(err.transient).toBe(true);
    expect(err.retryAfterMs).toBe(120_000);
    expect(fixture.requests).toHaveLength(1);
  });

  it('retries a 500 and succeeds with exactly two requests', async () => {
    await start({ faults: { sequence: [{ status: 500 }] } });
    const res = await client().chatJson(ask('flaky server'));
    expect(Answer.safeParse(res.value).success).toBe(true);
    expect(fixture.requests.map((r) => r.status)).toEqual([500, 200]);
  });

  it('gives up on a persistent 5xx with PH_LLM_SERVER_ERROR, still transient', async () => {
    await start({ faults: { sequence: [{ status: 502 }], repeat: true } });
    const err = await llmError(client({ maxRetries: 2 }).chatJson(ask('down')));
    expect(err.code).toBe('PH_LLM_SERVER_ERROR');
    expect(err.transient).toBe(true);
    expect(err.status).toBe(502);
    expect(err.attempts).toBe(3);
    expect(fixture.requests).toHaveLength(3);
    expect(events.at(-1)).toMatchObject({ status: 'error', errorCode: 'PH_LLM_SERVER_ERROR' });
  });

  it.each([
    { status: 400, code: 'PH_LLM_BAD_REQUEST' },
    { status: 404, code: 'PH_LLM_BAD_REQUEST' },
    { status: 401, code: 'PH_LLM_AUTH' },
  ])('does not retry a $status: $code, permanent', async ({ status, code }) => {
    await start({ faults: { sequence: [{ status }], repeat: true } });
    const err = await llmError(client().chatJson(ask('bad')));
    expect(err.code).toBe(code);
    expect(err.transient).toBe(false);
    expect(err.message).toContain(`Fixture fault: HTTP ${status}`);
    expect(fixture.requests).toHaveLength(1);
  });

  it('retries a timeout and succeeds', async () => {
    await start({ faults: { sequence: ['timeout'] } });
    const res = await client({ timeoutMs: 150 }).chatJson(ask('slow once'));
    expect(res.cached).toBe(false);
    expect(fixture.requests.map((r) => r.fault)).toEqual(['timeout', 'ok']);
  });

  it('fails a persistent timeout with PH_LLM_TIMEOUT after maxRetries + 1 attempts, still transient', async () => {
    await start({ faults: { sequence: ['timeout'], repeat: true } });
    const err = await llmError(client({ timeoutMs: 150, maxRetries: 2 }).chatJson(ask('always slow')));
    expect(err.code).toBe('PH_LLM_TIMEOUT');
    expect(err.transient).toBe(true);
    expect(fixture.requests).toHaveLength(3);
  });

  it('fails an unreachable endpoint with PH_LLM_CONNECTION after retries', async () => {
    const baseURL = fixture.baseURL;
    await fixture.close();
    const err = await llmError(client({ baseURL, maxRetries: 1 }).chatJson(ask('nobody home')));
    expect(err.code).toBe('PH_LLM_CONNECTION');
    expect(err.transient).toBe(true);
    expect(err.attempts).toBe(2);
  });

  it('retries malformed JSON with seed+attempt and then succeeds, caching under the original request', async () => {
    await start({ faults: { sequence: ['malformed_json'] } });
    const c = client();
    const res = await c.chatJson(ask('bad json once', { seed: 10 }));
    expect(Answer.safeParse(res.value).success).toBe(true);
    expect(fixture.requests.map((_, i) => bodyOf(fixture, i)?.['seed'])).toEqual([10, 11]);
    const again = await c.chatJson(ask('bad json once', { seed: 10 }));
    expect(again).toEqual({ ...res, cached: true });
    expect(fixture.requests).toHaveLength(2);
  });

  it('fails persistent malformed JSON with PH_LLM_BAD_OUTPUT (permanent) carrying a snippet, after three seeds', async () => {
    await start({ faults: { sequence: ['malformed_json'], repeat: true } });
    const c = client();
    const err = await llmError(c.chatJson(ask('always bad json', { seed: 5 })));
    expect(err.code).toBe('PH_LLM_BAD_OUTPUT');
    expect(err.transient).toBe(false);
    expect(err.message).toContain('not JSON');
    expect(err.message).toContain('Here is the JSON');
    expect(fixture.requests.map((_, i) => bodyOf(fixture, i)?.['seed'])).toEqual([5, 6, 7]);
    // Failures are not cached: the same request asks the model again.
    await llmError(c.chatJson(ask('always bad json', { seed: 5 })));
    expect(fixture.requests).toHaveLength(6);
  });

  it('uses seeds 1 and 2 for output retries when the request has no seed', async () => {
    await start({ faults: { sequence: ['malformed_json'], repeat: true } });
    await llmError(client().chatJson(ask('unseeded', { seed: undefined })));
    expect(fixture.requests.map((_, i) => bodyOf(fixture, i)?.['seed'])).toEqual([undefined, 1, 2]);
  });

  it('catches a schema violation through parse, retries, and succeeds', async () => {
    await start({ faults: { sequence: ['schema_violation'] } });
    const res = await client().chatJson(ask('missing field once'));
    expect(Answer.safeParse(res.value).success).toBe(true);
    expect(fixture.requests).toHaveLength(2);
  });

  it('fails a persistent schema violation with PH_LLM_BAD_OUTPUT naming the schema', async () => {
    await start({ faults: { sequence: ['schema_violation'], repeat: true } });
    const err = await llmError(client().chatJson(ask('missing field always')));
    expect(err.code).toBe('PH_LLM_BAD_OUTPUT');
    expect(err.message).toContain('does not match answer');
    expect(fixture.requests).toHaveLength(3);
  });

  it('serves an identical request from the cache without a second HTTP request', async () => {
    const c = client();
    const first = await c.chatJson(ask('cache me'));
    const reordered = { ...ask('cache me'), schema: Object.fromEntries(Object.entries(answerSchema).reverse()) };
    const second = await c.chatJson(reordered);
    expect(second).toEqual({ ...first, cached: true });
    expect(fixture.requests).toHaveLength(1);
    expect(events.map((e) => e.status)).toEqual(['ok', 'cache_hit']);
    await c.chatJson(ask('cache me', { seed: 2 }));
    await c.chatJson(ask('cache me', { temperature: 0.2 }));
    expect(fixture.requests).toHaveLength(3);
  });

  it('makes one HTTP request for identical concurrent calls', async () => {
    await start({ latencyMs: 50 });
    const c = client();
    const results = await Promise.all([c.chatJson(ask('twice at once')), c.chatJson(ask('twice at once'))]);
    expect(fixture.requests).toHaveLength(1);
    expect(results.map((r) => r.cached).sort()).toEqual([false, true]);
    expect(results[0]?.value).toEqual(results[1]?.value);
  });

  it('keeps the disk cache across client instances, in sharded files written atomically', async () => {
    const dir = await tempDir();
    const first = client({ cacheDir: dir });
    const a = await first.chatJson(ask('persist me'));
    const v = await first.embed(['persist', 'me too']);
    await first.close();
    expect(fixture.requests).toHaveLength(2);

    const second = client({ cacheDir: dir });
    expect(await second.chatJson(ask('persist me'))).toEqual({ ...a, cached: true });
    expect((await second.embed(['persist', 'me too'])).vectors).toEqual(v.vectors);
    expect(fixture.requests).toHaveLength(2);

    const files = (await readdir(dir, { recursive: true })).filter((f) => f.endsWith('.json'));
    expect(files).toHaveLength(2);
    for (const f of files) expect(f).toMatch(/^([0-9a-f]{2})\/([0-9a-f]{2})\/\1\2[0-9a-f]{60}\.json$/);
    expect((await readdir(dir, { recursive: true })).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('ignores a corrupt disk cache entry and replaces it', async () => {
    const dir = await tempDir();
    await client({ cacheDir: dir }).chatJson(ask('corrupt me'));
    const file = (await readdir(dir, { recursive: true })).find((f) => f.endsWith('.json')) ?? '';
    await writeFile(join(dir, file), '{"v":1,"key":"trunc');
    const res = await client({ cacheDir: dir }).chatJson(ask('corrupt me'));
    expect(res.cached).toBe(false);
    expect(fixture.requests).toHaveLength(2);
    expect(JSON.parse(await readFile(join(dir, file), 'utf8'))).toMatchObject({ v: 1, entry: { kind: 'chat' } });
  });

  it('never has more than `concurrency` requests in flight', async () => {
    await start({ latencyMs: 60 });
    const c = client({ concurrency: 2 });
    await Promise.all(Array.from({ length: 6 }, (_, i) => c.chatJson(ask(`parallel ${i}`))));
    expect(fixture.requests).toHaveLength(6);
    expect(fixture.maxConcurrent()).toBe(2);
  });

  it('delays a request that the token bucket cannot cover yet', async () => {
    // 60 000 tokens/min = 1 token/ms. Two concurrent requests each estimated at E = ceil(chars/4) + maxTokens:
    // the first leaves 60 000 − E, so the second waits for 2E − 60 000 tokens, i.e. that many ms.
    await start({ latencyMs: 800 });
    const maxTokens = 30_200;
    const estimate = (text: string) => Math.ceil((SYSTEM.length + text.length) / 4) + maxTokens;
    const deficitMs = 2 * estimate('bucket A') - 60_000;
    expect(deficitMs).toBeGreaterThanOrEqual(400);
    const c = client({ tokensPerMinute: 60_000 });
    // Same clock as the fixture's timestamps; A is admitted no earlier than this, so B no earlier than this + deficit.
    const startedAt = performance.timeOrigin + performance.now();
    await Promise.all([c.chatJson(ask('bucket A', { maxTokens })), c.chatJson(ask('bucket B', { maxTokens }))]);
    const b = fixture.requests.find((r) => r.text.includes('bucket B'));
    expect((b?.receivedAt ?? 0) - startedAt).toBeGreaterThanOrEqual(deficitMs);
  });

  it('embeds a batch in one request, one unit vector per input, and caches it', async () => {
    const c = client();
    const res = await c.embed(['the old keeper', 'repairs clocks', 'by the sea']);
    expect(res.model).toBe(FIXTURE_EMBEDDING_MODEL);
    expect(res.dimensions).toBe(384);
    expect(res.vectors).toHaveLength(3);
    for (const v of res.vectors) {
      expect(v).toHaveLength(384);
      expect(Math.hypot(...v)).toBeCloseTo(1, 5);
    }
    expect(fixture.requests).toHaveLength(1);
    expect(bodyOf(fixture, 0)).toMatchObject({ model: FIXTURE_EMBEDDING_MODEL, input: ['the old keeper', 'repairs clocks', 'by the sea'], encoding_format: 'float' });
    expect(await c.embed(['the old keeper', 'repairs clocks', 'by the sea'])).toEqual(res);
    expect(await c.embed([])).toEqual({ vectors: [], model: FIXTURE_EMBEDDING_MODEL, dimensions: 0 });
    expect(fixture.requests).toHaveLength(1);
    expect(events.map((e) => `${e.kind}:${e.status}`)).toEqual(['embed:ok', 'embed:cache_hit']);
  });

  it('rejects an embeddings response with a missing vector as PH_LLM_BAD_OUTPUT without retrying', async () => {
    await start({ faults: { sequence: ['schema_violation'], repeat: true } });
    const err = await llmError(client().embed(['one', 'two']));
    expect(err.code).toBe('PH_LLM_BAD_OUTPUT');
    expect(err.message).toContain('1 vectors for 2 inputs');
    expect(fixture.requests).toHaveLength(1);
  });

  it('treats a 200 whose body is not JSON as a transient server error', async () => {
    await start({ faults: { sequence: ['malformed_json'], repeat: true } });
    const err = await llmError(client({ maxRetries: 1 }).embed(['one']));
    expect(err.code).toBe('PH_LLM_SERVER_ERROR');
    expect(err.transient).toBe(true);
    expect(fixture.requests).toHaveLength(2);
  });

  it('close() rejects in-flight and later calls with PH_LLM_CLOSED (transient, so the event is re-delivered)', async () => {
    await start({ faults: { sequence: ['timeout'], repeat: true } });
    const c = client({ timeoutMs: 60_000 });
    const inFlight = llmError(c.chatJson(ask('held')));
    await until(() => fixture.requests.length === 1);
    await c.close();
    const err = await inFlight;
    expect(err.code).toBe('PH_LLM_CLOSED');
    expect(err.transient).toBe(true);
    expect((await llmError(c.embed(['late']))).code).toBe('PH_LLM_CLOSED');
  });
});

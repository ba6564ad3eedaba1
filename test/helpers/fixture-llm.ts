/**
 * A deterministic OpenAI-compatible server for tests and local development.
 *
 * It speaks real HTTP so the code under test runs the real `openai` SDK, with its real retry,
 * timeout and error-parsing paths. Every answer is a pure function of the request (hash of the
 * messages + seed), so a test can assert on outputs, and a fault plan can make exactly one request
 * (e.g. the one whose prompt carries a marker) fail in a chosen way.
 *
 * Standalone: `npx tsx test/helpers/fixture-llm.ts --port 18500` prints the base URL.
 */
import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { fastify, type FastifyReply } from 'fastify';
import { z } from 'zod';

export const FIXTURE_CHAT_MODEL = 'fixture-chat';
export const FIXTURE_EMBEDDING_MODEL = 'fixture-embedding';

/** One step of a fault plan. `{ status }` answers with that HTTP status and an OpenAI-shaped error body. */
export type FaultStep =
  | 'ok'
  /** Holds the response until the client gives up (disconnects) or the fixture closes. */
  | 'timeout'
  /** Holds the response until `release()` (then answers normally), the client gives up or the fixture closes. */
  | 'hold'
  /** Chat: 200 whose message content is not JSON. Embeddings: 200 whose body is not JSON. */
  | 'malformed_json'
  /** Chat: valid JSON missing a required field. Embeddings: one vector fewer than inputs. */
  | 'schema_violation'
  | { status: number; retryAfterSeconds?: number; retryAfterMs?: number };

export interface FaultPlan {
  /** Which requests the plan applies to; the sequence advances only on matching requests. Default: every POST. */
  match?: (req: RecordedRequest) => boolean;
  sequence: FaultStep[];
  /** Loop the sequence forever (a persistent fault); otherwise matching requests succeed once it is used up. */
  repeat?: boolean;
}

export interface FixtureLlmOptions {
  latencyMs?: number;
  faults?: FaultPlan;
  embeddingDimensions?: number;
  port?: number;
  chatModels?: string[];
  embeddingModels?: string[];
}

export interface RecordedRequest {
  /** 0-based arrival order. */
  index: number;
  method: string;
  path: string;
  body: unknown;
  /** Prompt text (chat messages joined) or embedding inputs joined, for fault matching. */
  text: string;
  /** Epoch milliseconds with sub-millisecond precision, from the monotonic clock. */
  receivedAt: number;
  /** When the handler finished (before the bytes hit the socket); undefined while held or still running. */
  respondedAt?: number;
  /** Requests being handled at arrival, this one included. */
  inFlight: number;
  fault: FaultStep;
  /** True while the response is held by a 'timeout' or 'hold' step. */
  held?: boolean;
  status?: number;
}

export interface FixtureLlm {
  baseURL: string;
  requests: RecordedRequest[];
  setFaults(f: FaultPlan | undefined): void;
  /** Highest number of POST requests handled at the same time since start. */
  maxConcurrent(): number;
  /**
   * Resolves once at least `count` requests (default 1) that `match` accepts (default: any) are
   * held at the same time by a 'timeout' or 'hold' step (at once if that is already the case), with
   * those requests. Lets a test act on a held request without guessing how long it takes to arrive.
   */
  whenHeld(count?: number, match?: (req: RecordedRequest) => boolean): Promise<RecordedRequest[]>;
  /** Lets every request held by a 'hold' step answer normally; returns how many were released. */
  release(): number;
  close(): Promise<void>;
}

export type JsonSchema = { [keyword: string]: unknown } | boolean;

export interface GeneratorSource {
  words: readonly string[];
  rng: () => number;
}

// ---------------------------------------------------------------------------------------------
// Deterministic randomness and text

/** sfc32 seeded from sha256(seed): small, fast, and stable across Node versions (unlike Math.random). */
export function seededRandom(seed: string): () => number {
  const h = createHash('sha256').update(seed).digest();
  let a = h.readUInt32LE(0);
  let b = h.readUInt32LE(4);
  let c = h.readUInt32LE(8);
  let d = h.readUInt32LE(12);
  return () => {
    a |= 0; b |= 0; c |= 0; d |= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

const STOPWORDS = new Set(
  'the and for with that this from your you are was were will have has had not but all any can its into our out who what when where which why how about their they them then than also over json schema object field fields return only must should respond answer output value values string'.split(' '),
);
const FALLBACK_WORDS = ['river', 'lantern', 'harbor', 'meadow', 'copper', 'violet', 'summit', 'archive', 'orchard', 'signal'];

/** Distinct lower-case words (letters only, 3+ long) in order of first appearance; Unicode-aware so non-English prompts work. */
export function wordsFrom(text: string): string[] {
  const seen = new Set<string>();
  for (const m of text.toLowerCase().matchAll(/\p{L}{3,}/gu)) {
    if (!STOPWORDS.has(m[0])) seen.add(m[0]);
  }
  return [...seen];
}

function pick<T>(items: readonly T[], rng: () => number): T {
  const item = items[Math.floor(rng() * items.length)];
  if (item === undefined) throw new Error('pick from an empty list');
  return item;
}

function intBetween(lo: number, hi: number, rng: () => number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

function phrase(src: GeneratorSource, minWords: number, maxWords: number): string {
  const words = src.words.length > 0 ? src.words : FALLBACK_WORDS;
  const n = intBetween(minWords, maxWords, src.rng);
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(pick(words, src.rng));
  const text = out.join(' ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// ---------------------------------------------------------------------------------------------
// Schema-conforming generator

const MAX_DEPTH = 8;

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}
function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** Resolves a local `$ref` (`#/...` JSON pointer), the only kind zod and OpenAI strict schemas emit. */
function resolveRef(ref: string, root: JsonSchema): JsonSchema {
  if (!ref.startsWith('#')) throw new Error(`fixture generator supports local $ref only, got ${ref}`);
  let node: unknown = root;
  for (const raw of ref.slice(1).split('/').filter((p) => p !== '')) {
    const part = decodeURIComponent(raw).replaceAll('~1', '/').replaceAll('~0', '~');
    node = asRecord(node)?.[part];
  }
  if (typeof node === 'boolean' || asRecord(node)) return node as JsonSchema;
  throw new Error(`unresolvable $ref ${ref}`);
}

/** allOf is flattened into one schema: properties and required are unioned, other keywords last-wins. */
function mergeAllOf(s: Record<string, unknown>, root: JsonSchema): Record<string, unknown> {
  const parts = Array.isArray(s['allOf']) ? (s['allOf'] as unknown[]) : [];
  const merged: Record<string, unknown> = { ...s };
  delete merged['allOf'];
  const properties: Record<string, unknown> = { ...asRecord(s['properties']) };
  const required = new Set<string>(Array.isArray(s['required']) ? (s['required'] as string[]) : []);
  for (const p of parts) {
    let part = asRecord(p);
    const ref = part?.['$ref'];
    if (typeof ref === 'string') part = asRecord(resolveRef(ref, root));
    if (!part) continue;
    Object.assign(merged, part);
    Object.assign(properties, asRecord(part['properties']));
    if (Array.isArray(part['required'])) for (const r of part['required']) if (typeof r === 'string') required.add(r);
  }
  if (Object.keys(properties).length > 0) merged['properties'] = properties;
  if (required.size > 0) merged['required'] = [...required];
  return merged;
}

function schemaType(s: Record<string, unknown>, rng: () => number): string {
  const t = s['type'];
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    // Prefer a non-null type: nullable fields filled with null make poor test data.
    const nonNull = t.filter((x): x is string => typeof x === 'string' && x !== 'null');
    if (nonNull.length > 0) return pick(nonNull, rng);
    return 'null';
  }
  if (s['properties'] !== undefined || s['required'] !== undefined) return 'object';
  if (s['items'] !== undefined || s['prefixItems'] !== undefined) return 'array';
  return 'string';
}

function genString(s: Record<string, unknown>, src: GeneratorSource): string {
  const asciiWords = src.words.filter((w) => /^[a-z]+$/.test(w));
  const ascii = asciiWords.length > 0 ? asciiWords : FALLBACK_WORDS;
  let text: string;
  switch (s['format']) {
    case 'date-time':
    case 'date':
    case 'time': {
      const d = new Date(Date.UTC(1990 + intBetween(0, 34, src.rng), intBetween(0, 11, src.rng), intBetween(1, 28, src.rng), intBetween(0, 23, src.rng), intBetween(0, 59, src.rng), intBetween(0, 59, src.rng)));
      const iso = d.toISOString();
      text = s['format'] === 'date' ? iso.slice(0, 10) : s['format'] === 'time' ? iso.slice(11, 19) : iso;
      break;
    }
    case 'email':
      text = `${pick(ascii, src.rng)}.${pick(ascii, src.rng)}@example.com`;
      break;
    case 'uri':
    case 'url':
      text = `https://example.com/${pick(ascii, src.rng)}/${pick(ascii, src.rng)}`;
      break;
    case 'uuid': {
      const hex = Array.from({ length: 32 }, () => Math.floor(src.rng() * 16).toString(16));
      hex[12] = '4';
      hex[16] = (8 + Math.floor(src.rng() * 4)).toString(16);
      const h = hex.join('');
      text = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
      break;
    }
    default:
      // `pattern` is not honoured: generating from arbitrary regexes is out of scope for a fixture.
      text = phrase(src, 1, 5);
  }
  const min = num(s['minLength']) ?? 0;
  const max = num(s['maxLength']);
  while (text.length < min) text += ` ${phrase(src, 1, 3).toLowerCase()}`;
  if (max !== undefined && text.length > max) {
    text = text.slice(0, max);
    // Avoid a dangling space unless trimming would break minLength.
    if (text.trimEnd().length >= min) text = text.trimEnd();
  }
  return text;
}

function genNumber(s: Record<string, unknown>, integer: boolean, rng: () => number): number {
  const exMin = num(s['exclusiveMinimum']);
  const exMax = num(s['exclusiveMaximum']);
  const step = integer ? 1 : 0.01;
  let lo = num(s['minimum']) ?? (exMin !== undefined ? exMin + step : undefined);
  let hi = num(s['maximum']) ?? (exMax !== undefined ? exMax - step : undefined);
  if (lo === undefined && hi === undefined) [lo, hi] = [0, 100];
  else if (lo === undefined) lo = (hi as number) - 100;
  else if (hi === undefined) hi = lo + 100;
  let l = lo as number;
  let h = hi as number;
  // zod's z.int() emits ±MAX_SAFE_INTEGER bounds; pick from a human-sized window near zero instead.
  if (h - l > 1000) {
    l = Math.min(Math.max(0, l), h - 100);
    h = l + 100;
  }
  const multipleOf = num(s['multipleOf']) ?? (integer ? 1 : undefined);
  if (multipleOf !== undefined && multipleOf > 0) {
    const kLo = Math.ceil(l / multipleOf);
    const kHi = Math.floor(h / multipleOf);
    if (kHi >= kLo) return intBetween(kLo, kHi, rng) * multipleOf;
    return l;
  }
  const v = l + rng() * (h - l);
  const rounded = Math.round(v * 100) / 100;
  return rounded >= l && rounded <= h ? rounded : v;
}

function gen(schema: JsonSchema, src: GeneratorSource, root: JsonSchema, depth: number): unknown {
  if (schema === true) return phrase(src, 1, 3);
  if (schema === false) return null;
  let s: Record<string, unknown> = schema;
  const ref = s['$ref'];
  if (typeof ref === 'string') return gen(resolveRef(ref, root), src, root, depth);
  if (Array.isArray(s['allOf'])) s = mergeAllOf(s, root);
  if ('const' in s) return s['const'];
  if (Array.isArray(s['enum']) && s['enum'].length > 0) return pick(s['enum'], src.rng);
  const branches = Array.isArray(s['anyOf']) ? s['anyOf'] : Array.isArray(s['oneOf']) ? s['oneOf'] : undefined;
  if (branches && branches.length > 0) {
    const nonNull = branches.filter((b) => asRecord(b)?.['type'] !== 'null');
    const branch = pick(nonNull.length > 0 ? nonNull : branches, src.rng) as JsonSchema;
    return gen(branch, src, root, depth);
  }
  switch (schemaType(s, src.rng)) {
    case 'object': {
      const props = asRecord(s['properties']) ?? {};
      const required = new Set(Array.isArray(s['required']) ? s['required'].filter((r): r is string => typeof r === 'string') : []);
      const out: Record<string, unknown> = {};
      for (const [name, sub] of Object.entries(props)) {
        // Optional properties appear about half the time, and never deep down, so recursive schemas terminate.
        const include = required.has(name) || (depth < MAX_DEPTH && src.rng() < 0.5);
        if (include) out[name] = gen(sub as JsonSchema, src, root, depth + 1);
      }
      for (const name of required) if (!(name in out)) out[name] = phrase(src, 1, 3);
      return out;
    }
    case 'array': {
      const min = num(s['minItems']) ?? 0;
      const max = num(s['maxItems']) ?? Number.POSITIVE_INFINITY;
      const prefix = Array.isArray(s['prefixItems']) ? (s['prefixItems'] as JsonSchema[]) : [];
      const items = (s['items'] ?? true) as JsonSchema;
      // One to three items (more if minItems says so): enough to look like data, small enough to read in a test.
      const lo = Math.max(min, Math.min(1, max));
      const count = depth >= MAX_DEPTH ? min : intBetween(lo, Math.min(max, Math.max(lo + 2, 3)), src.rng);
      const out: unknown[] = [];
      const seen = new Set<string>();
      const unique = s['uniqueItems'] === true;
      // Unique arrays draw up to 10 candidates per slot; a narrow item schema may yield fewer than `count` but never fewer than it can.
      for (let attempts = 0; out.length < count && attempts < count * 10; attempts++) {
        const sub = prefix[out.length] ?? items;
        const v = gen(sub, src, root, depth + 1);
        const k = JSON.stringify(v);
        if (unique && seen.has(k)) continue;
        seen.add(k);
        out.push(v);
      }
      return out;
    }
    case 'integer':
      return genNumber(s, true, src.rng);
    case 'number':
      return genNumber(s, false, src.rng);
    case 'boolean':
      return src.rng() < 0.5;
    case 'null':
      return null;
    default:
      return genString(s, src);
  }
}

/**
 * A value conforming to `schema` (objects, strings with min/maxLength/enum/format, numbers within
 * bounds, arrays within min/maxItems, booleans, anyOf/oneOf/allOf, local $ref), built from `src.words`.
 */
export function generateFromSchema(schema: JsonSchema, src: GeneratorSource): unknown {
  return gen(schema, src, schema, 0);
}

/** Drops the first required top-level property, or returns a value of the wrong type when there is none. */
function violate(value: unknown, schema: JsonSchema): unknown {
  const s = asRecord(schema);
  const required = Array.isArray(s?.['required']) ? s['required'] : [];
  const obj = asRecord(value);
  const first = required[0];
  if (obj && typeof first === 'string') {
    const copy = { ...obj };
    delete copy[first];
    return copy;
  }
  return typeof value === 'string' ? 42 : 'schema-violation';
}

// ---------------------------------------------------------------------------------------------
// Embeddings

function fnv1a(text: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * Hashed bag of words (feature hashing with a sign hash), L2-normalised: texts sharing words get a
 * higher cosine, which is what near-duplicate tests need. Values are float32-exact so the `float`
 * and `base64` encodings carry identical vectors.
 */
export function embedText(text: string, dimensions: number): number[] {
  const v = new Float64Array(dimensions);
  for (const m of text.toLowerCase().matchAll(/[\p{L}\p{N}]+/gu)) {
    const idx = fnv1a(m[0], 0) % dimensions;
    v[idx] = (v[idx] ?? 0) + (fnv1a(m[0], 0x9e3779b9) & 1 ? 1 : -1);
  }
  let norm = Math.hypot(...v);
  if (norm === 0) {
    // No words (or colliding signs cancelled out): still a unit vector, still a function of the text.
    v[fnv1a(text, 7) % dimensions] = 1;
    norm = 1;
  }
  return Array.from(v, (x) => Math.fround(x / norm));
}

// ---------------------------------------------------------------------------------------------
// Server

const ContentSchema = z.union([z.string(), z.array(z.looseObject({ type: z.string(), text: z.string().optional() }))]);
const ChatRequestSchema = z.looseObject({
  model: z.string().min(1),
  messages: z.array(z.looseObject({ role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']), content: ContentSchema.nullable().optional() })).min(1),
  seed: z.int().optional(),
  max_tokens: z.int().positive().optional(),
  max_completion_tokens: z.int().positive().optional(),
  temperature: z.number().min(0).max(2).optional(),
  stream: z.literal(false).optional(),
  response_format: z
    .discriminatedUnion('type', [
      z.looseObject({ type: z.literal('text') }),
      z.looseObject({ type: z.literal('json_object') }),
      z.looseObject({
        type: z.literal('json_schema'),
        json_schema: z.looseObject({ name: z.string().min(1), schema: z.record(z.string(), z.unknown()).optional(), strict: z.boolean().nullable().optional() }),
      }),
    ])
    .optional(),
});
type ChatRequest = z.infer<typeof ChatRequestSchema>;

const EmbeddingRequestSchema = z.looseObject({
  model: z.string().min(1),
  input: z.union([z.string(), z.array(z.string()).min(1)]),
  encoding_format: z.enum(['float', 'base64']).optional(),
  dimensions: z.int().min(1).max(4096).optional(),
});

function contentText(content: z.infer<typeof ContentSchema> | null | undefined): string {
  if (content == null) return '';
  if (typeof content === 'string') return content;
  return content.map((p) => p.text ?? '').join('\n');
}

function estimateTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

function openAiError(status: number, message: string, type: string, code: string | null = null, param: string | null = null) {
  return { status, body: { error: { message, type, param, code } } };
}

function chatContent(req: ChatRequest, fault: FaultStep): string {
  const rng = seededRandom(JSON.stringify({ messages: req.messages, seed: req.seed ?? null }));
  // The user turn carries the per-event seed text; the system prompt is shared, so it is only a fallback.
  const userText = req.messages.filter((m) => m.role === 'user').map((m) => contentText(m.content)).join('\n');
  const allText = req.messages.map((m) => contentText(m.content)).join('\n');
  const words = wordsFrom(userText).length > 0 ? wordsFrom(userText) : wordsFrom(allText);
  const src: GeneratorSource = { words, rng };
  const format = req.response_format;
  if (format?.type === 'json_schema' || format?.type === 'json_object') {
    const schema: JsonSchema = format.type === 'json_schema' && format.json_schema.schema ? (format.json_schema.schema as JsonSchema) : { type: 'object', properties: { summary: { type: 'string' }, keywords: { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 4 } }, required: ['summary', 'keywords'] };
    let value = generateFromSchema(schema, src);
    if (fault === 'schema_violation') value = violate(value, schema);
    const json = JSON.stringify(value);
    if (fault === 'malformed_json') return `Here is the JSON you asked for:\n\`\`\`json\n${json.slice(0, Math.max(1, Math.floor(json.length / 2)))}`;
    return json;
  }
  const sentences = Array.from({ length: intBetween(1, 3, rng) }, () => `${phrase(src, 6, 14)}.`);
  return sentences.join(' ');
}

export async function startFixtureLlm(opts: FixtureLlmOptions = {}): Promise<FixtureLlm> {
  const chatModels = opts.chatModels ?? [FIXTURE_CHAT_MODEL];
  const embeddingModels = opts.embeddingModels ?? [FIXTURE_EMBEDDING_MODEL];
  const defaultDims = opts.embeddingDimensions ?? 384;
  const requests: RecordedRequest[] = [];
  let plan = opts.faults;
  let cursor = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let closed = false;
  // Held responses and latency sleeps, released all at once on close so no test hangs on a held socket.
  const waiters = new Set<() => void>();
  // Requests held right now, and the tests waiting for a number of them.
  const held = new Set<RecordedRequest>();
  const heldWatchers = new Set<{ count: number; match: (req: RecordedRequest) => boolean; resolve: (held: RecordedRequest[]) => void }>();
  // Releases of the requests held by a 'hold' step, for release().
  const releasers = new Set<() => void>();
  const now = () => performance.timeOrigin + performance.now();

  const app = fastify({ logger: false, bodyLimit: 32 * 1024 * 1024, forceCloseConnections: true });

  // Fastify's own errors (unparseable JSON, wrong content type, body too large) in OpenAI's error shape,
  // so SDK clients see a message instead of a bare status.
  app.setErrorHandler((err, _req, reply) => {
    const statusCode = asRecord(err)?.['statusCode'];
    const status = typeof statusCode === 'number' && statusCode >= 400 ? statusCode : 500;
    const e = openAiError(status, err instanceof Error ? err.message : String(err), status < 500 ? 'invalid_request_error' : 'server_error');
    return reply.code(e.status).send(e.body);
  });
  app.setNotFoundHandler((req, reply) => {
    const e = openAiError(404, `Unknown request URL: ${req.method} ${req.url}`, 'invalid_request_error', 'unknown_url');
    return reply.code(e.status).send(e.body);
  });

  function wait(ms: number | undefined, reply: FastifyReply): Promise<void> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        if (timer) clearTimeout(timer);
        waiters.delete(done);
        reply.raw.off('close', done);
        resolve();
      };
      waiters.add(done);
      reply.raw.on('close', done);
      if (ms !== undefined) timer = setTimeout(done, ms);
    });
  }

  function record(method: string, path: string, body: unknown, text: string): RecordedRequest {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const rec: RecordedRequest = { index: requests.length, method, path, body, text, receivedAt: now(), inFlight, fault: 'ok' };
    requests.push(rec);
    if (plan && (plan.match?.(rec) ?? true)) {
      const seq = plan.sequence;
      if (seq.length > 0 && (plan.repeat || cursor < seq.length)) rec.fault = seq[cursor++ % seq.length] ?? 'ok';
    }
    return rec;
  }

  function setHeld(rec: RecordedRequest, on: boolean): void {
    rec.held = on;
    if (!on) {
      held.delete(rec);
      return;
    }
    held.add(rec);
    for (const w of [...heldWatchers]) {
      const matching = [...held].filter(w.match);
      if (matching.length >= w.count) {
        heldWatchers.delete(w);
        w.resolve(matching);
      }
    }
  }

  /**
   * Holds the response until the client disconnects or the fixture closes, and for a 'hold' step
   * also until release(). True when release() ended the hold (answer normally), false otherwise.
   */
  async function hold(rec: RecordedRequest, reply: FastifyReply, releasable: boolean): Promise<boolean> {
    let released = false;
    let release: (() => void) | undefined;
    const releasedByTest = new Promise<void>((resolve) => {
      release = () => {
        released = true;
        resolve();
      };
    });
    if (releasable && release) releasers.add(release);
    setHeld(rec, true);
    try {
      await Promise.race([wait(undefined, reply), ...(releasable ? [releasedByTest] : [])]);
    } finally {
      if (release) releasers.delete(release);
      setHeld(rec, false);
    }
    return released && !closed && !reply.raw.destroyed;
  }

  /** Runs a POST handler with latency, in-flight accounting and the non-content faults applied. */
  async function handlePost(rec: RecordedRequest, reply: FastifyReply, produce: () => { status: number; body: unknown; raw?: string }) {
    try {
      if (opts.latencyMs) await wait(opts.latencyMs, reply);
      const fault = rec.fault;
      if (fault === 'timeout' || fault === 'hold') {
        if (!(await hold(rec, reply, fault === 'hold'))) {
          // Never answer: the client gave up or the fixture is closing.
          reply.hijack();
          reply.raw.destroy();
          return reply;
        }
      }
      if (typeof fault === 'object') {
        if (fault.retryAfterSeconds !== undefined) reply.header('retry-after', String(fault.retryAfterSeconds));
        if (fault.retryAfterMs !== undefined) reply.header('retry-after-ms', String(fault.retryAfterMs));
        const e =
          fault.status === 429
            ? openAiError(429, 'Rate limit reached for requests (fixture fault).', 'requests', 'rate_limit_exceeded')
            : openAiError(fault.status, `Fixture fault: HTTP ${fault.status}.`, fault.status >= 500 ? 'server_error' : 'invalid_request_error');
        rec.status = fault.status;
        return reply.code(fault.status).send(e.body);
      }
      const out = produce();
      rec.status = out.status;
      if (out.raw !== undefined) return reply.code(out.status).type('application/json').send(out.raw);
      return reply.code(out.status).send(out.body);
    } finally {
      inFlight--;
      rec.respondedAt = now();
    }
  }

  app.get('/health', async () => ({ status: 'ok' }));

  const modelList = () =>
    [...chatModels, ...embeddingModels].map((id) => ({ id, object: 'model' as const, created: 1_700_000_000, owned_by: 'personahub-fixture' }));
  app.get('/v1/models', async () => ({ object: 'list', data: modelList() }));
  app.get<{ Params: { id: string } }>('/v1/models/:id', async (req, reply) => {
    const m = modelList().find((x) => x.id === req.params.id);
    if (m) return m;
    const e = openAiError(404, `The model \`${req.params.id}\` does not exist.`, 'invalid_request_error', 'model_not_found', 'model');
    return reply.code(e.status).send(e.body);
  });

  app.post('/v1/chat/completions', async (req, reply) => {
    const parsed = ChatRequestSchema.safeParse(req.body);
    const text = parsed.success ? parsed.data.messages.map((m) => contentText(m.content)).join('\n') : '';
    const rec = record('POST', '/v1/chat/completions', req.body, text);
    return handlePost(rec, reply, () => {
      if (!parsed.success) return openAiError(400, `Invalid chat completion request: ${z.prettifyError(parsed.error)}`, 'invalid_request_error');
      const body = parsed.data;
      if (!chatModels.includes(body.model)) return openAiError(404, `The model \`${body.model}\` does not exist or you do not have access to it.`, 'invalid_request_error', 'model_not_found', 'model');
      const content = chatContent(body, rec.fault);
      const promptTokens = estimateTokens(text);
      const completionTokens = estimateTokens(content);
      const id = createHash('sha256').update(JSON.stringify({ m: body.messages, s: body.seed ?? null })).digest('hex').slice(0, 24);
      return {
        status: 200,
        body: {
          id: `chatcmpl-${id}`,
          object: 'chat.completion',
          created: Math.floor(Date.now() / 1000),
          model: body.model,
          system_fingerprint: 'fp_fixture',
          choices: [{ index: 0, message: { role: 'assistant', content, refusal: null }, logprobs: null, finish_reason: 'stop' }],
          usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
        },
      };
    });
  });

  app.post('/v1/embeddings', async (req, reply) => {
    const parsed = EmbeddingRequestSchema.safeParse(req.body);
    const inputs = parsed.success ? (typeof parsed.data.input === 'string' ? [parsed.data.input] : parsed.data.input) : [];
    const rec = record('POST', '/v1/embeddings', req.body, inputs.join('\n'));
    return handlePost(rec, reply, () => {
      if (!parsed.success) return openAiError(400, `Invalid embeddings request: ${z.prettifyError(parsed.error)}`, 'invalid_request_error');
      const body = parsed.data;
      if (!embeddingModels.includes(body.model)) return openAiError(404, `The model \`${body.model}\` does not exist or is not an embedding model.`, 'invalid_request_error', 'model_not_found', 'model');
      if (rec.fault === 'malformed_json') return { status: 200, body: null, raw: '{"object": "list", "data": [' };
      const dims = body.dimensions ?? defaultDims;
      const used = rec.fault === 'schema_violation' ? inputs.slice(0, -1) : inputs;
      const data = used.map((input, index) => {
        const vec = embedText(input, dims);
        const embedding = body.encoding_format === 'base64' ? Buffer.from(Float32Array.from(vec).buffer).toString('base64') : vec;
        return { object: 'embedding', index, embedding };
      });
      const tokens = inputs.reduce((sum, s) => sum + estimateTokens(s), 0);
      return { status: 200, body: { object: 'list', data, model: body.model, usage: { prompt_tokens: tokens, total_tokens: tokens } } };
    });
  });

  await app.listen({ host: '127.0.0.1', port: opts.port ?? 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('fixture LLM: unexpected listen address');

  return {
    baseURL: `http://127.0.0.1:${address.port}/v1`,
    requests,
    setFaults(f) {
      plan = f;
      cursor = 0;
    },
    maxConcurrent: () => maxInFlight,
    whenHeld(count = 1, match = () => true) {
      const matching = [...held].filter(match);
      if (matching.length >= count) return Promise.resolve(matching);
      return new Promise((resolve) => heldWatchers.add({ count, match, resolve }));
    },
    release() {
      const all = [...releasers];
      for (const r of all) r();
      return all.length;
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const release of [...waiters]) release();
      await app.close();
    },
  };
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(entry)).href;
  } catch {
    return false;
  }
}

if (isMain()) {
  const portArg = process.argv.indexOf('--port');
  const port = portArg >= 0 ? Number(process.argv[portArg + 1]) : 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write('usage: fixture-llm.ts [--port N]\n');
    process.exit(2);
  }
  const server = await startFixtureLlm({ port });
  process.stdout.write(`${server.baseURL}\n`);
  const stop = () => void server.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

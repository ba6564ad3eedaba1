import { OpenAI, APIConnectionError, RateLimitError } from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  embedText,
  FIXTURE_CHAT_MODEL,
  FIXTURE_EMBEDDING_MODEL,
  generateFromSchema,
  seededRandom,
  startFixtureLlm,
  wordsFrom,
  type FixtureLlm,
  type JsonSchema,
} from '../helpers/fixture-llm.ts';
import { describeOpenAiCompat } from '../helpers/openai-compat-suite.ts';

describeOpenAiCompat('fixture LLM server', async () => {
  const f = await startFixtureLlm();
  return { baseURL: f.baseURL, model: FIXTURE_CHAT_MODEL, embeddingModel: FIXTURE_EMBEDDING_MODEL, close: () => f.close() };
});

const words = wordsFrom('A retired lighthouse keeper restores antique clocks and sails along the rugged northern coast');

function gen(schema: JsonSchema, seed = 'seed-1'): unknown {
  return generateFromSchema(schema, { words, rng: seededRandom(seed) });
}

function jsonSchemaOf(schema: z.ZodType): JsonSchema {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema);
  return rest;
}

describe('fixture schema-conforming generator', () => {
  const Persona = z.object({
    name: z.string().min(3).max(24),
    age: z.int().min(18).max(90),
    score: z.number().min(0).max(1),
    exclusive: z.number().gt(0).lt(1),
    count: z.int(),
    role: z.enum(['teacher', 'farmer', 'engineer']),
    kind: z.literal('persona'),
    email: z.email(),
    born: z.iso.datetime(),
    day: z.iso.date(),
    id: z.uuid(),
    tags: z.array(z.string().min(1).max(12)).min(2).max(4),
    flags: z.array(z.boolean()).max(0),
    active: z.boolean(),
    nickname: z.string().optional(),
    spouse: z.string().nullable(),
    address: z.object({ city: z.string().min(1), zip: z.string().length(5) }),
    stepCount: z.int().multipleOf(5).min(3).max(40),
  });
  const schema = jsonSchemaOf(Persona);

  it('produces values that the zod schema behind the JSON schema accepts, across many seeds', () => {
    for (let i = 0; i < 200; i++) {
      const value = gen(schema, `seed-${i}`);
      const r = Persona.safeParse(value);
      expect(r.success, r.success ? '' : `seed-${i}: ${z.prettifyError(r.error)}\n${JSON.stringify(value)}`).toBe(true);
    }
  });

  it('is deterministic per seed and varies across seeds', () => {
    expect(gen(schema, 'a')).toEqual(gen(schema, 'a'));
    const distinct = new Set(Array.from({ length: 20 }, (_, i) => JSON.stringify(gen(schema, `s${i}`))));
    expect(distinct.size).toBe(20);
  });

  it('builds strings from the prompt words', () => {
    const value = gen({ type: 'object', properties: { text: { type: 'string', minLength: 20, maxLength: 80 } }, required: ['text'] }) as { text: string };
    const used = wordsFrom(value.text);
    expect(used.length).toBeGreaterThan(0);
    for (const w of used) expect(words).toContain(w);
  });

  it('respects minLength / maxLength at the edges', () => {
    for (let i = 0; i < 50; i++) {
      const v = gen({ type: 'string', minLength: 7, maxLength: 7 }, `e${i}`) as string;
      expect(v).toHaveLength(7);
      expect(gen({ type: 'string', maxLength: 0 }, `z${i}`)).toBe('');
      expect((gen({ type: 'string', minLength: 200 }, `l${i}`) as string).length).toBeGreaterThanOrEqual(200);
    }
  });

  it('handles local $ref, anyOf, allOf, tuple prefixItems and uniqueItems', () => {
    const s: JsonSchema = {
      $defs: { Node: { type: 'object', properties: { label: { type: 'string' }, children: { type: 'array', items: { $ref: '#/$defs/Node' } } }, required: ['label'] } },
      type: 'object',
      properties: {
        tree: { $ref: '#/$defs/Node' },
        either: { anyOf: [{ type: 'integer', minimum: 5, maximum: 5 }, { type: 'null' }] },
        merged: { allOf: [{ type: 'object', properties: { a: { type: 'boolean' } }, required: ['a'] }, { properties: { b: { const: 3 } }, required: ['b'] }] },
        pair: { type: 'array', prefixItems: [{ type: 'integer', minimum: 1, maximum: 1 }, { type: 'string', enum: ['x'] }], minItems: 2, maxItems: 2 },
        uniq: { type: 'array', items: { enum: ['p', 'q', 'r'] }, uniqueItems: true, minItems: 3, maxItems: 3 },
      },
      required: ['tree', 'either', 'merged', 'pair', 'uniq'],
    };
    const Node: z.ZodType = z.lazy(() => z.object({ label: z.string(), children: z.array(Node).optional() }));
    const Expected = z.object({
      tree: Node,
      either: z.literal(5),
      merged: z.object({ a: z.boolean(), b: z.literal(3) }),
      pair: z.tuple([z.literal(1), z.literal('x')]),
      uniq: z.array(z.enum(['p', 'q', 'r'])).length(3),
    });
    for (let i = 0; i < 50; i++) {
      const v = gen(s, `r${i}`);
      const r = Expected.safeParse(v);
      expect(r.success, r.success ? '' : z.prettifyError(r.error)).toBe(true);
      if (r.success) expect(new Set(r.data.uniq).size).toBe(3);
    }
  });
});

describe('fixture embeddings', () => {
  const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * (b[i] ?? 0), 0);

  it('returns deterministic unit vectors where shared words mean higher cosine', () => {
    const a = embedText('the old lighthouse keeper repairs clocks', 384);
    const b = embedText('an old lighthouse keeper who repairs clocks', 384);
    const c = embedText('quarterly semiconductor revenue forecast', 384);
    expect(a).toHaveLength(384);
    expect(dot(a, a)).toBeCloseTo(1, 5);
    expect(embedText('the old lighthouse keeper repairs clocks', 384)).toEqual(a);
    expect(dot(a, b)).toBeGreaterThan(0.6);
    expect(dot(a, b)).toBeGreaterThan(dot(a, c));
  });

  it('gives texts without words a unit vector too', () => {
    const v = embedText('  ...  ', 16);
    expect(dot(v, v)).toBeCloseTo(1, 5);
  });
});

describe('fixture server behaviour', () => {
  let fixture: FixtureLlm | undefined;
  afterEach(async () => {
    await fixture?.close();
    fixture = undefined;
  });

  const chat = (client: OpenAI, content: string, seed?: number) =>
    client.chat.completions.create({
      model: FIXTURE_CHAT_MODEL,
      messages: [{ role: 'user', content }],
      max_tokens: 50,
      ...(seed === undefined ? {} : { seed }),
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] }, strict: true } },
    });

  it('answers identically for the same messages + seed and differently for another seed', async () => {
    fixture = await startFixtureLlm();
    const client = new OpenAI({ baseURL: fixture.baseURL, apiKey: 'x', maxRetries: 0 });
    const one = await chat(client, 'gardener beekeeper violinist poet', 1);
    const again = await chat(client, 'gardener beekeeper violinist poet', 1);
    const other = await chat(client, 'gardener beekeeper violinist poet', 2);
    expect(again.choices[0]?.message.content).toBe(one.choices[0]?.message.content);
    expect(other.choices[0]?.message.content).not.toBe(one.choices[0]?.message.content);
  });

  it('applies a fault plan only to matching requests, in order, and records status and timing', async () => {
    fixture = await startFixtureLlm({ faults: { match: (r) => r.text.includes('MARKER'), sequence: [{ status: 429, retryAfterSeconds: 3 }, 'schema_violation'] } });
    const client = new OpenAI({ baseURL: fixture.baseURL, apiKey: 'x', maxRetries: 0 });
    await expect(chat(client, 'plain request')).resolves.toBeDefined();
    const limited = await chat(client, 'MARKER one').catch((e: unknown) => e);
    expect(limited).toBeInstanceOf(RateLimitError);
    expect((limited as RateLimitError).headers.get('retry-after')).toBe('3');
    const violated = await chat(client, 'MARKER two');
    expect(JSON.parse(violated.choices[0]?.message.content ?? '')).not.toHaveProperty('a');
    const fine = await chat(client, 'MARKER three');
    expect(JSON.parse(fine.choices[0]?.message.content ?? '')).toHaveProperty('a');
    expect(fixture.requests.map((r) => r.status)).toEqual([200, 429, 200, 200]);
    for (const r of fixture.requests) expect(r.respondedAt ?? 0).toBeGreaterThanOrEqual(r.receivedAt);
  });

  it('serves non-JSON content on malformed_json', async () => {
    fixture = await startFixtureLlm({ faults: { sequence: ['malformed_json'] } });
    const client = new OpenAI({ baseURL: fixture.baseURL, apiKey: 'x', maxRetries: 0 });
    const res = await chat(client, 'anything at all');
    expect(() => JSON.parse(res.choices[0]?.message.content ?? '')).toThrow();
  });

  it('holds a timeout until the client gives up, and releases held requests on close', async () => {
    fixture = await startFixtureLlm({ faults: { sequence: ['timeout'], repeat: true } });
    const client = new OpenAI({ baseURL: fixture.baseURL, apiKey: 'x', maxRetries: 0, timeout: 100 });
    await expect(chat(client, 'held')).rejects.toBeInstanceOf(APIConnectionError);
    const patient = new OpenAI({ baseURL: fixture.baseURL, apiKey: 'x', maxRetries: 0, timeout: 600_000 });
    const held = chat(patient, 'held forever').catch((e: unknown) => e);
    // Close only once the request is known to be held by the fixture, however long it takes to arrive.
    const [heldRequest] = await fixture.whenHeld(1, (r) => r.text === 'held forever');
    expect(heldRequest?.fault).toBe('timeout');
    expect(fixture.release()).toBe(0); // a 'timeout' hold is not released, only closed
    await fixture.close();
    expect(await held).toBeInstanceOf(APIConnectionError);
    expect(fixture.requests.map((r) => r.held)).toEqual([false, false]);
  });

  it('holds requests until released, then answers them normally', async () => {
    fixture = await startFixtureLlm({ faults: { match: (r) => r.text.includes('HOLD'), sequence: ['hold'], repeat: true } });
    const client = new OpenAI({ baseURL: fixture.baseURL, apiKey: 'x', maxRetries: 0, timeout: 600_000 });
    let answered = false;
    const held = chat(client, 'HOLD me').then((r) => {
      answered = true;
      return r;
    });
    await fixture.whenHeld(1);
    // Another request is not held and passes the held one.
    await expect(chat(client, 'free')).resolves.toBeDefined();
    expect(answered).toBe(false);
    expect(fixture.release()).toBe(1);
    expect(JSON.parse((await held).choices[0]?.message.content ?? '')).toHaveProperty('a');
    expect(fixture.requests.map((r) => [r.fault, r.status])).toEqual([['hold', 200], ['ok', 200]]);
  });

  it('tracks the highest number of concurrent requests', async () => {
    // Every request is held until all three are in flight, so they overlap however slow the machine.
    fixture = await startFixtureLlm({ faults: { sequence: ['hold'], repeat: true } });
    const client = new OpenAI({ baseURL: fixture.baseURL, apiKey: 'x', maxRetries: 0, timeout: 600_000 });
    const all = Promise.all([chat(client, 'a'), chat(client, 'b'), chat(client, 'c')]);
    await fixture.whenHeld(3);
    expect(fixture.release()).toBe(3);
    await all;
    expect(fixture.maxConcurrent()).toBe(3);
    expect(fixture.requests.map((r) => r.inFlight).sort()).toEqual([1, 2, 3]);
  });

  it('drops a vector on embeddings schema_violation and answers health checks', async () => {
    fixture = await startFixtureLlm({ faults: { sequence: ['schema_violation'] }, embeddingDimensions: 8 });
    const client = new OpenAI({ baseURL: fixture.baseURL, apiKey: 'x', maxRetries: 0 });
    const res = await client.embeddings.create({ model: FIXTURE_EMBEDDING_MODEL, input: ['a b', 'c d'], encoding_format: 'float' });
    expect(res.data).toHaveLength(1);
    expect(res.data[0]?.embedding).toHaveLength(8);
    const health = await fetch(fixture.baseURL.replace(/\/v1$/, '/health'));
    expect(await health.json()).toEqual({ status: 'ok' });
  });
});

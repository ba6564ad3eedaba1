import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApi, type TestApi } from '../../helpers/api.ts';
import { createTestPipeline, type TestPipeline } from '../../helpers/pipeline.ts';

/** The subset of JSON Schema (2020-12, as OpenAPI 3.1 uses it) the API's document is written in. */
interface Schema {
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  patternProperties?: Record<string, Schema>;
  items?: Schema;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  pattern?: string;
  format?: string;
  anyOf?: Schema[];
  oneOf?: Schema[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
}

interface Parameter { name: string; in: 'path' | 'query' | 'header'; required?: boolean; schema: Schema }
interface Operation {
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema: Schema }> };
  responses: Record<string, { content?: Record<string, { schema: Schema }> }>;
}
interface Document { openapi: string; paths: Record<string, Record<string, Operation>> }

/** Values the schema accepts: what a well-behaved client sends. */
function valid(schema: Schema, ids: readonly string[]): fc.Arbitrary<unknown> {
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const union = schema.anyOf ?? schema.oneOf;
  if (union) return fc.oneof(...union.map((s) => valid(s, ids)));
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case 'string':
      if (schema.pattern === '^[0-9a-f]{32}$') return fc.oneof(fc.constantFrom(...ids), fc.stringMatching(/^[0-9a-f]{32}$/));
      if (schema.format === 'uuid') return fc.uuid();
      if (schema.pattern) return fc.stringMatching(new RegExp(schema.pattern)).filter((s) => s.length >= (schema.minLength ?? 0) && s.length <= (schema.maxLength ?? Infinity));
      return fc.string({ minLength: schema.minLength ?? 0, maxLength: Math.min(schema.maxLength ?? 60, 60) });
    case 'integer':
      return fc.integer({ min: schema.minimum ?? -1_000, max: Math.min(schema.maximum ?? 1_000_000, Number.MAX_SAFE_INTEGER) });
    case 'number':
      return fc.double({ min: schema.minimum ?? -1e6, max: schema.maximum ?? 1e6, noNaN: true });
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array':
      return fc.array(valid(schema.items ?? {}, ids), { minLength: schema.minItems ?? 0, maxLength: Math.min(schema.maxItems ?? 4, 4) });
    case 'object': {
      const props = schema.properties ?? {};
      const record = Object.fromEntries(Object.entries(props).map(([k, s]) => [k, valid(s, ids)]));
      return fc.record(record, { requiredKeys: schema.required ?? [] });
    }
    default:
      return fc.jsonValue();
  }
}

/** Filter expressions: well-formed ones of the filter language, and strings that only look like them. */
const whereArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom('age>=30', 'occupation=nurse', 'trait=curious', 'country!=Nigeria', 'age<50,sex=female', 'hobby=chess,age>18', 'language="Yoruba"'),
  fc.tuple(fc.constantFrom('age', 'occupation', 'city', 'skill', 'shoe'), fc.constantFrom('=', '!=', '>=', '<', '=='), fc.string({ maxLength: 12 })).map(([a, o, v]) => `${a}${o}${v}`),
);

/** Anything at all in place of a value: what a careless or hostile client sends. */
const noise: fc.Arbitrary<unknown> = fc.oneof(fc.jsonValue(), fc.string(), fc.constant(''), fc.integer(), fc.constant(null));

interface Request { method: string; url: string; headers: Record<string, string>; payload?: string }

function request(path: string, method: string, op: Operation, ids: readonly string[], keys: TestApi['keys']): fc.Arbitrary<Request> {
  const params = op.parameters ?? [];
  const value = (s: Schema) => fc.oneof({ weight: 4, arbitrary: valid(s, ids) }, { weight: 1, arbitrary: noise });
  const pathArb = fc.record(Object.fromEntries(params.filter((p) => p.in === 'path').map((p) => [p.name, value(p.schema)])));
  // Each query parameter is left out three times in four, so a request often has only valid ones and gets past validation.
  const optional = (a: fc.Arbitrary<unknown>) => fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: a });
  const queryArb = fc.record(Object.fromEntries(params.filter((p) => p.in === 'query').map((p) => [p.name, optional(p.name === 'where' ? whereArb : value(p.schema))])))
    .map((q) => Object.fromEntries(Object.entries(q).filter(([, v]) => v !== undefined)));
  const jsonBody = op.requestBody?.content['application/json']?.schema;
  const bodyArb: fc.Arbitrary<unknown> = jsonBody ? fc.oneof({ weight: 4, arbitrary: valid(jsonBody, ids) }, { weight: 1, arbitrary: noise }) : fc.constant(undefined);
  const authArb = fc.constantFrom<Record<string, string>>({}, { authorization: `Bearer ${keys.read}` }, { authorization: `Bearer ${keys.write}` }, { 'x-api-key': keys.write }, { authorization: 'Bearer phk_forged' });
  return fc.record({ path: pathArb, query: queryArb, body: bodyArb, auth: authArb }).map(({ path: p, query, body, auth }) => {
    const url = path.replace(/\{(\w+)\}/g, (_m, name: string) => encodeURIComponent(typeof p[name] === 'string' ? (p[name] as string) : JSON.stringify(p[name])));
    const qs = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)])).toString();
    return {
      method: method.toUpperCase(),
      url: qs ? `${url}?${qs}` : url,
      headers: { ...auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    };
  });
}

/**
 * A property-based fuzz run of the API against its own OpenAPI document: requests are generated from the
 * document's parameter and body schemas (mostly valid values, some noise, every kind of key), and every
 * response must be documented for its status and match the documented schema. No request may get a 5xx.
 */
describe('HTTP API fuzzed from its OpenAPI document', () => {
  let t: TestPipeline;
  let api: TestApi;
  let ids: string[];

  beforeAll(async () => {
    t = await createTestPipeline({ PERSONAHUB_MODE: 'sampler', PERSONAHUB_EMBEDDER: 'hash' });
    await t.startStages();
    const seeds = t.seeds(12);
    await t.ingest(seeds);
    expect(await t.observer.waitUntilSettled(new Set(seeds.map((s) => s.id)), { timeoutMs: 240_000 })).toBe(true);
    // Jobs the fuzzer submits go to the seed topic; nothing needs to draft them.
    await t.stopStages();
    api = await createTestApi(t);
    ids = (await api.store.corpus.list({}, { limit: 100 })).items.map((p) => p.id);
  });

  afterAll(async () => {
    await api?.close();
    await t?.close();
  });

  it('answers every generated request without a 5xx and as the document says', async () => {
    const doc = (await api.app.inject({ method: 'GET', url: '/openapi.json' })).json<Document>();
    expect(doc.openapi).toBe('3.1.0');
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    (addFormatsModule as unknown as (a: Ajv2020) => void)(ajv);
    const operations = Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ path, method, op })));
    expect(operations.length).toBeGreaterThanOrEqual(13);
    const seen = new Map<string, Set<number>>();

    await fc.assert(fc.asyncProperty(
      fc.constantFrom(...operations).chain((o) => request(o.path, o.method, o.op, ids, api.keys).map((r) => ({ ...o, r }))),
      async ({ path, method, op, r }) => {
        const res = await api.app.inject({ method: r.method as 'GET', url: r.url, headers: r.headers, ...(r.payload === undefined ? {} : { payload: r.payload }) });
        const where = `${r.method} ${r.url} ${r.payload ?? ''} -> ${res.statusCode} ${res.body.slice(0, 300)}`;
        expect(res.statusCode, where).toBeLessThan(500);
        const documented = op.responses[String(res.statusCode)] ?? op.responses[`${String(res.statusCode)[0]}XX`];
        expect(documented, `undocumented status: ${where}`).toBeDefined();
        const schema = documented?.content?.['application/json']?.schema;
        if (schema && String(res.headers['content-type']).startsWith('application/json')) {
          const validate = ajv.compile(schema);
          expect(validate(res.json()), `${where}\n${ajv.errorsText(validate.errors)}`).toBe(true);
        }
        const key = `${method.toUpperCase()} ${path}`;
        seen.set(key, (seen.get(key) ?? new Set()).add(res.statusCode));
      },
    ), { numRuns: 600, seed: 17, endOnFailure: true });

    // The run reached every operation, and got past validation and auth on the routes that read personas.
    expect([...seen.keys()].length).toBe(operations.length);
    expect(seen.get('GET /personas')?.has(200)).toBe(true);
    expect(seen.get('GET /personas/{id}')?.has(200)).toBe(true);
    expect(seen.get('POST /search')?.has(200)).toBe(true);
  });
});

import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../config/index.ts';
import { openStore } from '../../../store/open.ts';
import type { Store } from '../../../store/index.ts';
import { hashEmbed } from '../../../llm/embedder.ts';
import { MemoryStore } from '../../helpers/context.ts';
import { parsePersonaLine, personaLine } from '../../../corpus/persona-json.ts';
import { samplePersona } from '../../helpers/samples.ts';

/** One contract, both stores: the same SQL must behave the same on PGlite and on the PostgreSQL server. */
const base = loadConfig();
const database = `store_${randomUUID().replaceAll('-', '').slice(0, 12)}`;

const variants: { name: string; open: () => Promise<Store> }[] = [
  { name: 'pglite', open: () => openStore({ ...base, store: 'pglite', pgliteDir: 'memory://' }) },
  { name: 'postgres', open: () => openStore({ ...base, store: 'postgres', databaseUrl: base.databaseUrl.replace(/\/[^/]+$/, `/${database}`) }) },
];

// The postgres variant's database does not exist yet: openStore creates it (3D000 → CREATE DATABASE).

afterAll(async () => {
  const c = new pg.Client(base.databaseUrl);
  await c.connect();
  await c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  await c.end();
});

describe.each(variants)('store contract: $name', ({ open }) => {
  let store: Store;
  beforeAll(async () => {
    store = await open();
    await store.migrate();
    await store.migrate(); // idempotent
  });
  afterAll(async () => store?.close());

  it('upserts idempotently by (id, version)', async () => {
    const p = { ...samplePersona(), id: 'p1'.padEnd(32, '0') };
    const validated = { ...p, validation: { textHash: 'h', checks: [], repaired: [], validatedAt: 1 } };
    // Each write comes from another input record (delivery), as re-ingested or replayed copies do.
    expect(await store.upsertPersona(validated, 'validated:0:1')).toBe('INSERTED');
    expect(await store.upsertPersona(validated, 'validated:0:2')).toBe('UNCHANGED');
    expect(await store.upsertPersona({ ...validated, version: 2, description: `${p.description} Updated.` }, 'validated:0:3')).toBe('UPDATED');
    // Same version, re-generated in another mode: the new text wins, and re-delivering it changes nothing.
    const regenerated = { ...validated, version: 2, description: `${p.description} Updated again.`, provenance: { ...p.provenance, mode: 'LLM' as const, model: 'gemma' } };
    expect(await store.upsertPersona(regenerated, 'validated:0:4')).toBe('UPDATED');
    expect(await store.upsertPersona(regenerated, 'validated:0:5')).toBe('UNCHANGED');
    expect(await store.upsertPersona({ ...regenerated, version: 1 }, 'validated:0:6')).toBe('UNCHANGED');
    expect(await store.countPersonas()).toBe(1);
    const row = await store.getPersona(p.id);
    expect(row?.description).toMatch(/Updated again\.$/);
    expect(row?.model).toBe('gemma');
    expect(row?.embedding).toHaveLength(384);
    expect(row?.embedding[0]).toBeCloseTo(p.enrichment?.embedding[0] ?? NaN, 5);
  });

  it('keeps the written facets and the LLM-written modalities: read back and exported, the persona is the one indexed', async () => {
    const p = samplePersona({ id: 'p9'.padEnd(32, '0'), provenance: { ...samplePersona().provenance, mode: 'LLM', model: 'qwen' } });
    if (!p.enrichment) throw new Error('samplePersona is enriched');
    const indexed = {
      ...p,
      facets: { shortPersona: 'A pediatric nurse in Lagos who explains vaccines.', professional: 'Runs the vaccination clinic.', family: 'Lives with her two daughters.', leisure: 'Sings in a choir.', seedRelation: 'Reads every schedule update.' },
      enrichment: { ...p.enrichment, modalitiesSource: 'LLM' as const, modalitiesModel: 'qwen', backstory: 'Trained in Ibadan.', speakingStyle: 'Unhurried.', values: ['patience'], routines: ['Night shifts, then market on Saturday.'] },
      validation: { textHash: 'h9', checks: [], repaired: [], validatedAt: 9 },
    };
    expect(await store.upsertPersona(indexed, 'validated:0:90')).toBe('INSERTED');
    const back = await store.readPersona(indexed.id);
    // The embedding is stored as float4; everything else comes back as written.
    const { embedding, ...modalities } = indexed.enrichment;
    expect(back).toMatchObject({ ...indexed, enrichment: modalities });
    expect(back?.enrichment?.embedding).toHaveLength(embedding.length);
    // The export line of the persona read back imports as the same persona.
    if (!back) throw new Error('not read back');
    expect(parsePersonaLine(personaLine(back), 'line 1')).toEqual(back);
  });

  it('refuses a statement the database rejects with a permanent PH_STORE_QUERY', async () => {
    // A 3-dimensional vector for a vector(384) column: the statement is wrong, retrying cannot help.
    const p = { ...samplePersona(), id: 'bad'.padEnd(32, '0'), validation: { textHash: 'b', checks: [], repaired: [], validatedAt: 1 } };
    const bad = { ...p, enrichment: p.enrichment && { ...p.enrichment, embedding: [1, 0, 0] } };
    const error: unknown = await store.upsertPersona(bad, 'validated:0:1').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'PH_STORE_QUERY', transient: false, dependency: undefined });
    expect((error as Error).message).toMatch(/expected 384 dimensions, not 3/);
  });

  it('claims dedup signatures once; the owner sees itself, others see the owner', async () => {
    expect(await store.claimSignature('text-sha256', 'abc', 'owner')).toBe('owner');
    expect(await store.claimSignature('text-sha256', 'abc', 'owner')).toBe('owner');
    expect(await store.claimSignature('text-sha256', 'abc', 'other')).toBe('owner');
  });

  it('searches by cosine and finds the nearest other persona', async () => {
    const texts = ['a pediatric nurse who coaches chess', 'a dairy farmer worried about drought', 'a video game designer who streams at night'];
    for (const [i, description] of texts.entries()) {
      const p = samplePersona({ id: `s${i}`.padEnd(32, '0'), description: `Amara Okafor, ${description}, with a long enough description.` });
      await store.upsertPersona({ ...p, validation: { textHash: `t${i}`, checks: [], repaired: [], validatedAt: 1 } }, `validated:0:${i}`);
    }
    const hits = await store.search(hashEmbed('dairy farmer drought', 384), 2);
    expect(hits[0]?.id).toBe('s1'.padEnd(32, '0'));
    expect(hits[0]?.score).toBeGreaterThan(hits[1]?.score ?? 1);
    const near = await store.nearest(hashEmbed('Amara Okafor, a dairy farmer worried about drought, with a long enough description.', 384), 'none');
    expect(near?.id).toBe('s1'.padEnd(32, '0'));
    expect(near?.score).toBeGreaterThan(0.99);
  });

  it('lists embeddings in id order and records cluster ids', async () => {
    const rows = await store.embeddings(100);
    expect(rows.map((r) => r.id)).toEqual([...rows.map((r) => r.id)].sort());
    expect(rows.every((r) => r.embedding.length === 384)).toBe(true);
    await store.setClusters(rows.map((r, i) => ({ id: r.id, cluster: i % 2 })));
    // Other personas of this file may share the text, so the vector: the row is among the nearest, tied or not.
    const hits = await store.search(rows[1]?.embedding ?? [], 100);
    const nearest = hits.filter((h) => h.score >= (hits[0]?.score ?? 1) - 1e-6);
    expect(nearest.map((h) => h.id)).toContain(rows[1]?.id);
    expect(hits.find((h) => h.id === rows[1]?.id)?.cluster).toBe(1);
  });

  it('records the embedding space once and refuses another model or size', async () => {
    await store.checkEmbeddingSpace('model-a', 384);
    await store.checkEmbeddingSpace('model-a', 384);
    await expect(store.checkEmbeddingSpace('model-b', 384)).rejects.toMatchObject({ code: 'PH_STORE_EMBEDDING_MISMATCH' });
    await expect(store.checkEmbeddingSpace('model-a', 768)).rejects.toThrow(/768-dim vectors but the store is configured for 384/);
  });
});

/**
 * The contracts the runner and the indexer rely on for exactly-once (input claims, a delivery's redo
 * of its write), on both stores and on the in-memory store the unit tests use in their place, so the
 * fake cannot drift from the real ones. Runs after the block above, so sharing its database is safe.
 */
describe.each([...variants, { name: 'memory', open: async (): Promise<Store> => new MemoryStore() }])('delivery contracts: $name', ({ open }) => {
  let store: Store;
  beforeAll(async () => {
    store = await open();
    await store.migrate();
  });
  afterAll(async () => store?.close());

  it('gives a delivery redoing its write the outcome it first got; other deliveries get UNCHANGED', async () => {
    const p = { ...samplePersona(), id: 'redo'.padEnd(32, '0'), validation: { textHash: 'r', checks: [], repaired: [], validatedAt: 1 } };
    expect(await store.upsertPersona(p, 'validated:2:10')).toBe('INSERTED');
    // Its Kafka transaction aborted; the same record is processed again and must still say INSERTED.
    expect(await store.upsertPersona(p, 'validated:2:10')).toBe('INSERTED');
    // A copy at another offset (re-ingested seed) finds it there.
    expect(await store.upsertPersona(p, 'validated:0:77')).toBe('UNCHANGED');
    // That copy did not take the row over: the first delivery's redo still gets INSERTED.
    expect(await store.upsertPersona(p, 'validated:2:10')).toBe('INSERTED');

    const v2 = { ...p, version: 2, description: `${p.description} Now retired.` };
    expect(await store.upsertPersona(v2, 'validated:2:11')).toBe('UPDATED');
    expect(await store.upsertPersona(v2, 'validated:2:11')).toBe('UPDATED');
    expect(await store.upsertPersona(v2, 'validated:1:5')).toBe('UNCHANGED');
    // The delivery of v1 redone now finds a newer version, written by another delivery.
    expect(await store.upsertPersona(p, 'validated:2:10')).toBe('UNCHANGED');
    expect((await store.getPersona(p.id))?.description).toMatch(/Now retired\.$/);
  });

  it('claims inputs first-come per stage and identity, across calls and within one call', async () => {
    expect(await store.claimInputs('draft', [])).toEqual(new Map());
    const first = await store.claimInputs('draft', [{ identity: 'seed-a', delivery: 'seed:0:1' }, { identity: 'seed-b', delivery: 'seed:0:2' }]);
    expect(first).toEqual(new Map([['seed-a', 'seed:0:1'], ['seed-b', 'seed:0:2']]));
    // A re-ingested seed-a at a new offset is owned by the first delivery; seed-c is new.
    const second = await store.claimInputs('draft', [{ identity: 'seed-c', delivery: 'seed:1:5' }, { identity: 'seed-a', delivery: 'seed:1:6' }]);
    expect(second).toEqual(new Map([['seed-c', 'seed:1:5'], ['seed-a', 'seed:0:1']]));
    // The same record redelivered after a crash still owns its claim.
    expect(await store.claimInputs('draft', [{ identity: 'seed-a', delivery: 'seed:0:1' }])).toEqual(new Map([['seed-a', 'seed:0:1']]));
    // The same identity twice in one chunk: the earlier claim wins, later calls agree.
    const twice = await store.claimInputs('draft', [{ identity: 'seed-d', delivery: 'seed:2:8' }, { identity: 'seed-d', delivery: 'seed:2:9' }]);
    expect(twice).toEqual(new Map([['seed-d', 'seed:2:8']]));
    expect((await store.claimInputs('draft', [{ identity: 'seed-d', delivery: 'seed:2:9' }])).get('seed-d')).toBe('seed:2:8');
    // Claims are per stage: another stage processing the same identity owns its own claim.
    expect(await store.claimInputs('enrich', [{ identity: 'seed-a', delivery: 'draft:0:3' }])).toEqual(new Map([['seed-a', 'draft:0:3']]));
  });

  it('agrees on one owner when several claim the same identity at once', async () => {
    const calls = Array.from({ length: 8 }, (_, i) => store.claimInputs('validate', [{ identity: `own-${i}`, delivery: `enriched:${i}:1` }, { identity: 'contested', delivery: `enriched:${i}:2` }]));
    const results = await Promise.all(calls);
    const owners = new Set(results.map((r) => r.get('contested')));
    expect(owners.size).toBe(1);
    expect([...owners][0]).toMatch(/^enriched:[0-7]:2$/);
    results.forEach((r, i) => expect(r.get(`own-${i}`)).toBe(`enriched:${i}:1`));
  });

  it('releases an input claim only for the delivery that owns it', async () => {
    await store.claimInputs('index', [{ identity: 'persona-x', delivery: 'validated:0:1' }]);
    // Another delivery (a skipped copy) cannot free it.
    await store.releaseInput('index', 'persona-x', 'validated:0:2');
    expect((await store.claimInputs('index', [{ identity: 'persona-x', delivery: 'validated:0:3' }])).get('persona-x')).toBe('validated:0:1');
    // The owner, dead-lettered, gives it back; a later replay of that dead letter then owns it.
    await store.releaseInput('index', 'persona-x', 'validated:0:1');
    expect((await store.claimInputs('index', [{ identity: 'persona-x', delivery: 'validated:0:9' }])).get('persona-x')).toBe('validated:0:9');
    // Releasing in one stage leaves the same identity's claim in another stage alone.
    await store.claimInputs('draft', [{ identity: 'persona-x', delivery: 'seed:0:1' }]);
    await store.releaseInput('index', 'persona-x', 'validated:0:9');
    expect((await store.claimInputs('draft', [{ identity: 'persona-x', delivery: 'seed:0:2' }])).get('persona-x')).toBe('seed:0:1');
  });
});

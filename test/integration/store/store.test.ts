import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../config/index.ts';
import { openStore } from '../../../store/open.ts';
import type { Store } from '../../../store/index.ts';
import { hashEmbed } from '../../../llm/embedder.ts';
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
    expect(await store.upsertPersona(validated)).toBe('INSERTED');
    expect(await store.upsertPersona(validated)).toBe('UNCHANGED');
    expect(await store.upsertPersona({ ...validated, version: 2, description: `${p.description} Updated.` })).toBe('UPDATED');
    // Same version, re-generated in another mode: the new text wins, and re-delivering it changes nothing.
    const regenerated = { ...validated, version: 2, description: `${p.description} Updated again.`, provenance: { ...p.provenance, mode: 'LLM' as const, model: 'gemma' } };
    expect(await store.upsertPersona(regenerated)).toBe('UPDATED');
    expect(await store.upsertPersona(regenerated)).toBe('UNCHANGED');
    expect(await store.upsertPersona({ ...regenerated, version: 1 })).toBe('UNCHANGED');
    expect(await store.countPersonas()).toBe(1);
    const row = await store.getPersona(p.id);
    expect(row?.description).toMatch(/Updated again\.$/);
    expect(row?.model).toBe('gemma');
    expect(row?.embedding).toHaveLength(384);
    expect(row?.embedding[0]).toBeCloseTo(p.enrichment?.embedding[0] ?? NaN, 5);
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
      await store.upsertPersona({ ...p, validation: { textHash: `t${i}`, checks: [], repaired: [], validatedAt: 1 } });
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
    const hits = await store.search(rows[1]?.embedding ?? [], 1);
    expect(hits[0]?.id).toBe(rows[1]?.id);
    expect(hits[0]?.cluster).toBe(1);
  });

  it('records the embedding space once and refuses another model or size', async () => {
    await store.checkEmbeddingSpace('model-a', 384);
    await store.checkEmbeddingSpace('model-a', 384);
    await expect(store.checkEmbeddingSpace('model-b', 384)).rejects.toMatchObject({ code: 'PH_STORE_EMBEDDING_MISMATCH' });
    await expect(store.checkEmbeddingSpace('model-a', 768)).rejects.toThrow(/768-dim vectors but the store is configured for 384/);
  });
});

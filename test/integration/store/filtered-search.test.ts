import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqlStore } from '../../../store/sql-store.ts';
import { openStore } from '../../../store/open.ts';
import type { PersonaFilter } from '../../../store/query.ts';
import { createTestPipeline, type TestPipeline } from '../../helpers/pipeline.ts';

/** Rows in the scratch store, one in RARE_EVERY kept by the selective filter, and the page size asked for. */
const ROWS = 3000;
const RARE_EVERY = 100;
const LIMIT = 20;

/**
 * Search with an attribute filter that keeps 1% of the rows. A plain HNSW scan looks at ef_search (40)
 * candidates and the filter then keeps the ~1% that pass, so it returns fewer rows than asked for; the
 * store's search turns pgvector's iterative scan on, so the index keeps producing candidates until the
 * page is full. Sequential scans are switched off for this test's database, so both queries go through
 * the index (on a table this small the planner might otherwise sort the filtered rows and hide the defect).
 */
describe('filtered vector search', () => {
  let t: TestPipeline;
  let store: SqlStore | undefined;
  let client: pg.Client;
  const query = Array.from({ length: 384 }, (_, i) => Math.sin(i + 1));
  const vector = `[${query.join(',')}]`;
  const rare: PersonaFilter = { where: [{ attribute: 'occupation', kind: 'string', op: '=', value: 'lighthouse keeper' }] };

  beforeAll(async () => {
    t = await createTestPipeline({ PERSONAHUB_MODE: 'sampler', PERSONAHUB_EMBEDDER: 'hash' });
    const tables = await openStore(t.config);
    await tables.migrate();
    await tables.close();
    client = new pg.Client(t.config.databaseUrl);
    await client.connect();
    // Deterministic vectors made in SQL (sines of the row number), so the store fills in one statement.
    await client.query(
      `INSERT INTO personas (id, version, seed_id, name, age, occupation, locale, description, attributes, modalities, mode, model, embedding, embedding_model, created_at)
       SELECT md5(g::text), 1, md5(g::text), 'n' || g, 30, CASE WHEN g % $2 = 0 THEN 'lighthouse keeper' ELSE 'clerk' END, 'en-GB', 'd' || g,
              '{}', '{}', 'SAMPLER', 'sampler',
              (SELECT ('[' || string_agg(sin(g * 7.0 + i * (1 + g % 13))::text, ',') || ']') FROM generate_series(1, 384) AS i)::vector,
              'hash-bow-384', now()
       FROM generate_series(1, $1::int) AS g`, [ROWS, RARE_EVERY]);
    await client.query('ANALYZE personas');
    const database = new URL(t.config.databaseUrl).pathname.slice(1);
    await client.query(`ALTER DATABASE ${database} SET enable_seqscan = off`);
    await client.query('SET enable_seqscan = off');
    // Opened after the ALTER: the store's connections start with sequential scans off.
    store = await openStore(t.config);
  });

  afterAll(async () => {
    await client?.end();
    await store?.close();
    await t?.close();
  });

  it('is short of rows with a plain HNSW scan (the defect the store avoids)', async () => {
    const plan = await client.query<{ 'QUERY PLAN': string }>(
      `EXPLAIN SELECT id FROM personas WHERE occupation = 'lighthouse keeper' ORDER BY embedding <=> $1::vector LIMIT ${LIMIT}`, [vector]);
    expect(plan.rows.map((r) => r['QUERY PLAN']).join('\n')).toContain('personas_embedding_hnsw');
    const plain = await client.query(`SELECT id FROM personas WHERE occupation = 'lighthouse keeper' ORDER BY embedding <=> $1::vector LIMIT ${LIMIT}`, [vector]);
    expect(plain.rowCount).toBeLessThan(LIMIT);
  });

  it('fills the page from the rows the filter keeps, through the index', async () => {
    const hits = await store?.corpus.search(query, rare, LIMIT);
    expect(hits).toHaveLength(LIMIT);
    expect(hits?.every((h) => h.occupation === 'lighthouse keeper')).toBe(true);
    const scores = hits?.map((h) => h.score) ?? [];
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
  });
});

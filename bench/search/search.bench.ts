import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { loadConfig } from '../../config/index.ts';
import { hashEmbedder } from '../../llm/embedder.ts';
import { processors } from '../../processors/registry.ts';
import type { SharedContext } from '../../runtime/processor.ts';
import type { Persona } from '../../schemas/types.generated.ts';
import type { SqlClient } from '../../store/index.ts';
import { openPostgresClient, pgliteClient } from '../../store/open.ts';
import { filterSql, searchPersonas, type PersonaFilter } from '../../store/query.ts';
import { SqlStore } from '../../store/sql-store.ts';
import { BenchError, figure, rate, takeTurns, timed, type Benchmark, type BenchContext, type Figure } from '../harness.ts';
import { benchDatabase } from '../runner/kafka-bench.ts';
import { benchEnv } from '../runner/runner.bench.ts';
import { benchSeeds } from '../runner/seeds.ts';

/**
 * Vector search (issue 19, benchmark 6): recall@10 and queries/s of the store's HNSW index against an exact scan
 * of the same table, on PostgreSQL + pgvector and on PGlite, without and with attribute filters. The exact scan
 * is the baseline and the ground truth: the same ORDER BY on an expression the index cannot serve. Filtered
 * searches go through store/query.ts's searchPersonas (pgvector's iterative scan), and, to show why it is there,
 * through a plain HNSW scan with the same filter.
 */

const K = 10;

/** Sampler personas with hash embeddings, made by the draft and enrich processors, marked validated. */
async function personas(ctx: SharedContext, salt: string, n: number): Promise<Persona[]> {
  const out: Persona[] = [];
  for (const seed of benchSeeds(salt, n)) {
    for (const d of await processors.draft.process(seed, { ...ctx, delivery: `bench:${seed.id}` })) {
      for (const e of await processors.enrich.process(d.value, { ...ctx, delivery: `bench:${d.value.id}` })) {
        const p = e.value;
        out.push({ ...p, validation: { textHash: createHash('sha256').update(p.description).digest('hex'), checks: [], repaired: [], validatedAt: 1_700_000_000_000 } });
      }
    }
  }
  return out;
}

const vectorText = (v: readonly number[]) => `[${v.join(',')}]`;

/** Top K by exact scan: `+ 0` makes the ORDER BY an expression the HNSW index cannot serve, so every row is read. */
async function exact(sql: SqlClient, v: readonly number[], filter: PersonaFilter): Promise<string[]> {
  const params: unknown[] = [vectorText(v)];
  const where = filterSql(filter, params);
  params.push(K);
  const rows = await sql.query<{ id: string }>(`SELECT p.id FROM personas p ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY (p.embedding <=> $1::vector) + 0, p.id LIMIT $${params.length}`, params);
  return rows.map((r) => r.id);
}

/** A plain HNSW scan with the filter applied to what the index returns (iterative scan off, pgvector's default). */
async function plainHnsw(sql: SqlClient, v: readonly number[], filter: PersonaFilter): Promise<string[]> {
  const params: unknown[] = [vectorText(v)];
  const where = filterSql(filter, params);
  params.push(K);
  const rows = await sql.query<{ id: string }>(`SELECT p.id FROM personas p ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY p.embedding <=> $1::vector LIMIT $${params.length}`, params);
  return rows.map((r) => r.id);
}

function recall(found: readonly string[][], truth: readonly string[][]): number {
  let hit = 0;
  let total = 0;
  truth.forEach((t, i) => {
    const f = new Set(found[i] ?? []);
    hit += t.filter((id) => f.has(id)).length;
    total += t.length;
  });
  return total === 0 ? 1 : hit / total;
}

type Search = (v: readonly number[]) => Promise<string[]>;

/** Every query once, in order; the results and the queries/s. */
async function round(search: Search, queries: readonly (readonly number[])[]): Promise<{ results: string[][]; qps: number }> {
  const { value, ms } = await timed(async () => {
    const results: string[][] = [];
    for (const q of queries) results.push(await search(q));
    return results;
  });
  return { results: value, qps: rate(queries.length, ms) };
}

interface Backend {
  name: 'postgres' | 'pglite';
  open(): Promise<{ sql: SqlClient; close(): Promise<void> }>;
}

export const searchBenchmark: Benchmark = {
  name: 'search',
  title: 'Vector search: HNSW vs exact scan, PostgreSQL + pgvector and PGlite',
  async run(ctx: BenchContext) {
    const n = ctx.smoke ? 400 : 10_000;
    const q = ctx.smoke ? 20 : 200;
    const repeats = ctx.smoke ? 2 : 3;
    const base = loadConfig();
    const db = await benchDatabase(base);
    const config = loadConfig(benchEnv(db.url));
    const embedder = hashEmbedder(config.embeddingDimensions);
    const figures: Figure[] = [];
    const params: Record<string, string | number> = { personas: n, queries: q, k: K, repeats, embedding: `${embedder.model} (sampler descriptions)` };
    try {
      const backends: Backend[] = [
        { name: 'postgres', async open() {
          const sql = await openPostgresClient(db.url);
          return { sql, close: () => sql.close() };
        } },
        { name: 'pglite', async open() {
          const sql = await pgliteClient(join(ctx.workDir, `pglite-${Date.now()}`));
          return { sql, close: () => sql.close() };
        } },
      ];
      for (const backend of backends) {
        const { sql, close } = await backend.open();
        try {
          const store = new SqlStore(backend.name, sql, config.embeddingDimensions);
          await store.migrate();
          const sctx: SharedContext = { config, logger: ctx.logger, llm: undefined, embedder, store, now: () => 1_700_000_000_000 };
          const all = await personas(sctx, `search-${backend.name}`, n + q);
          const stored = all.slice(0, n);
          const queries = all.slice(n).map((p) => p.enrichment?.embedding ?? []);
          const load = await timed(async () => {
            for (const p of stored) await store.upsertPersona(p, `bench:${p.id}`);
          });
          params[`${backend.name} insert (personas/s, HNSW maintained)`] = Math.round(rate(n, load.ms));
          // A filter that keeps about a tenth of the table: the most common locale's share is about that.
          const [top] = await sql.query<{ locale: string; share: number | string }>('SELECT locale, count(*)::float8 / (SELECT count(*) FROM personas) AS share FROM personas GROUP BY locale ORDER BY count(*) DESC LIMIT 1');
          if (!top) throw new BenchError('PH_BENCH_EMPTY', 'no personas stored');
          const filter: PersonaFilter = { where: [{ attribute: 'locale', kind: 'string', op: '=', value: top.locale }] };
          params[`${backend.name} filter`] = `locale = ${top.locale} (${Math.round(Number(top.share) * 1000) / 10}% of personas)`;
          const cases: { id: string; label: string; search: Search; baseline: Search; target: boolean }[] = [
            { id: 'unfiltered', label: 'no filter: store.search (HNSW)', search: async (v) => (await store.search([...v], K)).map((h) => h.id), baseline: (v) => exact(sql, v, {}), target: true },
            { id: 'filtered_iterative', label: 'locale filter: searchPersonas (HNSW, iterative scan)', search: async (v) => (await searchPersonas(sql, v, filter, K)).map((h) => h.id), baseline: (v) => exact(sql, v, filter), target: true },
            { id: 'filtered_plain', label: 'locale filter: plain HNSW scan, filter after', search: (v) => plainHnsw(sql, v, filter), baseline: (v) => exact(sql, v, filter), target: false },
          ];
          for (const c of cases) {
            const [truthRounds = [], foundRounds = []] = await takeTurns(repeats, [() => round(c.baseline, queries), () => round(c.search, queries)]);
            const truth = truthRounds[0]?.results ?? [];
            const recalls = foundRounds.map((r) => recall(r.results, truth));
            const ratio = foundRounds.map((r, i) => r.qps / (truthRounds[i]?.qps ?? Number.NaN));
            figures.push(figure(`${backend.name}_${c.id}_recall`, `${backend.name}, ${c.label}: recall@${K}`, 'recall', recalls, c.target ? { op: '>=', value: 0.95 } : undefined));
            figures.push(figure(`${backend.name}_${c.id}_speedup`, `${backend.name}, ${c.label}: queries/s over exact scan`, 'x', ratio));
            figures.push(figure(`${backend.name}_${c.id}_qps`, `${backend.name}, ${c.label}: queries/s`, 'queries/s', foundRounds.map((r) => r.qps)));
            figures.push(figure(`${backend.name}_${c.id}_exact_qps`, `${backend.name}, same query by exact scan: queries/s`, 'queries/s', truthRounds.map((r) => r.qps)));
          }
          ctx.logger.info({ bench: 'search', backend: backend.name }, 'backend done');
        } finally {
          await close();
        }
      }
    } finally {
      await db.drop();
    }
    return {
      params,
      figures,
      notes: [
        'Ground truth is the exact scan of the same table and filter (ties broken by id); recall@10 is the share of its ten ids the index path returned, over all queries.',
        'Queries are the embeddings of personas not in the table, made the same way; a query runs once per round, exact and index rounds taking turns.',
        'HNSW with pgvector\'s defaults (m 16, ef_construction 64, ef_search 40), as the store\'s migration creates it.',
      ],
    };
  },
};

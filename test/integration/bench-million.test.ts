import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/index.ts';
import { createLogger } from '../../core/logger.ts';
import { createKafka } from '../../runtime/kafka.ts';
import { personahubEnv } from '../helpers/pipeline.ts';

const run = promisify(execFile);

const PERSONAS = 300;
const STAGES = ['draft', 'enrich', 'validate', 'index'];

interface Counters { consumed: number; produced: number; deadLettered: number }

/** The parts of bench/million.ts's results file the smoke test reads. */
interface Results {
  params: { 'personas per seed': number; seeds: number; mode: string; stages: string[] };
  run: { topicPrefix: string; database: string; kept: boolean };
  outcome: {
    stoppedBy: string; seeds: number; seedsWritten: number; personasIndexed: number;
    stages: Record<string, Counters>; validated: number; rejected: number; deadLettered: number;
  };
  throughput: { overall: number; byTenth: number[] };
  processes: { name: string; role: string; samples: number; rssMiB: { first: number; median: number; peak: number; last: number } }[];
  store: { databaseBytes: number; tablesBytes: number; tables: { table: string; rows: number; indexBytes: number; totalBytes: number }[] };
  kafka: { readable: boolean; topics: Record<string, number>; totalBytes: number };
  search: { queries: number; k: number; hits: { min: number; max: number }; ms: { n: number } };
  plot: string;
  series: { t: number; seedsWritten: number; indexed: number; rssMiB: Record<string, number> }[];
}

const counters = (r: Results, stage: string): Counters => r.outcome.stages[stage] ?? { consumed: Number.NaN, produced: Number.NaN, deadLettered: Number.NaN };

/**
 * The million-personas benchmark at 300 personas with the hash embedder, so it cannot rot: it must run to the end
 * and its results must count what happened (the store's rows, the stages' events, every process sampled). How fast
 * anything went is never asserted.
 */
describe('bench/million.ts, smoke', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ph-bench-million-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs the stage processes to the end and reports counts, memory, sizes and search that agree with one another', async () => {
    const out = join(dir, 'million.json');
    const { stderr } = await run(process.execPath, ['--import', 'tsx', 'bench/million.ts', '--personas', String(PERSONAS), '--embedder', 'hash', '--sample-ms', '1000', '--out', out], {
      env: { ...personahubEnv(), PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PERSONAHUB_LOG_LEVEL: 'warn' },
      timeout: 540_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    expect(stderr.split('\n').filter((l) => l.includes('"level":50'))).toEqual([]);
    const r = JSON.parse(readFileSync(out, 'utf8')) as Results;
    const perSeed = r.params['personas per seed'];

    expect(r.params.mode).toBe('sampler');
    expect(r.params.stages).toEqual(STAGES);
    expect(r.outcome.stoppedBy).toBe('done');
    expect(r.outcome.seeds).toBe(Math.ceil(PERSONAS / perSeed));
    expect(r.outcome.seedsWritten).toBe(r.outcome.seeds);

    // Every event accounted for, stage by stage, and the store holding exactly what the index stage announced.
    const [draft, enrich, validate, index] = STAGES.map((s) => counters(r, s)) as [Counters, Counters, Counters, Counters];
    expect(draft.consumed).toBe(r.outcome.seeds);
    expect(draft.produced + draft.deadLettered * perSeed).toBe(r.outcome.seeds * perSeed);
    expect(enrich.produced + enrich.deadLettered).toBe(draft.produced);
    expect(validate.produced + validate.deadLettered).toBe(enrich.produced);
    expect(r.outcome.validated + r.outcome.rejected).toBe(validate.produced);
    expect(index.produced + index.deadLettered).toBe(r.outcome.validated);
    expect(r.outcome.personasIndexed).toBe(index.produced);
    expect(r.store.tables.find((x) => x.table === 'personas')?.rows).toBe(r.outcome.personasIndexed);
    // Distinct seeds give distinct sampler personas: a few may be rejected as near-duplicates, not more.
    expect(r.outcome.personasIndexed).toBeGreaterThanOrEqual(PERSONAS * 0.9);

    // The series: in time order, counting up to the end, every process sampled in every sample.
    const last = r.series[r.series.length - 1];
    expect(r.series.length).toBeGreaterThanOrEqual(2);
    expect(last?.indexed).toBe(r.outcome.personasIndexed);
    expect(last?.seedsWritten).toBe(r.outcome.seeds);
    for (let i = 1; i < r.series.length; i += 1) {
      const [a, b] = [r.series[i - 1], r.series[i]];
      expect((b?.t ?? 0) > (a?.t ?? 0)).toBe(true);
      expect((b?.indexed ?? 0) >= (a?.indexed ?? 0)).toBe(true);
    }
    expect(r.processes.map((p) => p.name)).toEqual(expect.arrayContaining([...STAGES, 'bench']));
    for (const p of r.processes) {
      expect(p.samples, p.name).toBe(r.series.length);
      expect(p.rssMiB.peak, p.name).toBeGreaterThan(0);
      expect(p.rssMiB.first <= p.rssMiB.peak && p.rssMiB.median <= p.rssMiB.peak, p.name).toBe(true);
      for (const s of r.series) expect(s.rssMiB[p.name], p.name).toBeGreaterThan(0);
    }
    expect(r.throughput.byTenth).toHaveLength(10);
    expect(r.throughput.overall).toBeGreaterThan(0);

    // Sizes: the store with its HNSW index, the broker's segments of every topic the run wrote.
    const personasTable = r.store.tables.find((x) => x.table === 'personas');
    expect(personasTable?.indexBytes).toBeGreaterThan(0);
    expect(r.store.tablesBytes).toBe(r.store.tables.reduce((s, x) => s + x.totalBytes, 0));
    expect(r.store.databaseBytes).toBeGreaterThan(r.store.tablesBytes);
    expect(r.kafka.readable).toBe(true);
    for (const e of ['seed', 'draft', 'enriched', 'validated', 'indexed']) expect(r.kafka.topics[e], e).toBeGreaterThan(0);
    expect(r.kafka.totalBytes).toBe(Object.values(r.kafka.topics).reduce((s, b) => s + b, 0));

    // Search: every query timed and answered with k personas.
    expect(r.search.queries).toBe(200);
    expect(r.search.ms.n).toBe(200);
    expect(r.search.hits).toEqual({ min: r.search.k, max: r.search.k });

    expect(readFileSync(join(dir, 'million.png')).subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');

    // The run's topics and database are gone (no --keep).
    expect(r.run.kept).toBe(false);
    const config = loadConfig();
    const admin = createKafka(config, 'bench-million-test', createLogger({ level: 'warn', name: 'bench-million-test' })).admin();
    await admin.connect();
    try {
      // A deletion reaches the broker's metadata a moment after the request returns.
      const left = async () => (await admin.listTopics()).filter((t) => t.startsWith(`${r.run.topicPrefix}.`));
      for (let i = 0; i < 30 && (await left()).length > 0; i += 1) await new Promise((res) => setTimeout(res, 1_000));
      expect(await left()).toEqual([]);
    } finally {
      await admin.disconnect();
    }
    const client = new pg.Client(config.databaseUrl);
    await client.connect();
    try {
      expect((await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [r.run.database])).rowCount).toBe(0);
    } finally {
      await client.end();
    }
  }, 600_000);
});

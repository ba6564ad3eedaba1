import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/index.ts';
import { createTestPipeline, stopChild, type TestPipeline } from '../helpers/pipeline.ts';
import type { StageName } from '../../topology/index.ts';
import { freePort } from '../helpers/faults.ts';

/**
 * Scaling out from nothing: several stage processes started at the same moment against a database
 * that does not exist yet. Each one creates the database if missing and migrates it; before the
 * store made both race-safe, some died at start with `database … already exists` or a duplicate
 * `pg_type_typname_nsp_index` key from concurrent CREATE TABLE IF NOT EXISTS.
 */

/** Five processes over four stages: the index stage twice, as a scaled-out deployment would run it. */
const STAGES: readonly StageName[] = ['draft', 'enrich', 'validate', 'index', 'index'];

interface Started {
  stage: StageName;
  port: number;
  child: ChildProcess;
  /** Everything the process logged (logs go to stderr), for the assertions and for failure messages. */
  output: () => string;
}

/** Like spawnCli, but keeps the process's log output so a failed start says why. */
function spawnProcessor(env: Record<string, string>, stage: StageName, port: number): Started {
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'processor', stage], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NODE_OPTIONS: process.env.NODE_OPTIONS ?? '', ...env, PERSONAHUB_METRICS_PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let output = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  return { stage, port, child, output: () => output };
}

async function healthStatus(port: number): Promise<number | undefined> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2_000) })).status;
  } catch {
    return undefined; // not listening yet
  }
}

/**
 * Resolves when /health answers 200 and the stage has logged its start (the log line travels through
 * a pipe, so it may arrive after the answer); rejects, with the process's output, as soon as it exits.
 */
async function waitHealthy(p: Started, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    if (p.child.exitCode !== null || p.child.signalCode !== null) {
      throw new Error(`processor ${p.stage} exited with ${p.child.exitCode ?? p.child.signalCode} before it was healthy:\n${p.output()}`);
    }
    if ((await healthStatus(p.port)) === 200 && p.output().includes('stage started')) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`processor ${p.stage} was not healthy in time:\n${p.output()}`);
}

describe('stage processes started at once against a new database', () => {
  let t: TestPipeline;
  const database = `cstart_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  let databaseUrl = '';
  const started: Started[] = [];
  // The stack's own database: it outlives both the test pipeline's database and the one raced for.
  const adminUrl = loadConfig().databaseUrl;
  const admin = new pg.Client(adminUrl);

  beforeAll(async () => {
    // Topics and schemas come from a test pipeline (with a database of its own); the processes get
    // another database, one that does not exist yet.
    t = await createTestPipeline({ PERSONAHUB_MODE: 'sampler', PERSONAHUB_EMBEDDER: 'hash' });
    databaseUrl = t.config.databaseUrl.replace(/\/[^/]+$/, `/${database}`);
    await admin.connect();
  });

  afterAll(async () => {
    for (const p of started) await stopChild(p.child, 'SIGKILL');
    await t?.close();
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  });

  it('all five create, migrate and start; none exits; each stops with exit code 0', async () => {
    const before = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    expect(before.rowCount).toBe(0);

    const env = { ...t.env, PERSONAHUB_DATABASE_URL: databaseUrl, PERSONAHUB_LOG_LEVEL: 'info' };
    const ports = await Promise.all(STAGES.map(() => freePort()));
    // Spawned in one synchronous loop, so they all reach the database within the same moment.
    for (const [i, stage] of STAGES.entries()) started.push(spawnProcessor(env, stage, ports[i] ?? 0));

    const deadline = Date.now() + 150_000;
    await Promise.all(started.map((p) => waitHealthy(p, deadline)));

    for (const p of started) {
      expect(p.child.exitCode, p.output()).toBeNull();
      expect(p.output()).not.toMatch(/PH_STORE_/);
    }
    // The database they raced to create exists once, migrated: every table the store uses is there.
    const after = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    expect(after.rowCount).toBe(1);
    const db = new pg.Client(databaseUrl);
    await db.connect();
    try {
      const tables = await db.query<{ table_name: string }>(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`);
      const columns = await db.query<{ column_name: string }>(`SELECT column_name FROM information_schema.columns WHERE table_name = 'personas' AND column_name IN ('last_delivery', 'last_outcome') ORDER BY column_name`);
      const space = await db.query<{ value: string }>(`SELECT value FROM store_meta WHERE key = 'embedding_space'`);
      expect(tables.rows.map((r) => r.table_name)).toEqual([
        'api_jobs', 'api_keys', 'dedup_signatures', 'input_claims', 'lattice_budgets', 'lattice_expansions', 'lsh_bands', 'lsh_signatures',
        'persona_edits', 'persona_versions', 'personas', 'relations', 'store_meta',
      ]);
      expect(columns.rows.map((r) => r.column_name)).toEqual(['last_delivery', 'last_outcome']);
      // Both index processes checked the embedding space; the first recorded it, the second agreed.
      expect(space.rows).toEqual([{ value: 'hash-bow-384:384' }]);
    } finally {
      await db.end();
    }

    const codes = await Promise.all(started.splice(0).map((p) => stopChild(p.child)));
    expect(codes).toEqual([0, 0, 0, 0, 0]);
  }, 240_000);
});

import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { loadConfig } from '../config/index.ts';
import { openStore } from '../store/open.ts';
import { samplePersona } from '../test/helpers/samples.ts';
import { hashEmbed } from '../llm/embedder.ts';

/**
 * `node --import tsx bench/export-memory.ts [--rows 10000,100000] [--heap 96]`: peak RSS and wall time of
 * `personahub export` (both formats) over stores of different sizes, to show the memory stays flat as
 * the corpus grows. Each export runs twice: as is, where V8 lets its heap grow lazily while there is room
 * (so peak RSS says little about what the export needs), and with the old generation capped at `--heap`
 * MB, which it could not finish in if it kept every row. Each size gets a database of its own on the configured PostgreSQL: one persona
 * indexed through the store, then copied in SQL under new ids (the HNSW index dropped first: the export
 * never uses it, and building it would dominate the setup). Peak RSS comes from GNU time (`%M`).
 */
const { values } = parseArgs({ options: { rows: { type: 'string', default: '10000,100000' }, heap: { type: 'string', default: '96' } } });
const heapMb = Number(values.heap);
const sizes = (values.rows ?? '').split(',').map(Number);
const base = loadConfig();
const dir = mkdtempSync(join(tmpdir(), 'ph-export-bench-'));
const results: string[] = ['| personas | format | file MB | old-generation cap | peak RSS MB | seconds |', '|---|---|---|---|---|---|'];

for (const rows of sizes) {
  const name = `bench_export_${randomUUID().slice(0, 8)}`;
  const admin = new pg.Client(base.databaseUrl);
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = base.databaseUrl.replace(/\/[^/]+$/, `/${name}`);
  try {
    const store = await openStore({ ...base, databaseUrl: url });
    await store.migrate();
    const p = samplePersona();
    await store.upsertPersona({ ...p, enrichment: p.enrichment && { ...p.enrichment, embedding: hashEmbed(p.description, 384) } }, 'bench');
    await store.close();
    const db = new pg.Client(url);
    await db.connect();
    await db.query('DROP INDEX personas_embedding_hnsw');
    // Distinct ids and texts; the rest of the row is the template's, which is what an export reads anyway.
    await db.query(`INSERT INTO personas (id, version, seed_id, name, age, occupation, locale, description, attributes, modalities, mode, model, embedding, embedding_model, lineage, created_at)
      SELECT md5(i::text), version, seed_id, name || ' ' || i, age, occupation, locale, description || ' #' || i, attributes, modalities, mode, model, embedding, embedding_model, lineage, created_at
        FROM personas, generate_series(1, $1 - 1) AS i`, [rows]);
    await db.end();
    for (const format of ['jsonl', 'parquet']) {
      for (const cap of [undefined, heapMb]) {
        const out = join(dir, `${rows}.${format}`);
        const run = spawnSync('/usr/bin/time', ['-f', '%M %e', process.execPath, ...(cap ? [`--max-old-space-size=${cap}`] : []), '--import', 'tsx', 'cli/main.ts', 'export', '--format', format, '--out', out], {
          env: { ...process.env, PERSONAHUB_DATABASE_URL: url, PERSONAHUB_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'],
        });
        if (run.status !== 0) throw new Error(`export failed: ${run.stderr.toString()}`);
        // GNU time's line is the last one on stderr, after the progress bar's.
        const [kb = '0', seconds = '0'] = (run.stderr.toString().trim().split('\n').pop() ?? '').split(' ');
        results.push(`| ${rows} | ${format} | ${(statSync(out).size / 1e6).toFixed(1)} | ${cap ? `${cap} MB` : 'none'} | ${(Number(kb) / 1024).toFixed(0)} | ${seconds} |`);
        rmSync(out);
      }
    }
  } finally {
    const a = new pg.Client(base.databaseUrl);
    await a.connect();
    await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await a.end();
  }
}
rmSync(dir, { recursive: true, force: true });
console.log(results.join('\n'));

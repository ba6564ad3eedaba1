import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/index.ts';
import { exportCorpus, statePath } from '../../corpus/export.ts';
import { personaLine } from '../../corpus/persona-json.ts';
import { hashEmbed } from '../../llm/embedder.ts';
import type { Persona } from '../../schemas/types.generated.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/index.ts';
import { personahubEnv } from '../helpers/pipeline.ts';
import { pyarrowPython } from '../helpers/pyarrow.ts';
import { samplePersona } from '../helpers/samples.ts';

const run = promisify(execFile);
const base = loadConfig();

/** A database of its own on the shared stack, dropped at the end. */
async function createDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `test_corpus_${randomUUID().slice(0, 8)}`;
  const admin = new pg.Client(base.databaseUrl);
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  return {
    url: base.databaseUrl.replace(/\/[^/]+$/, `/${name}`),
    async drop() {
      const a = new pg.Client(base.databaseUrl);
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await a.end();
    },
  };
}

/** `personahub <args>` as a user runs it, against the database at `url`. */
async function personahub(url: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], {
      env: { ...personahubEnv(), PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PERSONAHUB_LOG_LEVEL: 'warn', PERSONAHUB_DATABASE_URL: url },
      timeout: 120_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const OCCUPATIONS = ['pediatric nurse', 'welder', 'history teacher', 'data analyst', 'baker', 'bus driver'];
const COUNTRIES = ['Nigeria', 'Peru', 'Japan', 'Poland'];

/** 57 personas unlike each other in every section: some depth-1 with a parent, some without lineage, demographics or validation. */
function corpus(): Persona[] {
  return Array.from({ length: 57 }, (_, i) => {
    const occupation = OCCUPATIONS[i % OCCUPATIONS.length] ?? 'baker';
    const country = COUNTRIES[i % COUNTRIES.length] ?? 'Peru';
    const description = `Person ${i} works as a ${occupation} in ${country} and keeps notebook number ${i * 7} of recipes, routes and quarrels.`;
    const p = samplePersona({
      id: createHashId(i), version: 1 + (i % 3), seedId: createHashId(1000 + i), generationIndex: i % 4, name: `Person ${i}`, age: 20 + (i % 50),
      occupation, locale: `Town ${i % 5}, ${country}`, traits: i % 5 === 0 ? [] : ['warm', `trait-${i}`], description,
      seedRelation: (['READER', 'WRITER', 'ENTHUSIAST', 'CRITIC', 'SUBJECT'] as const)[i % 5] ?? 'READER',
      provenance: { mode: i % 2 ? 'LLM' : 'SAMPLER', model: i % 2 ? 'qwen2.5-coder-1.5b' : 'sampler', promptVersion: 'draft-v3', createdAt: 1_760_000_000_000 + i * 1001, samplerProfile: i % 3 ? 'world' : null, samplerProfileVersion: i % 3 ? '2' : null },
      lineage: i % 4 === 3 ? null : { depth: i % 2, rootSeedId: createHashId(2000 + i), parentPersonaId: i % 2 ? createHashId(i - 1) : null, relationKind: i % 2 ? 'colleague' : null },
      demographics: i % 6 === 5 ? null : {
        sex: i % 2 ? 'female' : 'male', maritalStatus: 'married', household: 'couple with children', educationLevel: 'tertiary', educationField: 'health and welfare',
        employmentStatus: 'employed', occupationGroup: 'professionals', industry: 'Q', city: `Town ${i % 5}`, region: 'Region', country,
        culturalBackground: 'mixed', languages: ['English', `Lang${i % 3}`], hobbies: i % 4 ? ['chess'] : [], skills: ['triage'], careerGoal: 'run a clinic',
      },
      validation: i % 7 === 6 ? null : { textHash: createHashId(3000 + i), checks: ['schema', 'age-coherent'], repaired: i % 3 ? [] : ['age'], validatedAt: 1_760_000_100_000 + i },
    });
    const e = p.enrichment;
    if (!e) return p;
    // Big Five as the topics carry them: Avro floats, so float32 values.
    const b = e.bigFive;
    const bigFive = { openness: Math.fround((i % 10) / 10), conscientiousness: Math.fround(b.conscientiousness), extraversion: Math.fround(b.extraversion), agreeableness: Math.fround(b.agreeableness), neuroticism: Math.fround(b.neuroticism) };
    return { ...p, enrichment: { ...e, embedding: hashEmbed(description, 384), bigFive, enrichedAt: 1_760_000_050_000 + i } };
  });
}

function createHashId(n: number): string {
  return n.toString(16).padStart(32, '0');
}

/** What the store gives back: float32 wherever the store or Parquet keeps float32 (embedding, Big Five after Parquet). */
const f32 = (x: number) => Math.fround(x);

describe('corpus export and import', () => {
  let db: { url: string; drop: () => Promise<void> };
  let store: Store;
  let dir: string;
  let python: string;
  const personas = corpus();

  beforeAll(async () => {
    python = await pyarrowPython(base.cacheDir);
    db = await createDatabase();
    store = await openStore({ ...base, databaseUrl: db.url });
    await store.migrate();
    for (const p of personas) await store.upsertPersona(p, `test:${p.id}`);
    dir = mkdtempSync(join(tmpdir(), 'ph-corpus-'));
  });

  afterAll(async () => {
    await store?.close();
    await db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('shows a persona with every field, readable and as JSON', async () => {
    const p = personas[1] as Persona;
    const json = await personahub(db.url, ['show', p.id, '--json']);
    expect(json.code).toBe(0);
    const shown = JSON.parse(json.stdout) as Persona;
    expect({ ...shown, enrichment: null }).toEqual({ ...p, enrichment: null });
    expect(shown.enrichment?.embedding.map(f32)).toEqual(p.enrichment?.embedding.map(f32));
    const text = await personahub(db.url, ['show', p.id]);
    expect(text.stdout).toContain('Person 1, 21, welder (Town 1, Peru)');
    // Every field of the schema by its path, the sections included.
    expect(text.stdout).toMatch(new RegExp(`\\nlineage\\.parentPersonaId +${createHashId(0)}\\n`));
    expect(text.stdout).toMatch(/\nlineage\.relationKind +colleague\n/);
    expect(text.stdout).toMatch(/\ndemographics\.languages +English, Lang1\n/);
    expect(text.stdout).toMatch(/\nenrichment\.embedding +384 dims \[/);
    expect(text.stdout).toMatch(/\nenrichment\.embeddingModel +hash-bow-384\n/);
    expect(text.stdout).toMatch(/\nprovenance\.createdAt +2025-10-09T08:53:21\.001Z\n/);
    const missing = await personahub(db.url, ['show', 'f'.repeat(32)]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`PH_CORPUS_NOT_FOUND: no persona ${'f'.repeat(32)} in the store`);
  });

  it('exports JSONL and Parquet that pyarrow reads back field by field as the stored personas', async () => {
    for (const format of ['jsonl', 'parquet']) {
      const r = await personahub(db.url, ['export', '--format', format, '--out', join(dir, `all.${format}`), '--page-size', '10']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`exported 57 personas to ${join(dir, `all.${format}`)} (${format}`);
      expect(existsSync(statePath(join(dir, `all.${format}`)))).toBe(false);
    }
    // pyarrow reads both files into Arrow tables; each row goes out as JSON with timestamps in epoch ms.
    const script = `
import json, sys, datetime
import pyarrow.parquet as pq, pyarrow.json as pj
def plain(v):
    if isinstance(v, datetime.datetime): return round(v.timestamp() * 1000)
    if isinstance(v, dict): return {k: plain(x) for k, x in v.items()}
    if isinstance(v, list): return [plain(x) for x in v]
    return v
t = pq.read_table(sys.argv[1])
emb = t.schema.field('enrichment').type.field('embedding').type
j = pj.read_json(sys.argv[2])
print(json.dumps({'embeddingType': str(emb), 'parquetRowGroups': pq.ParquetFile(sys.argv[1]).num_row_groups,
  'parquet': [plain(r) for r in t.to_pylist()], 'jsonl': [plain(r) for r in j.to_pylist()]}))
`;
    const { stdout } = await run(python, ['-c', script, join(dir, 'all.parquet'), join(dir, 'all.jsonl')], { maxBuffer: 64 << 20 });
    const read = JSON.parse(stdout) as { embeddingType: string; parquetRowGroups: number; parquet: Persona[]; jsonl: Persona[] };
    expect(read.embeddingType).toBe('fixed_size_list<element: float not null>[384]');
    expect(read.parquetRowGroups).toBe(6);
    const sorted = [...personas].sort((a, b) => (a.id < b.id ? -1 : 1));
    for (const [source, rows] of [['parquet', read.parquet], ['jsonl', read.jsonl]] as const) {
      expect(rows.map((r) => r.id), source).toEqual(sorted.map((p) => p.id));
      rows.forEach((row, i) => {
        const want = sorted[i] as Persona;
        const e = want.enrichment;
        const got = row.enrichment;
        // Every field but the floats compared exactly; the floats at float32, which both the store and Parquet keep.
        expect({ ...row, enrichment: { ...got, embedding: [], bigFive: {} } }, `${source} row ${i}`).toEqual({ ...want, enrichment: { ...e, embedding: [], bigFive: {} } });
        expect(got?.embedding.map(f32)).toEqual(e?.embedding.map(f32));
        expect(Object.values(got?.bigFive ?? {}).map(f32)).toEqual(Object.values(e?.bigFive ?? {}).map(f32));
      });
    }
  });

  it('an export interrupted with a torn tail and resumed by the command is byte for byte the uninterrupted file', async () => {
    for (const format of ['jsonl', 'parquet'] as const) {
      const whole = join(dir, `whole.${format}`);
      const resumed = join(dir, `resumed.${format}`);
      expect((await personahub(db.url, ['export', '--format', format, '--out', whole, '--page-size', '7', '--where', 'age>=25'])).code).toBe(0);
      // The "crash": the process dies right after its fourth page is durable, then half a page's bytes land after it.
      const crash = new Error('killed after page 4');
      let pages = 0;
      await expect(exportCorpus({
        source: store, format, out: resumed, dimensions: 384, pageSize: 7,
        filter: { where: 'age>=25', keep: (p) => p.age >= 25 },
        onPage: () => {
          pages += 1;
          if (pages === 4) throw crash;
        },
      })).rejects.toBe(crash);
      const state = JSON.parse(readFileSync(statePath(resumed), 'utf8')) as { rows: number; bytes: number };
      expect(state.rows).toBeGreaterThan(0);
      appendFileSync(resumed, readFileSync(whole).subarray(state.bytes, state.bytes + 500));
      // A different filter would make a different file: refused, the state kept.
      const wrong = await personahub(db.url, ['export', '--format', format, '--out', resumed, '--page-size', '7']);
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toContain('PH_CORPUS_STATE');
      const r = await personahub(db.url, ['export', '--format', format, '--out', resumed, '--page-size', '7', '--where', 'age>=25']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`resumed after ${state.rows} rows (${state.bytes} bytes)`);
      expect(readFileSync(resumed).equals(readFileSync(whole)), format).toBe(true);
      expect(readFileSync(resumed).length).toBeGreaterThan(state.bytes);
      // Re-running a finished export is refused rather than silently overwriting it.
      const again = await personahub(db.url, ['export', '--format', format, '--out', resumed]);
      expect(again.stderr).toContain('PH_CORPUS_EXISTS');
    }
    const filtered = readFileSync(join(dir, 'whole.jsonl'), 'utf8').trim().split('\n');
    expect(filtered).toHaveLength(personas.filter((p) => p.age >= 25).length);
  });

  it('imports an export into an empty store (idempotently) and exports it again to the same bytes', async () => {
    for (const format of ['jsonl', 'parquet'] as const) {
      const target = await createDatabase();
      try {
        const first = await personahub(target.url, ['import', join(dir, `all.${format}`)]);
        expect(first.stdout, first.stderr).toContain('imported 57 personas');
        expect(first.stdout).toContain('57 inserted, 0 updated, 0 unchanged');
        const second = await personahub(target.url, ['import', join(dir, `all.${format}`)]);
        expect(second.stdout).toContain('0 inserted, 0 updated, 57 unchanged');
        const out = join(dir, `again-${format}.jsonl`);
        expect((await personahub(target.url, ['export', '--format', 'jsonl', '--out', out])).code).toBe(0);
        expect(readFileSync(out, 'utf8')).toBe(readFileSync(join(dir, 'all.jsonl'), 'utf8'));
      } finally {
        await target.drop();
      }
    }
  });

  it('refuses a file that is not a corpus, naming the line', async () => {
    const bad = join(dir, 'bad.jsonl');
    appendFileSync(bad, `${personaLine(personas[0] as Persona)}\n{"id":"x"}\n`);
    const r = await personahub(db.url, ['import', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`PH_CORPUS_RECORD: ${bad} line 2: not a persona`);
  });
});

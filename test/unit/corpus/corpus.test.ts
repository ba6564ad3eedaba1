import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exportCorpus, statePath, type PersonaSource } from '../../../corpus/export.ts';
import { importCorpus } from '../../../corpus/import.ts';
import { checkPersona, parsePersonaLine, personaLine } from '../../../corpus/persona-json.ts';
import { readParquetPersonas } from '../../../corpus/parquet.ts';
import type { Persona } from '../../../schemas/types.generated.ts';
import { MemoryStore } from '../../helpers/context.ts';
import { samplePersona } from '../../helpers/samples.ts';

const dir = mkdtempSync(join(tmpdir(), 'ph-corpus-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** 23 personas with float32 floats (as the topics carry them), one without lineage, one without validation, every other one with written facets, every third one with LLM-written modalities. */
const personas: Persona[] = Array.from({ length: 23 }, (_, i) => {
  const p = samplePersona({ id: i.toString(16).padStart(32, '0'), name: `P${i}`, lineage: i === 3 ? null : { depth: 0, rootSeedId: 'r', parentPersonaId: null, relationKind: null } });
  const e = p.enrichment;
  if (!e) return p;
  const embedding = e.embedding.map(Math.fround);
  const b = e.bigFive;
  return {
    ...p,
    facets: i % 2 === 0 ? { shortPersona: `A pediatric nurse number ${i}.`, professional: 'Runs the vaccination clinic.', family: 'Lives with two daughters.', leisure: 'Sings in a choir.', seedRelation: 'Reads every schedule update.' } : null,
    enrichment: {
      ...e, embedding,
      ...(i % 3 === 0 ? { modalitiesSource: 'LLM' as const, modalitiesModel: 'qwen', backstory: `Trained in Ibadan, ${i}.`, speakingStyle: 'Unhurried.', values: ['patience', 'faith'], routines: ['Night shifts.'] } : {}),
      bigFive: { openness: Math.fround(b.openness), conscientiousness: Math.fround(b.conscientiousness), extraversion: Math.fround(b.extraversion), agreeableness: Math.fround(b.agreeableness), neuroticism: Math.fround(b.neuroticism) } },
    validation: i === 7 ? null : { textHash: `h${i}`, checks: ['schema'], repaired: [], validatedAt: 1_700_000_000_000 + i },
  };
});
const source: PersonaSource = { readPersonasAfter: async (after, limit) => personas.filter((p) => after === null || p.id > after).slice(0, limit) };

describe('persona JSON', () => {
  it('writes keys in the schema order whatever order the object was built in, and reads the line back', () => {
    const p = personas[0] as Persona;
    const shuffled = Object.fromEntries(Object.entries(p).reverse()) as unknown as Persona;
    expect(personaLine(shuffled)).toBe(personaLine(p));
    expect(Object.keys(JSON.parse(personaLine(shuffled)) as object).slice(0, 3)).toEqual(['id', 'version', 'seedId']);
    expect(parsePersonaLine(personaLine(p), 'x')).toEqual(p);
  });

  it('refuses a record that is not a persona, naming the field', () => {
    expect(() => checkPersona({ ...personas[0], seedRelation: 'FRIEND' }, 'f line 3')).toThrow(/f line 3: not a persona \(seedRelation:/);
    expect(() => parsePersonaLine('{"id":', 'f line 9')).toThrow(/f line 9: not JSON/);
  });
});

describe('export', () => {
  it('Parquet reads back as the personas it was written from, nulls included', async () => {
    const out = join(dir, 'a.parquet');
    const r = await exportCorpus({ source, format: 'parquet', out, dimensions: 384, pageSize: 10 });
    expect(r).toMatchObject({ rows: 23, resumedFrom: undefined });
    const back: Persona[] = [];
    for await (const page of readParquetPersonas(out)) back.push(...page);
    expect(back).toEqual(personas);
  });

  it('a Parquet export cut after any page and given a torn tail resumes to the same bytes', async () => {
    const whole = join(dir, 'whole.parquet');
    await exportCorpus({ source, format: 'parquet', out: whole, dimensions: 384, pageSize: 4 });
    for (const cut of [1, 3, 5]) {
      const out = join(dir, `cut-${cut}.parquet`);
      let pages = 0;
      const stop = new Error('stop');
      await expect(exportCorpus({ source, format: 'parquet', out, dimensions: 384, pageSize: 4, onPage: () => {
        pages += 1;
        if (pages === cut) throw stop;
      } })).rejects.toBe(stop);
      // A torn row group in the file, and its metadata line logged before the state could count it.
      appendFileSync(out, Buffer.from('torn row group'));
      appendFileSync(`${out}.export-rowgroups.jsonl`, '{"columns":[');
      const r = await exportCorpus({ source, format: 'parquet', out, dimensions: 384, pageSize: 4 });
      expect(r.resumedFrom?.rows).toBe(cut * 4);
      expect(readFileSync(out).equals(readFileSync(whole)), `cut after page ${cut}`).toBe(true);
    }
  });

  it('refuses to resume with another page size, and to overwrite a finished file', async () => {
    const out = join(dir, 'b.jsonl');
    await expect(exportCorpus({ source, format: 'jsonl', out, dimensions: 384, pageSize: 4, onPage: () => {
      throw new Error('stop');
    } })).rejects.toThrow('stop');
    await expect(exportCorpus({ source, format: 'jsonl', out, dimensions: 384, pageSize: 5 })).rejects.toThrow(/PH_CORPUS_STATE|unfinished export with page size 4/);
    await exportCorpus({ source, format: 'jsonl', out, dimensions: 384, pageSize: 4 });
    expect(() => readFileSync(statePath(out))).toThrow();
    await expect(exportCorpus({ source, format: 'jsonl', out, dimensions: 384, pageSize: 4 })).rejects.toThrow(/exists and is not an unfinished export/);
  });
});

describe('import', () => {
  it('loads JSONL and Parquet alike, and a second import changes nothing', async () => {
    for (const format of ['jsonl', 'parquet'] as const) {
      const out = join(dir, `imp.${format}`);
      await exportCorpus({ source, format, out, dimensions: 384, pageSize: 10 });
      const store = new MemoryStore();
      expect(await importCorpus(out, store, { pageSize: 10 })).toEqual({ read: 23, inserted: 23, updated: 0, unchanged: 0 });
      expect(await importCorpus(out, store, { pageSize: 10 })).toEqual({ read: 23, inserted: 0, updated: 0, unchanged: 23 });
      expect(await store.readPersonasAfter(null, 100)).toEqual(personas);
    }
  });

  it('refuses vectors from another embedding model than the store holds', async () => {
    const out = join(dir, 'other-space.jsonl');
    await exportCorpus({ source, format: 'jsonl', out, dimensions: 384, pageSize: 10 });
    const store = new MemoryStore();
    await store.checkEmbeddingSpace('all-minilm-l6-v2', 384);
    await expect(importCorpus(out, store, { pageSize: 10 })).rejects.toThrow(/all-minilm-l6-v2/);
    expect(await store.countPersonas()).toBe(0);
  });
});

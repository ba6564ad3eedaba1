import { randomUUID } from 'node:crypto';
import { createReadStream, openSync, readSync, closeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Persona } from '../schemas/types.generated.ts';
import { parsePersonaLine } from './persona-json.ts';
import { readParquetPersonas } from './parquet.ts';

/** What an import writes into: the index stage's own idempotent upsert, and the store's embedding-space guard. */
export interface PersonaSink {
  upsertPersona(persona: Persona, delivery: string): Promise<'INSERTED' | 'UPDATED' | 'UNCHANGED'>;
  checkEmbeddingSpace(model: string, dimensions: number): Promise<void>;
}

export interface ImportResult {
  read: number;
  inserted: number;
  updated: number;
  unchanged: number;
}

/** Parquet files start with the magic `PAR1`; anything else is read as JSONL. */
function isParquet(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(4);
    return readSync(fd, head, 0, 4, 0) === 4 && head.toString('latin1') === 'PAR1';
  } finally {
    closeSync(fd);
  }
}

async function* jsonlPages(file: string, pageSize: number): AsyncGenerator<Persona[]> {
  let page: Persona[] = [];
  let n = 0;
  for await (const line of createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity })) {
    n += 1;
    if (line.trim() === '') continue;
    page.push(parsePersonaLine(line, `${file} line ${n}`));
    if (page.length >= pageSize) {
      yield page;
      page = [];
    }
  }
  if (page.length > 0) yield page;
}

/**
 * Loads an exported corpus (JSONL or Parquet, told apart by content) into the store through the same
 * upsert the index stage uses, so it is idempotent: importing the same file again changes nothing
 * (every row UNCHANGED), and a persona already there in an older version is replaced. A record that is
 * not a persona stops the import with its line or row named, and so does an embedding from another model
 * than the store's (PH_STORE_EMBEDDING_MISMATCH); the records before it stay stored.
 */
export async function importCorpus(file: string, sink: PersonaSink, o: { pageSize: number; onPage?: (r: ImportResult) => void }): Promise<ImportResult> {
  // One delivery name per run: the upsert then reports a re-import as UNCHANGED rather than as the
  // redo of an earlier write (which is what a repeated delivery name means to it).
  const run = randomUUID();
  const result: ImportResult = { read: 0, inserted: 0, updated: 0, unchanged: 0 };
  const pages = isParquet(file) ? readParquetPersonas(file) : jsonlPages(file, o.pageSize);
  // Vectors of another model than the store's would silently break search: each model met is checked once.
  const spaces = new Set<string>();
  for await (const page of pages) {
    for (const p of page) {
      const e = p.enrichment;
      if (e && !spaces.has(`${e.embeddingModel}:${e.embedding.length}`)) {
        await sink.checkEmbeddingSpace(e.embeddingModel, e.embedding.length);
        spaces.add(`${e.embeddingModel}:${e.embedding.length}`);
      }
      const outcome = await sink.upsertPersona(p, `import:${run}:${result.read}`);
      result.read += 1;
      if (outcome === 'INSERTED') result.inserted += 1;
      else if (outcome === 'UPDATED') result.updated += 1;
      else result.unchanged += 1;
    }
    o.onPage?.(result);
  }
  return result;
}

import { statSync } from 'node:fs';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { loadConfig } from '../config/index.ts';
import { exportCorpus, statePath, type ExportFormat } from '../corpus/export.ts';
import { importCorpus } from '../corpus/import.ts';
import { PERSONA_SCHEMA, personaLine } from '../corpus/persona-json.ts';
import { nullableOf, type AvroType } from '../schemas/conform.ts';
import { matches, parseWhere } from '../persona/filter.ts';
import { personaFilterAttributes } from '../persona/persona-filter.ts';
import { openStore } from '../store/open.ts';
import type { Store } from '../store/index.ts';
import type { Persona } from '../schemas/types.generated.ts';
import { PersonaHubError } from '../core/errors.ts';

/** `personahub show`, `export` and `import`: the store's personas as a reader, a file and back. */

async function withStore<T>(work: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore(loadConfig());
  try {
    await store.migrate();
    return await work(store);
  } finally {
    await store.close();
  }
}

/** A progress bar on stderr, drawn only on a terminal (a log file or a test gets the summary line alone). */
function progressBar(format: string): SingleBar {
  return new SingleBar({ format, stream: process.stderr, hideCursor: true }, Presets.shades_classic);
}

/** Fields the header already shows. */
const IN_HEADER = new Set(['id', 'version', 'name', 'age', 'occupation', 'locale', 'description']);

/** One line per leaf field, named by its path, walking persona.avsc so that every field is shown, new ones too. */
function fieldLines(value: unknown, type: AvroType, path: string, out: [string, string][]): void {
  const inner = nullableOf(type) ?? type;
  if (value === null || value === undefined) {
    out.push([path, '-']);
  } else if (typeof inner === 'object' && !Array.isArray(inner) && inner.type === 'record') {
    const record = value as Record<string, unknown>;
    for (const f of inner.fields) if (!(path === '' && IN_HEADER.has(f.name))) fieldLines(record[f.name], f.type, path ? `${path}.${f.name}` : f.name, out);
  } else if (typeof inner === 'object' && !Array.isArray(inner) && inner.type === 'long' && inner.logicalType === 'timestamp-millis') {
    out.push([path, new Date(value as number).toISOString()]);
  } else if (Array.isArray(value)) {
    // A vector is summed up: its size and first components.
    const numbers = value.every((x) => typeof x === 'number');
    out.push([path, value.length === 0 ? '-' : numbers && value.length > 8 ? `${value.length} dims [${(value as number[]).slice(0, 4).map((x) => x.toFixed(4)).join(', ')}, ...]` : value.join(', ')]);
  } else {
    out.push([path, typeof value === 'number' && !Number.isInteger(value) ? value.toFixed(3) : String(value) || '-']);
  }
}

/** The persona for a reader: who, then the text, then every other field of the schema by its path. */
export function renderPersona(p: Persona): string {
  const rows: [string, string][] = [];
  fieldLines(p, PERSONA_SCHEMA, '', rows);
  const width = Math.max(...rows.map(([k]) => k.length));
  return [
    `${p.name}, ${p.age}, ${p.occupation} (${p.locale})`,
    `id ${p.id}  version ${p.version}`,
    '',
    p.description,
    '',
    ...rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`),
  ].join('\n');
}

export function addCorpusCommands(program: Command): void {
  program.command('show').argument('<id>', 'persona id').option('--json', 'the persona as one JSON object (the export\'s JSONL shape)')
    .description('one stored persona with every field')
    .action(async (id: string, o: { json?: boolean }) => {
      const persona = await withStore((store) => store.readPersona(id));
      if (!persona) throw new PersonaHubError('PH_CORPUS_NOT_FOUND', `no persona ${id} in the store`);
      console.log(o.json ? personaLine(persona) : renderPersona(persona));
    });

  program.command('export').description('write the stored personas to a JSONL or Parquet file, resumable (re-run the same command to finish an interrupted export)')
    .addOption(new Option('--format <format>', 'file format').choices(['jsonl', 'parquet']).default('jsonl'))
    .requiredOption('--out <file>', 'file to write (beside it, <file>.export-state.json while unfinished)')
    .option('--where <filter>', 'only personas matching, e.g. "age>=30,occupation=nurse,country=Nigeria" (age, occupation, seedRelation, trait, country)')
    .option('--page-size <n>', 'personas per store page and per Parquet row group', (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 100_000) throw new InvalidArgumentError(`expected a whole number from 1 to 100000, got "${v}"`);
      return n;
    }, 1000)
    .option('--overwrite', 'start again, replacing the file and any unfinished state')
    .action(async (o: { format: ExportFormat; out: string; where?: string; pageSize: number; overwrite?: boolean }) => {
      const config = loadConfig();
      // Parsed before the store is opened, so a bad filter is refused at once with the clause named.
      const clauses = o.where === undefined ? undefined : parseWhere(o.where);
      const result = await withStore(async (store) => {
        const bar = progressBar(`export ${o.format} [{bar}] {percentage}% {value}/{total} personas read | {written} written | {duration_formatted}`);
        bar.start(await store.countPersonas(), 0, { written: 0 });
        try {
          return await exportCorpus({
            source: store, format: o.format, out: o.out, dimensions: config.embeddingDimensions, pageSize: o.pageSize, overwrite: o.overwrite ?? false,
            ...(clauses && o.where !== undefined ? { filter: { where: o.where, keep: (p: Persona) => matches(personaFilterAttributes(p), clauses) } } : {}),
            onPage: (p) => bar.update(p.scanned, { written: p.written }),
          });
        } finally {
          bar.stop();
        }
      });
      const resumed = result.resumedFrom ? `, resumed after ${result.resumedFrom.rows} rows (${result.resumedFrom.bytes} bytes)` : '';
      console.log(`exported ${result.rows} personas to ${o.out} (${o.format}, ${result.bytes} bytes${resumed})`);
    });

  program.command('import').argument('<file>', 'a corpus written by personahub export (JSONL or Parquet)')
    .description('load an exported corpus into the store (idempotent: importing it again changes nothing)')
    .action(async (file: string) => {
      const size = statSync(file).size;
      if (file.endsWith('.export-state.json') || statSync(statePath(file), { throwIfNoEntry: false })) {
        throw new PersonaHubError('PH_CORPUS_UNFINISHED', `${file} is an unfinished export (${statePath(file)} exists); finish it with personahub export first`);
      }
      const result = await withStore(async (store) => {
        const bar = progressBar('import {value} personas read | {written} inserted or updated | {duration_formatted}');
        bar.start(0, 0, { written: 0 });
        try {
          return await importCorpus(file, store, { pageSize: 1000, onPage: (r) => bar.update(r.read, { written: r.inserted + r.updated }) });
        } finally {
          bar.stop();
        }
      });
      console.log(`imported ${result.read} personas from ${file} (${size} bytes): ${result.inserted} inserted, ${result.updated} updated, ${result.unchanged} unchanged`);
    });
}

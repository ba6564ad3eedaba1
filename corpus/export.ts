import { closeSync, existsSync, fsyncSync, ftruncateSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import type { Persona } from '../schemas/types.generated.ts';
import { CorpusError, personaLine } from './persona-json.ts';
import { ParquetFile } from './parquet.ts';

export type ExportFormat = 'jsonl' | 'parquet';

/** What an export reads: whole personas in id order, a page at a time (the store's keyset pages). */
export interface PersonaSource {
  readPersonasAfter(afterId: string | null, limit: number): Promise<Persona[]>;
}

/**
 * The sidecar `<out>.export-state.json`, rewritten atomically after every page is durable in the file:
 * the last id written, the file's length at that point and, for Parquet, how many row groups the footer
 * will list, whose metadata goes to a second sidecar, `<out>.export-rowgroups.jsonl`, one line appended
 * per row group (so the state stays small however long the export). A run that finds the state truncates
 * the file to that length (cutting off a torn tail) and goes on after that id. Both are deleted when the
 * file is complete.
 */
interface ExportState {
  format: ExportFormat;
  where: string;
  pageSize: number;
  lastId: string | null;
  bytes: number;
  rows: number;
  /** Personas read from the store, written or filtered out. */
  scanned: number;
  /** Row groups written (Parquet): the first lines of the row-group log. */
  rowGroups?: number;
}

export interface ExportOptions {
  source: PersonaSource;
  format: ExportFormat;
  out: string;
  /** Embedding size, for Parquet's fixed-size list column. */
  dimensions: number;
  /** Rows per page read from the store, and per Parquet row group. */
  pageSize: number;
  /** Only personas for which this holds are written; `where` is its text, kept in the state so a resume applies the same filter. */
  filter?: { where: string; keep: (p: Persona) => boolean };
  /** Start again even if the file or a state exists. */
  overwrite?: boolean;
  /** After each page: rows written and personas read so far, over every run of this export (the progress bar). */
  onPage?: (p: { written: number; scanned: number }) => void;
}

export interface ExportResult {
  rows: number;
  bytes: number;
  resumedFrom: { rows: number; bytes: number; scanned: number } | undefined;
}

export const statePath = (out: string): string => `${out}.export-state.json`;
const rowGroupLog = (out: string): string => `${out}.export-rowgroups.jsonl`;

/** The row-group log cut to its first `count` lines (a line appended before a crash but not counted is dropped), opened for appending. */
function openRowGroupLog(out: string, count: number | undefined): { lines: string[]; fd: number } {
  const file = rowGroupLog(out);
  const lines = count === undefined ? [] : readFileSync(file, 'utf8').split('\n').slice(0, count);
  if (lines.length !== (count ?? 0)) throw new CorpusError('PH_CORPUS_STATE', `${file} holds ${lines.length} row groups, the state says ${count}; pass --overwrite to start again`);
  writeFileSync(file, lines.map((l) => `${l}\n`).join(''));
  return { lines, fd: openSync(file, 'a') };
}

function saveState(out: string, state: ExportState): void {
  const tmp = `${statePath(out)}.tmp`;
  writeFileSync(tmp, JSON.stringify(state));
  renameSync(tmp, statePath(out));
}

function loadState(out: string): ExportState | undefined {
  const file = statePath(out);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as ExportState;
  } catch (cause) {
    throw new CorpusError('PH_CORPUS_STATE', `${file} is unreadable (${(cause as Error).message}); pass --overwrite to start the export again`, { cause });
  }
}

/** Appends JSON lines, each page durable before the state that counts it is written. */
class JsonlFile {
  private readonly fd: number;
  private position: number;

  constructor(file: string, resumeBytes: number | undefined) {
    this.fd = openSync(file, resumeBytes === undefined ? 'w' : 'r+');
    this.position = resumeBytes ?? 0;
    if (resumeBytes !== undefined) ftruncateSync(this.fd, resumeBytes);
  }

  append(personas: readonly Persona[]): number {
    if (personas.length > 0) {
      const chunk = Buffer.from(personas.map((p) => `${personaLine(p)}\n`).join(''), 'utf8');
      writeSync(this.fd, chunk, 0, chunk.length, this.position);
      this.position += chunk.length;
    }
    fsyncSync(this.fd);
    return this.position;
  }

  finish(): number {
    closeSync(this.fd);
    return this.position;
  }

  close(): void {
    closeSync(this.fd);
  }
}

/**
 * Streams the store into `out` (JSONL or Parquet), a page at a time in id order, resumable: re-running
 * after an interruption continues after the last page made durable, and the finished file is byte for
 * byte the one an uninterrupted run writes from the same store.
 */
export async function exportCorpus(o: ExportOptions): Promise<ExportResult> {
  const where = o.filter?.where ?? '';
  const state = o.overwrite ? undefined : loadState(o.out);
  if (o.overwrite) {
    rmSync(statePath(o.out), { force: true });
    rmSync(rowGroupLog(o.out), { force: true });
  }
  if (state) {
    const differs = state.format !== o.format ? `format ${state.format}` : state.where !== where ? `filter "${state.where}"` : state.pageSize !== o.pageSize ? `page size ${state.pageSize}` : undefined;
    if (differs) throw new CorpusError('PH_CORPUS_STATE', `${o.out} is an unfinished export with ${differs}; re-run it the same way to finish it, or pass --overwrite`);
    if (!existsSync(o.out)) throw new CorpusError('PH_CORPUS_STATE', `${statePath(o.out)} describes ${o.out}, which is gone; pass --overwrite to start again`);
  } else if (!o.overwrite && existsSync(o.out)) {
    throw new CorpusError('PH_CORPUS_EXISTS', `${o.out} exists and is not an unfinished export; pass --overwrite to replace it`);
  }
  const resumedFrom = state && { rows: state.rows, bytes: state.bytes, scanned: state.scanned };
  const log = o.format === 'parquet' ? openRowGroupLog(o.out, state?.rowGroups) : undefined;
  const file = o.format === 'jsonl' || !log
    ? new JsonlFile(o.out, state?.bytes)
    : state ? ParquetFile.resume(o.out, o.dimensions, state.bytes, log.lines) : ParquetFile.create(o.out, o.dimensions);
  let current: ExportState = state ?? { format: o.format, where, pageSize: o.pageSize, lastId: null, bytes: 0, rows: 0, scanned: 0, ...(log ? { rowGroups: 0 } : {}) };
  try {
    for (;;) {
      const page = await o.source.readPersonasAfter(current.lastId, o.pageSize);
      if (page.length === 0) break;
      const kept = o.filter ? page.filter(o.filter.keep) : page;
      const lastId = page[page.length - 1]?.id ?? current.lastId;
      const scanned = current.scanned + page.length;
      if (file instanceof JsonlFile) {
        current = { ...current, lastId, bytes: file.append(kept), rows: current.rows + kept.length, scanned };
      } else {
        const done = file.append(kept);
        if (log && done.rowGroup !== undefined) {
          writeSync(log.fd, `${done.rowGroup}\n`);
          fsyncSync(log.fd);
        }
        current = { ...current, lastId, bytes: done.bytes, rows: done.rows, scanned, rowGroups: (current.rowGroups ?? 0) + (done.rowGroup === undefined ? 0 : 1) };
      }
      saveState(o.out, current);
      o.onPage?.({ written: current.rows, scanned: current.scanned });
    }
  } catch (error) {
    file.close();
    if (log) closeSync(log.fd);
    throw error;
  }
  const bytes = file.finish();
  if (log) closeSync(log.fd);
  rmSync(statePath(o.out), { force: true });
  rmSync(rowGroupLog(o.out), { force: true });
  return { rows: current.rows, bytes, resumedFrom };
}

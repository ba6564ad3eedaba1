import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, totalmem, type } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import type { Config } from '../config/index.ts';
import { PersonaHubError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { kafkaPaths } from '../stack/kafka.ts';
import { openStore } from '../store/open.ts';

/**
 * What every benchmark shares: the shape of its figures, the alternation of baseline and candidate, and the
 * machine description. The machines are shared and noisy, so a benchmark never reports a bare speed as its
 * result: it reports the candidate's rate over a baseline's, both measured in the same invocation, taking
 * turns, and the spread (min/median/max) over the repeats.
 */

export class BenchError extends PersonaHubError {
  constructor(code: `PH_BENCH_${string}`, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
  }
}

export const REPO_ROOT = join(import.meta.dirname, '..');

/** A target a figure is judged against: `>=` for rates and recall, `<=` for memory and error. */
export interface Target {
  op: '>=' | '<=';
  value: number;
}

export interface Figure {
  /** Stable id within the benchmark (the results file is read by scripts and the smoke test). */
  id: string;
  label: string;
  /** 'x' for a ratio, otherwise the unit of the values ('ops/s', 'MiB', 'recall@10'...). */
  unit: string;
  /** One value per repeat, in run order. */
  samples: number[];
  min: number;
  median: number;
  max: number;
  target?: Target;
  /** Whether the median meets the target; absent when there is none. */
  met?: boolean;
}

export interface BenchOutcome {
  name: string;
  title: string;
  /** What was measured with what: sizes, repeats, library versions, parameters. */
  params: Record<string, string | number | boolean>;
  figures: Figure[];
  /** Facts a reader needs beside the table (what was skipped and why, what a profile showed). */
  notes: string[];
  seconds: number;
  finishedAt: string;
  /** The 1-minute load average when it finished: a figure taken on a busy machine says so. */
  loadAverage: number;
}

export interface BenchContext {
  smoke: boolean;
  logger: Logger;
  /** Where installed tools (the Python venv) are cached between runs. */
  cacheDir: string;
  /** A scratch folder of this invocation, removed at the end. */
  workDir: string;
  /** Where the results go: a benchmark's files (plots) are written beside the results file. */
  outDir: string;
}

export interface Benchmark {
  name: string;
  title: string;
  run(ctx: BenchContext): Promise<Omit<BenchOutcome, 'name' | 'title' | 'seconds' | 'finishedAt' | 'loadAverage'>>;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function figure(id: string, label: string, unit: string, samples: readonly number[], target?: Target): Figure {
  const med = median(samples);
  const f: Figure = { id, label, unit, samples: [...samples], min: Math.min(...samples), median: med, max: Math.max(...samples) };
  if (target) {
    f.target = target;
    f.met = target.op === '>=' ? med >= target.value : med <= target.value;
  }
  return f;
}

/** A rate in operations per second of work done in `ms`. */
export function rate(operations: number, ms: number): number {
  return operations / (ms / 1000);
}

export async function timed<T>(work: () => Promise<T> | T): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await work();
  return { value, ms: performance.now() - start };
}

/**
 * Runs each of `sides` `repeats` times, taking turns and rotating who goes first every repeat, so that load
 * from other processes (and any warm-up) falls on all alike. Returns each side's results in repeat order.
 */
export async function takeTurns<T>(repeats: number, sides: readonly ((repeat: number) => Promise<T>)[]): Promise<T[][]> {
  const out: T[][] = sides.map(() => []);
  for (let r = 0; r < repeats; r += 1) {
    for (let k = 0; k < sides.length; k += 1) {
      const side = (r + k) % sides.length;
      (out[side] as T[]).push(await (sides[side] as (repeat: number) => Promise<T>)(r));
    }
  }
  return out;
}

export interface Machine {
  cores: number;
  cpu: string;
  memoryGiB: number;
  os: string;
  node: string;
  loadAverageStart: number;
  loadAverageEnd?: number;
}

export function machine(): Machine {
  return {
    cores: cpus().length,
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: type(),
    node: process.version,
    loadAverageStart: Math.round((loadavg()[0] ?? 0) * 100) / 100,
  };
}

/** The installed versions of the packages the benchmarks exercise (from node_modules, not package.json ranges). */
export function packageVersions(names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string };
    out[name] = pkg.version;
  }
  return out;
}

export function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/** A TCP port free on 127.0.0.1 at the moment of asking, for a server a benchmark starts. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** GET with a 5 s deadline; a refused or failed request is `ok: false`, not an error (servers being polled may not be up yet). */
export async function httpGet(url: string): Promise<{ ok: boolean; text: string }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    return { ok: res.ok, text: await res.text() };
  } catch {
    return { ok: false, text: '' };
  }
}

/** Sum of the series of `name` in a Prometheus text whose labels contain `labels` (e.g. `topic="x"`). */
export function metricSum(text: string, name: string, labels = ''): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (line.includes(labels)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** utime + stime of a process from /proc, in seconds (Linux clock ticks are 100 Hz). */
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** A process's resident set from /proc (a child's is its own, not the bench's); undefined once it has gone. */
export function rssMiB(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** A child process of the bench (a stage, a model server), its stderr kept in `log` for when it fails. */
export interface Child {
  name: string;
  child: ChildProcess;
  log: string;
}

/** `node <args>` from the repository root with only PATH, HOME and `env`: the environment a deployment gives it. */
export function spawnChild(ctx: Pick<BenchContext, 'workDir'>, name: string, args: string[], env: Record<string, string>): Child {
  const log = join(ctx.workDir, `${name}.log`);
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr?.pipe(createWriteStream(log));
  return { name, child, log };
}

export function exitedEarly(c: Child): BenchError | undefined {
  if (c.child.exitCode === null && c.child.signalCode === null) return undefined;
  let tail = '';
  try {
    tail = readFileSync(c.log, 'utf8').split('\n').slice(-5).join('\n');
  } catch {
    tail = '(no log)';
  }
  return new BenchError('PH_BENCH_CHILD_EXIT', `${c.name} exited (${c.child.exitCode ?? c.child.signalCode}) before the pass ended: ${tail}`);
}

/** SIGTERM, as a deployment stops a stage: it commits what it holds and exits 0 (SIGKILL after a minute). */
export async function stopChild(c: Child): Promise<void> {
  if (c.child.exitCode !== null || c.child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => c.child.once('exit', () => resolve()));
  c.child.kill('SIGTERM');
  const killer = setTimeout(() => c.child.kill('SIGKILL'), 60_000);
  await exited;
  clearTimeout(killer);
}

/** Polls `check` every `pollMs` until it holds; fails at once when one of `children` exits, or after `timeoutMs`. */
export async function waitFor(what: string, children: readonly Child[], check: () => Promise<boolean>, timeoutMs: number, pollMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    for (const c of children) {
      const early = exitedEarly(c);
      if (early) throw early;
    }
    if (performance.now() > deadline) throw new BenchError('PH_BENCH_TIMEOUT', `${what}: not done after ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** The text model a model server that only embeds must still load (the server always loads one): the smallest. */
const EMBEDDING_SERVER_TEXT_MODEL = 'qwen2.5-coder-0.5b';

/**
 * A model server for the embeddings of a run: `personahub llm serve` (all-MiniLM-L6-v2) on a port of its own, so
 * no one else's requests share it. `env` is the run's PERSONAHUB_* settings (benchEnv).
 */
export async function startModelServer(ctx: Pick<BenchContext, 'workDir'>, env: Record<string, string>): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const port = await freePort();
  const c = spawnChild(ctx, 'llm-serve', ['--import', 'tsx', 'cli/main.ts', 'llm', 'serve'], {
    ...env, PERSONAHUB_LLM_PORT: String(port), PERSONAHUB_LOCAL_LLM: EMBEDDING_SERVER_TEXT_MODEL, PERSONAHUB_LOG_LEVEL: 'warn',
  });
  const url = `http://127.0.0.1:${port}/v1`;
  await waitFor('model server start', [c], async () => (await httpGet(`${url}/models`)).ok, 600_000, 250);
  return { url, pid: c.child.pid ?? 0, stop: () => stopChild(c) };
}

/** Creates the store's tables before stage processes start, so several processes never race to create them. */
export async function migrateStore(config: Config): Promise<void> {
  const store = await openStore(config);
  try {
    await store.migrate();
  } finally {
    await store.close();
  }
}

export interface TableSize { table: string; rows: number; heapBytes: number; indexBytes: number; toastBytes: number; totalBytes: number; indexes: Record<string, number> }

/** Every table of the database's public schema with its indexes and TOAST, and its exact row count. */
export async function tableSizes(url: string): Promise<TableSize[]> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    const tables = await client.query<{ table: string; heap: string; idx: string; total: string }>(
      `SELECT c.relname AS table, pg_relation_size(c.oid) AS heap, pg_indexes_size(c.oid) AS idx, pg_total_relation_size(c.oid) AS total
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY c.relname`,
    );
    const indexes = await client.query<{ table: string; index: string; bytes: string }>(
      'SELECT relname AS table, indexrelname AS index, pg_relation_size(indexrelid) AS bytes FROM pg_stat_user_indexes ORDER BY relname, indexrelname',
    );
    const out: TableSize[] = [];
    for (const r of tables.rows) {
      // Exact counts: the planner's reltuples is an estimate, and one count per table is affordable even at a million rows.
      const rows = Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM "${r.table}"`)).rows[0]?.n ?? 0);
      const heap = Number(r.heap);
      const idx = Number(r.idx);
      const total = Number(r.total);
      out.push({
        table: r.table, rows, heapBytes: heap, indexBytes: idx, toastBytes: total - heap - idx, totalBytes: total,
        indexes: Object.fromEntries(indexes.rows.filter((i) => i.table === r.table).map((i) => [i.index, Number(i.bytes)])),
      });
    }
    return out;
  } finally {
    await client.end();
  }
}

/**
 * The local single-node broker's log segments of the topics named `<prefix>.*`, bytes per topic (undefined when
 * its data directory is not readable here, as with a remote broker).
 */
export function segmentBytes(config: Config, prefix: string): Record<string, number> | undefined {
  const dir = kafkaPaths(config.home, config.cacheDir).data;
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return undefined;
  }
  const out: Record<string, number> = {};
  for (const e of entries.filter((name) => name.startsWith(`${prefix}.`))) {
    const topic = e.replace(/-\d+$/, '');
    // .log files only: the offset and time indexes are preallocated sparse files whose size says nothing.
    const logs = readdirSync(join(dir, e)).filter((f) => f.endsWith('.log'));
    out[topic] = (out[topic] ?? 0) + logs.reduce((s, f) => s + statSync(join(dir, e, f)).size, 0);
  }
  return out;
}

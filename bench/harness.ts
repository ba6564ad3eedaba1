import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, totalmem, type } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { PersonaHubError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';

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

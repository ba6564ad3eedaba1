import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { StageName } from '../../topology/index.ts';
import { freePort } from '../../bench/harness.ts';
import type { TestPipeline } from './pipeline.ts';

/** The benchmarks' free-port probe, which the fault tests' helpers and tests use too. */
export { freePort };

/**
 * Stage processes for fault tests: each `personahub processor <stage>` runs as its own child with
 * its own metrics port, can be killed and replaced, and is scraped for its metrics and probes.
 */
export interface StageProcess {
  stage: StageName;
  child: ChildProcess;
  metricsPort: number;
}

/**
 * Where a child process's output goes: nowhere by default; PH_TEST_CHILD_LOGS=true passes its stderr
 * through, and PH_TEST_CHILD_LOGS=<directory> keeps its whole output (the JSON logs) in
 * `<directory>/<name>-<pid>.log`, to read after a failure.
 */
export function childLogs(child: ChildProcess, name: string): void {
  const where = process.env.PH_TEST_CHILD_LOGS;
  if (where && where !== 'true') {
    mkdirSync(where, { recursive: true });
    const file = createWriteStream(join(where, `${name}-${child.pid ?? 'unknown'}.log`));
    child.stdout?.pipe(file);
    child.stderr?.pipe(file);
    return;
  }
  child.stdout?.resume();
  if (where === 'true') child.stderr?.pipe(process.stderr);
  else child.stderr?.resume();
}

export class StageFleet {
  readonly processes: StageProcess[] = [];
  /** Exits the fleet did not ask for, with their codes: a fault test fails on any. */
  readonly unexpectedExits: { stage: StageName; code: number | null; signal: NodeJS.Signals | null }[] = [];
  private readonly stopping = new Set<ChildProcess>();

  constructor(private readonly t: TestPipeline, private readonly env: Record<string, string> = {}) {}

  async start(stage: StageName): Promise<StageProcess> {
    const metricsPort = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'processor', stage], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NODE_OPTIONS: process.env.NODE_OPTIONS ?? '', ...this.t.env, ...this.env, PERSONAHUB_METRICS_PORT: String(metricsPort) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    childLogs(child, stage);
    child.once('exit', (code, signal) => {
      if (!this.stopping.has(child)) this.unexpectedExits.push({ stage, code, signal });
    });
    const p = { stage, child, metricsPort };
    this.processes.push(p);
    return p;
  }

  async startAll(stages: readonly StageName[]): Promise<void> {
    for (const s of stages) await this.start(s);
  }

  /** Stops one process with `signal` and resolves with its exit code; it leaves the fleet. */
  async stop(p: StageProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    this.stopping.add(p.child);
    this.processes.splice(this.processes.indexOf(p), 1);
    if (p.child.exitCode !== null || p.child.signalCode !== null) return p.child.exitCode;
    const exited = new Promise<number | null>((resolve) => p.child.once('exit', (code) => resolve(code)));
    p.child.kill(signal);
    return exited;
  }

  async stopAll(signal: NodeJS.Signals = 'SIGTERM'): Promise<(number | null)[]> {
    return Promise.all([...this.processes].map((p) => this.stop(p, signal)));
  }

  of(stage: StageName): StageProcess[] {
    return this.processes.filter((p) => p.stage === stage);
  }

  /** One metric's value summed over the fleet's processes (labels must all match). */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    let sum = 0;
    for (const p of this.processes) sum += await scrape(p.metricsPort, name, labels);
    return sum;
  }

  /** Waits until every process answers its readiness probe with 200. */
  async untilReady(timeoutMs = 180_000): Promise<void> {
    await until(async () => {
      const codes = await Promise.all(this.processes.map((p) => probe(p.metricsPort, '/health/ready')));
      return codes.every((c) => c === 200);
    }, timeoutMs, 'every stage process ready');
  }
}

export async function probe(port: number, path: string): Promise<number> {
  try {
    return (await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5_000) })).status;
  } catch {
    return 0;
  }
}

/** A metric's value from a process's /metrics (0 when absent or unreachable), summed over matching series. */
export async function scrape(port: number, name: string, labels: Record<string, string> = {}): Promise<number> {
  let text: string;
  try {
    text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  } catch {
    return 0;
  }
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/**
 * Polls `check` until it holds; fails with `what` after the timeout (a hang guard, not a speed check).
 * `explain`, when given, describes the state at the timeout inside the error itself: CI keeps only the
 * tail of a run, where the failure is, not the logs printed before it.
 */
export async function until(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string, explain?: () => Promise<unknown> | unknown): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      const state = explain ? `; state: ${JSON.stringify(await explain())}` : '';
      throw new Error(`timed out waiting for: ${what}${state}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * The end-of-test audit every fault test makes: every seed accounted for at every hop (none lost),
 * one record per key on every topic (read_committed: none duplicated), one store row per validated
 * persona, one INSERTED/UPDATED announcement per stored persona, and the DLQ count expected.
 */
export async function expectNothingLostOrDuplicated(t: TestPipeline, seedIds: ReadonlySet<string>, o: { dlq: number }): Promise<void> {
  const { observer } = t;
  const accounting = observer.accounting(seedIds);
  expect(accounting.map((h) => ({ hop: h.hop, pending: h.pending.length })), 'lost at a hop').toEqual(accounting.map((h) => ({ hop: h.hop, pending: 0 })));
  for (const event of ['seed', 'draft', 'enriched', 'validated', 'rejected', 'indexed', 'dlq'] as const) {
    expect({ event, records: observer.records[event] }, `duplicates on ${event}`).toEqual({ event, records: observer.seen[event].size });
  }
  expect(observer.seen.dlq.size, 'dead letters').toBe(o.dlq);
  expect(await t.pipeline.ctx.store.countPersonas(), 'store rows').toBe(observer.seen.validated.size);
  const untruthful = [...observer.indexedOutcomes].filter(([, outcomes]) => outcomes.filter((x) => x === 'INSERTED' || x === 'UPDATED').length !== 1);
  expect(untruthful.slice(0, 5), 'personas without exactly one INSERTED/UPDATED on the indexed topic').toEqual([]);
  expect(observer.indexedOutcomes.size).toBe(observer.seen.validated.size);
}

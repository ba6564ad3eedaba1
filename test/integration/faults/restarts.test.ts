import { afterAll, describe, expect, it } from 'vitest';
import { stackOptions } from '../../../cli/wiring.ts';
import { loadConfig } from '../../../config/index.ts';
import { createLogger } from '../../../core/logger.ts';
import { stackDown, stackStatus, stackUp, type StackOptions } from '../../../stack/index.ts';
import { stages, type StageName } from '../../../topology/index.ts';
import { expectNothingLostOrDuplicated, probe, StageFleet, until, type StageProcess } from '../../helpers/faults.ts';
import { createTestPipeline, type TestPipeline } from '../../helpers/pipeline.ts';

/**
 * Each dependency restarted mid-run, under the deployment shape (one process per stage), with no
 * operator action: the broker (down ~20 s), the schema registry, PostgreSQL. Afterwards every seed is
 * accounted for at every hop, nothing is duplicated on any topic or in the store, no event went to the
 * DLQ (an outage is transient: waited out, never dead-lettered), every stored persona was announced
 * INSERTED exactly once although transactions were aborted and redone, and the metrics say what happened.
 *
 * The stack is the suite's own (global setup): each case brings the service it stopped back with
 * stackUp, in a finally, so the files after this one find the stack whole whatever happened here.
 */

const SEEDS = 300;
const STAGES = stages.map((s) => s.name);
/** Sampler drafts and hash embeddings: no LLM, so the only dependencies are the ones restarted here. */
const ENV = {
  PERSONAHUB_MODE: 'sampler', PERSONAHUB_EMBEDDER: 'hash',
  // The test's own clients log every refused connection of the outage; PH_TEST_CHILD_LOGS=true shows them (and the stages').
  PERSONAHUB_LOG_LEVEL: process.env.PH_TEST_CHILD_LOGS === 'true' ? 'warn' : 'fatal',
  // A dead member's partitions move after 6 s rather than 30 s; backoff and breaker probes capped at 5 s.
  PERSONAHUB_SESSION_TIMEOUT_MS: '6000', PERSONAHUB_RETRY_MAX_DELAY_MS: '5000', PERSONAHUB_BREAKER_OPEN_MS: '1000',
  // One event and one partition at a time per process, three personas per seed: the run lasts long
  // enough (seconds, not minutes) for the outage to land in the middle of it.
  PERSONAHUB_MAX_IN_FLIGHT: '1', PERSONAHUB_PARTITION_CONCURRENCY: '1', PERSONAHUB_PERSONAS_PER_SEED: '3',
};
/** Hang guards only: no assertion is about how long anything took. */
const SETTLE_TIMEOUT_MS = 300_000;

const logger = createLogger({ level: 'warn', name: 'restarts-test' });
const stack: StackOptions = stackOptions(loadConfig({ ...process.env, PERSONAHUB_START_LOCAL_LLM: 'false' }), logger);

/** One series of a scraped metric. */
interface Series { labels: Record<string, string>; value: number }

async function series(port: number, name: string): Promise<Series[]> {
  let text: string;
  try {
    text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  } catch {
    return [];
  }
  const out: Series[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1] ?? '', m[2] ?? '']));
    out.push({ labels, value: Number(line.slice(line.lastIndexOf(' ') + 1)) });
  }
  return out;
}

/**
 * Counters of the fleet's processes, read before anything is stopped (a process's counters die with it):
 * dead letters, retries by reason, consumer restarts; `extra` adds what replaced processes had counted.
 */
interface Counters { dlq: number; retries: Map<string, number>; consumerRestarts: number; breakerOpen: number }

async function counters(processes: readonly StageProcess[]): Promise<Counters> {
  const c: Counters = { dlq: 0, retries: new Map(), consumerRestarts: 0, breakerOpen: 0 };
  for (const p of processes) {
    for (const s of await series(p.metricsPort, 'personahub_events_dead_lettered_total')) c.dlq += s.value;
    for (const s of await series(p.metricsPort, 'personahub_consumer_restarts_total')) c.consumerRestarts += s.value;
    for (const s of await series(p.metricsPort, 'personahub_breaker_state')) if (s.value > 0) c.breakerOpen += 1;
    for (const s of await series(p.metricsPort, 'personahub_retries_total')) {
      const reason = s.labels.reason ?? '';
      c.retries.set(reason, (c.retries.get(reason) ?? 0) + s.value);
    }
  }
  return c;
}

function add(a: Counters, b: Counters): Counters {
  const retries = new Map(a.retries);
  for (const [k, v] of b.retries) retries.set(k, (retries.get(k) ?? 0) + v);
  return { dlq: a.dlq + b.dlq, retries, consumerRestarts: a.consumerRestarts + b.consumerRestarts, breakerOpen: a.breakerOpen + b.breakerOpen };
}

/** Retries whose code (the part of the reason after `step:`) is `code`. */
function retriesWith(c: Counters, code: string): number {
  let n = 0;
  for (const [reason, v] of c.retries) if (reason.endsWith(`:${code}`)) n += v;
  return n;
}

/** What the fleet's probes and breaker gauges showed while a dependency was down. */
interface Watched {
  /** The highest breaker state seen per dependency (2: open). */
  maxBreaker: Map<string, number>;
  notReady: Set<StageName>;
  notLive: Set<StageName>;
}

/** Polls the fleet's breaker gauges and probes while `during` runs (whatever processes it has then). */
async function watching(fleet: StageFleet, during: (seen: Watched) => Promise<void>): Promise<Watched> {
  const seen: Watched = { maxBreaker: new Map(), notReady: new Set(), notLive: new Set() };
  let done = false;
  const loop = (async () => {
    while (!done) {
      for (const p of [...fleet.processes]) {
        for (const s of await series(p.metricsPort, 'personahub_breaker_state')) {
          const dep = s.labels.dependency ?? '';
          seen.maxBreaker.set(dep, Math.max(seen.maxBreaker.get(dep) ?? 0, s.value));
        }
        if ((await probe(p.metricsPort, '/health/ready')) === 503) seen.notReady.add(p.stage);
        if ((await probe(p.metricsPort, '/health/live')) === 503) seen.notLive.add(p.stage);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  try {
    await during(seen);
  } finally {
    done = true;
    await loop;
  }
  return seen;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Keeps the stack whole while a case settles. Another suite run against this home meanwhile (its
 * global setup starts what it finds down, and its teardown stops what it started) can stop a service
 * this case had brought back: that is not the pipeline's doing, so it is started again, and logged.
 */
function guardStack(log: (what: string) => void): () => Promise<void> {
  let done = false;
  const loop = (async () => {
    while (!done) {
      const status = await stackStatus(stack).catch(() => undefined);
      const down = status?.services.filter((s) => ['postgres', 'kafka', 'registry'].includes(s.name) && !s.running).map((s) => s.name) ?? [];
      if (down.length > 0) {
        log(`WARNING: ${down.join(', ')} stopped by something outside this test; starting it again`);
        await stackUp(stack).catch((error: unknown) => log(`stackUp failed: ${String(error)}`));
      }
      await sleep(1_000);
    }
  })();
  return async () => {
    done = true;
    await loop;
  };
}

interface Case {
  t: TestPipeline;
  fleet: StageFleet;
  seedIds: Set<string>;
  /** Counters of processes replaced during the case, scraped before they stopped. */
  replaced: Counters;
  log: (what: string) => void;
}

/**
 * The frame every case shares: a fresh pipeline, one process per stage, SEEDS seeds ingested; once
 * some are indexed and before all are, `outage` runs; then the run must settle and pass the audit.
 * Whatever happens, the processes are stopped, the stack is brought up whole, the pipeline closed.
 */
async function restartCase(name: string, outage: (c: Case) => Promise<void>, check: (c: Case, totals: Counters) => void): Promise<void> {
  const started = Date.now();
  const log = (what: string) => console.info(`[restarts:${name}] +${((Date.now() - started) / 1000).toFixed(1)}s ${what}`);
  const t = await createTestPipeline(ENV);
  const fleet = new StageFleet(t);
  const c: Case = { t, fleet, seedIds: new Set(), replaced: { dlq: 0, retries: new Map(), consumerRestarts: 0, breakerOpen: 0 }, log };
  try {
    await fleet.startAll(STAGES);
    await fleet.untilReady();
    log('fleet ready');
    const seeds = t.seeds(SEEDS);
    c.seedIds = new Set(seeds.map((s) => s.id));
    await t.ingest(seeds);
    log(`ingested ${seeds.length}`);
    await until(() => t.observer.seen.indexed.size >= 10, SETTLE_TIMEOUT_MS, 'the first personas indexed');
    log(`indexed ${t.observer.seen.indexed.size}: outage starts`);
    await outage(c);
    log(`outage over: indexed ${t.observer.seen.indexed.size}`);

    const unguard = guardStack(log);
    let settled: boolean;
    try {
      settled = await t.observer.waitUntilSettled(c.seedIds, {
        timeoutMs: SETTLE_TIMEOUT_MS,
        // A stage process that died (a crash on the outage) leaves its hop pending forever: say so at once.
        onTick: () => expect(fleet.unexpectedExits, 'stage processes that exited by themselves').toEqual([]),
      });
    } finally {
      await unguard();
    }
    log(`settled=${settled}: indexed ${t.observer.seen.indexed.size}, rejected ${t.observer.seen.rejected.size}`);
    expect(t.observer.accounting(c.seedIds).map((h) => ({ hop: h.hop, pending: h.pending.length }))).toEqual(
      t.observer.accounting(c.seedIds).map((h) => ({ hop: h.hop, pending: 0 })));
    expect(settled).toBe(true);
    // Every breaker closed again and every consumer in its group: the pipeline recovered by itself.
    await fleet.untilReady();

    const totals = add(c.replaced, await counters(fleet.processes));
    log(`metrics: dlq ${totals.dlq}, consumer restarts ${totals.consumerRestarts}, retries ${JSON.stringify(Object.fromEntries(totals.retries))}; observer consumers replaced ${t.observer.consumerRestarts}`);
    await expectNothingLostOrDuplicated(t, c.seedIds, { dlq: 0 });
    expect(t.observer.undecodable).toEqual([]);
    // The DLQ metric is counted on commit: summed over the processes it equals the DLQ topic (empty).
    expect(totals.dlq).toBe(t.observer.records.dlq);
    expect(totals.dlq).toBe(0);
    expect(totals.breakerOpen, 'breakers still open').toBe(0);
    check(c, totals);

    expect(fleet.unexpectedExits).toEqual([]);
    const codes = await fleet.stopAll();
    expect(codes).toEqual(codes.map(() => 0));
    log('done');
  } finally {
    await fleet.stopAll('SIGKILL').catch(() => {});
    try {
      // Whatever failed above, the next case and the next file need the whole stack.
      await stackUp(stack);
    } finally {
      await t.close();
    }
  }
}

describe('a dependency restarted mid-run', () => {
  afterAll(async () => {
    await stackUp(stack);
    expect((await stackStatus(stack)).allReady).toBe(true);
  });

  it('broker: down ~20 s (plus its start), then back; consumers rejoin, aborted transactions are redone', async () => {
    await restartCase('broker', async ({ t, fleet, seedIds, log }) => {
      await stackDown(stack, ['kafka']);
      log(`broker stopped: indexed ${t.observer.seen.indexed.size}`);
      // Mid-run: the broker went down with work left (nothing moves while it is down).
      expect(t.observer.settled(seedIds)).toBe(false);
      const seen = await watching(fleet, () => sleep(20_000));
      // No heartbeat for longer than the session timeout (or a crashed consumer): every stage says it is
      // not live while the broker is gone, so an orchestrator would see it.
      expect([...seen.notLive].sort(), 'stages not live during the outage').toEqual([...STAGES].sort());
      await stackUp(stack);
      log('broker back');
    }, (_c, totals) => {
      // The runner's view: transactions that failed and were redone, or consumers it restarted.
      expect(retriesWith(totals, 'PH_BROKER_UNAVAILABLE') + totals.consumerRestarts).toBeGreaterThan(0);
    });
  }, 600_000);

  it('registry: down while every stage process is replaced (cold schema caches); the stages wait, then resume', async () => {
    await restartCase('registry', async (c) => {
      const { fleet, log } = c;
      // A running process has every schema it needs cached and goes on as if nothing happened; a
      // process started during the outage (a rollout, a rescheduled pod) has none and must wait. So
      // the registry goes down while the whole fleet is replaced: counters first (they die with it).
      c.replaced = await counters(fleet.processes);
      const [, codes] = await Promise.all([stackDown(stack, ['registry']), fleet.stopAll()]);
      expect(codes).toEqual(codes.map(() => 0));
      log(`registry stopped, fleet stopped: indexed ${c.t.observer.seen.indexed.size}`);
      await fleet.startAll(STAGES);
      const seen = await watching(fleet, async (w) => {
        // Until a new process has tried the registry, failed and opened its breaker; then a while longer.
        await until(() => w.maxBreaker.get('registry') === 2, 120_000, 'a registry breaker open');
        expect(c.t.observer.settled(c.seedIds)).toBe(false);
        await sleep(10_000);
      });
      expect(seen.maxBreaker.get('registry')).toBe(2);
      expect(seen.notReady.size).toBeGreaterThan(0);
      await stackUp(stack);
      log('registry back');
    }, (_c, totals) => {
      expect(retriesWith(totals, 'PH_SERDE_REGISTRY_UNAVAILABLE')).toBeGreaterThan(0);
    });
  }, 600_000);

  it('PostgreSQL: restarted; claims, checks and upserts wait it out, nothing is announced twice', async () => {
    await restartCase('postgres', async ({ t, fleet, seedIds, log }) => {
      const seen = await watching(fleet, async (w) => {
        await stackDown(stack, ['postgres']);
        log(`postgres stopped: indexed ${t.observer.seen.indexed.size}`);
        // Every stage claims its inputs in the store: their breakers open and they pause.
        await until(() => w.maxBreaker.get('store') === 2, 120_000, 'a store breaker open');
        expect(t.observer.settled(seedIds)).toBe(false);
        await sleep(10_000);
      });
      expect(seen.maxBreaker.get('store')).toBe(2);
      expect(seen.notReady.size).toBeGreaterThan(0);
      await stackUp(stack);
      log('postgres back');
    }, (_c, totals) => {
      expect(retriesWith(totals, 'PH_STORE_UNAVAILABLE')).toBeGreaterThan(0);
    });
  }, 600_000);
});

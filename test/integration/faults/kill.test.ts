import type { ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { producerConfig } from '../../../runtime/kafka.ts';
import { stage as stageSpec, stages, topicName, type EventName, type StageName } from '../../../topology/index.ts';
import { expectNothingLostOrDuplicated, StageFleet, until, type StageProcess } from '../../helpers/faults.ts';
import { startLatencyProxy, type LatencyProxy } from '../../helpers/latency-proxy.ts';
import { spawnCli, stopChild, type TestPipeline } from '../../helpers/pipeline.ts';
import type { Seed } from '../../../schemas/types.generated.ts';
import { abortedIn, committedInputPartitions, committedLogObserver, createTestPipelineGuarded, heldInputs, metricsText, metricSum, OffsetProbe, pipelineTopics, prng, readLog, readTopics, SeedFeed, seedRange, type LogRecord, type RecordState } from '../../helpers/transactions.ts';

/**
 * kill -9: the four stages run as separate processes; a seeded PRNG picks a stage and a moment, and
 * the stage's process is killed with SIGKILL while it holds a chunk (consumed, not yet committed,
 * judged by its own metrics), then a new one is started in its place: at least KILLS times over a
 * run of at least MIN_SEEDS seeds. The stage processes reach the store through a proxy that delays
 * its answers (STORE_LATENCY_MS), so every chunk is held at least that long, on any machine. The
 * moment is refined with SIGSTOP: frozen, the process is killed if its output partitions show a
 * transaction of its own with records in the log (last stable offset below the log end), otherwise it
 * is let go and another moment drawn (MAX_PROBES times at most).
 *
 * Afterwards every seed is accounted for at every hop, nothing is duplicated on any topic or in the
 * store, nothing was dead-lettered, no transaction is left open, and records of aborted transactions
 * lie in the offset ranges that were open when processes were killed (at least one kill proven that
 * way; the run prints how many): kills landed between a transaction's sends and its commit. The audit
 * reads the log itself (readLog: each record judged by the marker that ends its transaction), and the
 * live observer, a kafkajs read_committed consumer like the stages, must have been handed exactly that
 * (kafkajs 2.2.4's own filter let records of overlapping aborted transactions through, 2 to 37 drafts
 * per run, until runtime/kafkajs-patches.ts; see "overlapping aborted transactions" below).
 *
 * Replay a failing schedule with PH_KILL_SEED=<the printed seed> (the schedule is the PRNG's; where
 * in a chunk each moment falls still depends on the machine).
 */
const KILLS = 12;
const MIN_SEEDS = 2_000;
const WAVE = 100;
/** SIGSTOPs per kill looking for an open transaction before the process is killed wherever it is. */
const MAX_PROBES = 20;
/** Added to every answer of the store to the stage processes: each chunk they take is held at least this long. */
const STORE_LATENCY_MS = 100;
const stageNames = stages.map((s) => s.name);
const outputsOf = (s: StageName): readonly EventName[] => stageSpec(s).outputs;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('kill -9 of stage processes mid-transaction', () => {
  const seed = process.env.PH_KILL_SEED ? Number(process.env.PH_KILL_SEED) : randomInt(2 ** 31);
  const random = prng(seed);
  let t: TestPipeline;
  let fleet: StageFleet;
  let slowStore: LatencyProxy | undefined;

  beforeAll(async () => {
    t = await createTestPipelineGuarded({
      PERSONAHUB_MODE: 'sampler', PERSONAHUB_EMBEDDER: 'hash',
      // The broker's minimum: a killed member's partitions are handed over after this, not after 30 s.
      PERSONAHUB_SESSION_TIMEOUT_MS: '6000',
    });
    // Every chunk claims its inputs in the store, so with the store STORE_LATENCY_MS away each stage
    // holds each chunk at least that long: the moment the kills wait for lasts long enough to be seen
    // by a poll, on a fast machine as on a slow one. (Without it the hash embedder's enrich finished
    // a wave between two polls, and one kill waited 300 s for a moment it never saw.)
    const database = new URL(t.env.PERSONAHUB_DATABASE_URL ?? '');
    slowStore = await startLatencyProxy({ host: database.hostname, port: Number(database.port) }, STORE_LATENCY_MS);
    fleet = new StageFleet(t, { PERSONAHUB_DATABASE_URL: slowStore.through(database.toString()) });
    await fleet.startAll(stageNames);
  });

  afterAll(async () => {
    await fleet?.stopAll('SIGKILL');
    await slowStore?.close();
    await t?.close();
  });

  it(`loses and duplicates nothing over ${KILLS} kills of random stages at random moments`, async () => {
    console.log(`[kill] PRNG seed ${seed} (replay with PH_KILL_SEED=${seed})`);
    const feed = new SeedFeed(t, WAVE);
    const { ingested } = feed;
    await feed.send();
    // Aborts the runner makes itself (a failed commit is aborted and retried): counted so that aborted
    // records can be told apart from the kills' when there were any.
    const commitRetries = (text: string) => metricSum(text, 'personahub_retries_total', (l) => l.includes('reason="commit:'));
    let runnerAborts = 0;
    /** Per kill: the stage, what it held, and the offsets of its output partitions' open transactions when it was stopped. */
    const kills: { stage: StageName; held: number; open: { topic: string; partition: number; from: number; to: number }[]; probes: number; seedsMeanwhile: number }[] = [];
    const probe = await OffsetProbe.open(t.pipeline.kafka, stageNames.flatMap((s) => outputsOf(s).map((e) => topicName(t.prefix, e))));

    try {
      for (let k = 0; k < KILLS; k += 1) {
        const stage = stageNames[Math.floor(random() * stageNames.length)] as StageName;
        const outputs = new Set(outputsOf(stage).map((e) => topicName(t.prefix, e)));
        await sleep(Math.floor(random() * 1_500));
        let victim: StageProcess | undefined;
        let text = '';
        let open: { topic: string; partition: number; from: number; to: number }[] = [];
        const wavesBefore = feed.next;
        let probes = 0;
        // The moment: the stage holds a chunk (judged by its metrics), and once it is frozen (SIGSTOP) its
        // output partitions show a transaction with records in the log (last stable offset < log end).
        // The stage's topics have no other writer, and the process has committed on every input partition
        // since it started, so no predecessor's transaction is still open there: the open one is its own.
        // A moment without one is let go (SIGCONT) and another is drawn; after MAX_PROBES, it dies anyway.
        for (let attempt = 0; ; attempt += 1) {
          await until(async () => {
            await feed.keepBusy(); // work keeps coming, whatever the speed
            victim = fleet.of(stage)[0];
            if (!victim) return false;
            text = await metricsText(victim.metricsPort);
            return heldInputs(text) > 0 && committedInputPartitions(text) === t.config.partitions;
          }, 300_000, `${stage} holding a chunk`, async () => ({
            processes: await Promise.all(fleet.processes.map(async (p) => {
              const m = await metricsText(p.metricsPort);
              return { stage: p.stage, pid: p.child.pid, held: heldInputs(m), committedPartitions: committedInputPartitions(m), retries: metricSum(m, 'personahub_retries_total'), up: m !== '' };
            })),
            unexpectedExits: fleet.unexpectedExits,
            kills,
            pending: t.observer.accounting(ingested).map((h) => [h.hop, h.pending.length, h.pending.slice(0, 3)]),
          }));
          if (!victim) throw new Error('unreachable');
          victim.child.kill('SIGSTOP');
          probes += 1;
          open = (await probe.ends()).filter((e) => outputs.has(e.topic) && e.lso < e.hw).map((e) => ({ topic: e.topic, partition: e.partition, from: e.lso, to: e.hw }));
          if (open.length > 0 || attempt >= MAX_PROBES) break;
          victim.child.kill('SIGCONT');
          await sleep(Math.floor(random() * 300));
        }
        runnerAborts += commitRetries(text);
        kills.push({ stage, held: heldInputs(text), open, probes, seedsMeanwhile: feed.next - wavesBefore });
        await fleet.stop(victim, 'SIGKILL');
        await fleet.start(stage);
      }
    } finally {
      await probe.close();
    }
    console.log(`[kill] ${kills.length} kills: ${kills.map((x) => `${x.stage}(held ${x.held}, ${x.probes} freeze(s), ${x.seedsMeanwhile} seeds fed meanwhile, ${x.open.length > 0 ? 'in an open transaction' : 'no transaction open'})`).join(', ')}`);

    await feed.upTo(MIN_SEEDS);
    expect(await t.observer.waitUntilSettled(ingested, { timeoutMs: 600_000 }), 'settled as the observer sees it').toBe(true);
    // The audit reads the log itself, each record judged by the marker that ends its transaction, and
    // waits until that settles; the live observer (a kafkajs read_committed consumer, like the stages)
    // must then agree with it (kafkajs 2.2.4's own filter did not: see "overlapping aborted transactions").
    let audit = await committedLogObserver(t);
    await until(async () => (audit = await committedLogObserver(t)).settled(ingested), 300_000, 'the committed log settled');

    for (const p of fleet.processes) runnerAborts += commitRetries(await metricsText(p.metricsPort));
    // Graceful stop of the survivors: each drains and exits 0; no process died on its own.
    expect(await fleet.stopAll('SIGTERM')).toEqual(stageNames.map(() => 0));
    expect(fleet.unexpectedExits).toEqual([]);

    // Kills inside open transactions: their sends are in the log, aborted.
    const log = await readLog(t.pipeline.kafka, pipelineTopics(t.prefix));
    const aborted = abortedIn(log);
    const abortedCount = [...aborted.values()].reduce((n, r) => n + r.length, 0);
    const stillOpen = [...log.values()].flat().filter((r) => r.state === 'open').length;
    // A kill is proven to have landed inside a transaction when records written in that transaction,
    // between the last stable offset and the log end at the moment the process was frozen, were aborted.
    const proven = kills.filter((kill) => kill.open.some((o) => (aborted.get(o.topic) ?? []).some((r) => r.partition === o.partition && Number(r.offset) >= o.from && Number(r.offset) < o.to)));
    audit = await committedLogObserver(t, log);
    const events = Object.keys(t.observer.records) as (keyof typeof t.observer.records)[];
    await until(() => events.every((e) => t.observer.records[e] >= audit.records[e]), 300_000, 'the live observer caught up with the log');
    const leaked = events.map((e) => [e, t.observer.records[e] - audit.records[e]] as const).filter(([, n]) => n !== 0);
    console.log(`[kill] seeds ${ingested.size}; aborted-transaction records per topic: ${[...aborted].map(([topic, r]) => `${topic.slice(t.prefix.length + 1)}=${r.length}`).join(' ')}; total ${abortedCount}; `
      + `kills proven inside a transaction ${proven.length}/${kills.length}; runner-initiated commit retries ${runnerAborts}; `
      + `records the live observer (kafkajs read_committed) counted beyond the committed log: ${JSON.stringify(Object.fromEntries(leaked))}`);
    expect(stillOpen, 'transactions left open').toBe(0);
    expect(abortedCount, 'records of aborted transactions (kills between send and commit)').toBeGreaterThan(0);
    expect(proven.length, 'kills whose open transaction\'s records were aborted').toBeGreaterThan(0);
    expect(ingested.size).toBeGreaterThanOrEqual(MIN_SEEDS);

    await expectNothingLostOrDuplicated({ ...t, observer: audit }, ingested, { dlq: 0 });
    expect(audit.seen.draft.size).toBe(ingested.size);
    expect(audit.undecodable).toEqual([]);
    // What a read_committed consumer is handed is exactly the committed log: nothing of an aborted transaction.
    expect(Object.fromEntries(leaked), 'records the live observer counted beyond the committed log').toEqual({});
    await expectNothingLostOrDuplicated(t, ingested, { dlq: 0 });
  }, 1_200_000);
});

/**
 * The same guarantee for the all-in-one process (`personahub run`: every stage in one process, as the
 * demo runs): killed with SIGKILL while one of its transactions is open (frozen with SIGSTOP and checked
 * as above), then started again, until a kill's open transaction ends aborted (one frozen after its
 * EndTxn left commits anyway). Replaces the former crash.test.ts, which killed it at a moment chosen by
 * progress alone.
 */
describe('kill -9 of the all-in-one process', () => {
  let t: TestPipeline;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    t = await createTestPipelineGuarded({ PERSONAHUB_MODE: 'sampler', PERSONAHUB_EMBEDDER: 'hash', PERSONAHUB_SESSION_TIMEOUT_MS: '6000' });
  });

  afterAll(async () => {
    child?.kill('SIGKILL');
    await t?.close();
  });

  it('loses and duplicates nothing when `personahub run` is killed inside a transaction and restarted', async () => {
    const feed = new SeedFeed(t, 100);
    const { ingested } = feed;
    await feed.send(300);
    child = spawnCli(t, ['run']);
    const outputs = new Set(stageNames.flatMap((s) => outputsOf(s).map((e) => topicName(t.prefix, e))));
    type Range = { topic: string; partition: number; from: number; to: number };
    const recordsIn = (log: Map<string, LogRecord[]>, ranges: Range[]) => ranges.flatMap((o) => (log.get(o.topic) ?? []).filter((r) => r.partition === o.partition && Number(r.offset) >= o.from && Number(r.offset) < o.to));
    // A transaction frozen after its EndTxn left commits all the same: such a kill proves nothing, and
    // the process is killed again (at most MAX_CYCLES times) until one's open transaction ends aborted.
    const MAX_CYCLES = 5;
    let abortedByKill = 0;
    for (let cycle = 1; abortedByKill === 0; cycle += 1) {
      expect(cycle, 'kills until one lands before a commit').toBeLessThanOrEqual(MAX_CYCLES);
      const probe = await OffsetProbe.open(t.pipeline.kafka, [...outputs]);
      let open: Range[] = [];
      try {
        // Frozen at moments until one has a transaction open with records in the log; work keeps coming.
        await until(async () => {
          await feed.keepBusy();
          if (!child || t.observer.seen.draft.size === 0) return false;
          child.kill('SIGSTOP');
          open = (await probe.ends()).filter((e) => outputs.has(e.topic) && e.lso < e.hw).map((e) => ({ topic: e.topic, partition: e.partition, from: e.lso, to: e.hw }));
          if (open.length > 0) return true;
          child.kill('SIGCONT');
          await sleep(randomInt(300));
          return false;
        }, 600_000, '`personahub run` with a transaction open');
      } finally {
        await probe.close();
      }
      expect(t.observer.settled(ingested), 'killed mid-run').toBe(false);
      await stopChild(child, 'SIGKILL');
      child = spawnCli(t, ['run']);
      // The new process ends the killed transactions when it first commits on their input partitions.
      let states: RecordState[] = [];
      await until(async () => {
        states = recordsIn(await readLog(t.pipeline.kafka, [...outputs]), open).map((r) => r.state);
        return states.every((s) => s !== 'open');
      }, 600_000, 'the killed process\'s transactions ended');
      abortedByKill = states.filter((s) => s === 'aborted').length;
      console.log(`[kill run] kill ${cycle}: records of the killed process's open transactions: ${states.length}, aborted ${abortedByKill}`);
    }

    expect(await t.observer.waitUntilSettled(ingested, { timeoutMs: 600_000 }), 'settled as the observer sees it').toBe(true);
    let audit = await committedLogObserver(t);
    await until(async () => (audit = await committedLogObserver(t)).settled(ingested), 300_000, 'the committed log settled');
    // Graceful stop: SIGTERM drains and disconnects, and the process exits 0.
    expect(await stopChild(child, 'SIGTERM')).toBe(0);
    child = undefined;

    const log = await readLog(t.pipeline.kafka, pipelineTopics(t.prefix));
    console.log(`[kill run] seeds ${ingested.size}`);
    expect([...log.values()].flat().filter((r) => r.state === 'open').length, 'transactions left open').toBe(0);
    audit = await committedLogObserver(t, log);
    await expectNothingLostOrDuplicated({ ...t, observer: audit }, ingested, { dlq: 0 });
    expect(audit.seen.draft.size).toBe(ingested.size);
  }, 1_200_000);
});

/**
 * The read side of the guarantee: what an aborted transaction wrote is in the log (read_uncommitted
 * sees it) but no read_committed consumer sees it, neither the observer nor the stages, so nothing
 * of it reaches a downstream topic or the store.
 */
describe('an aborted transaction is invisible', () => {
  let t: TestPipeline;

  beforeAll(async () => {
    t = await createTestPipelineGuarded({ PERSONAHUB_MODE: 'sampler', PERSONAHUB_EMBEDDER: 'hash' });
    await t.startStages();
  });

  afterAll(async () => {
    await t?.close();
  });

  const seedTopic = () => topicName(t.prefix, 'seed');
  const encode = async (list: readonly Seed[], partition?: number) => Promise.all(list.map(async (s) => ({
    key: await t.pipeline.serde.encodeKey('seed', s.id), value: await t.pipeline.serde.encodeValue('seed', s), ...(partition === undefined ? {} : { partition }),
  })));
  const transactional = async (id: string) => {
    const producer = t.pipeline.kafka.producer(producerConfig({ transactionalId: `${t.prefix}.${id}`, idempotent: true, maxInFlightRequests: 1 }));
    await producer.connect();
    return producer;
  };
  /** Keys of the seed topic: as kafkajs delivers them (read_committed or not), and by the log's own markers. */
  const seedKeys = async () => {
    const decode = async (records: Iterable<{ key: Buffer | null }>) => new Set(await Promise.all([...records].map(async (r) => t.pipeline.serde.decodeKey(r.key))));
    const topic = seedTopic();
    const log = (await readLog(t.pipeline.kafka, [topic])).get(topic) ?? [];
    return {
      uncommitted: await decode((await readTopics(t.pipeline.kafka, [topic], { readUncommitted: true })).get(topic)?.values() ?? []),
      committed: await decode((await readTopics(t.pipeline.kafka, [topic], { readUncommitted: false })).get(topic)?.values() ?? []),
      logAborted: await decode(log.filter((r) => r.state === 'aborted')),
      logCommitted: await decode(log.filter((r) => r.state === 'committed')),
    };
  };
  /** Nothing of the aborted seeds anywhere a read_committed reader looks: the observer, the drafts, the store. */
  const expectInvisible = async (abortedIds: ReadonlySet<string>, committedIds: ReadonlySet<string>) => {
    const keys = await seedKeys();
    expect.soft([...abortedIds].filter((id) => !keys.uncommitted.has(id)), 'aborted seeds missing for read_uncommitted').toEqual([]);
    expect.soft([...abortedIds].filter((id) => !keys.logAborted.has(id)), 'aborted seeds not marked aborted in the log').toEqual([]);
    expect.soft([...committedIds].filter((id) => !keys.committed.has(id) || !keys.logCommitted.has(id)), 'committed seeds missing').toEqual([]);
    expect.soft([...abortedIds].filter((id) => keys.committed.has(id)), 'aborted seeds delivered to a read_committed consumer').toEqual([]);
    expect.soft([...abortedIds].filter((id) => t.observer.seen.seed.has(id)), 'aborted seeds seen by the observer').toEqual([]);
    expect.soft([...t.observer.seen.draft.values()].filter((d) => abortedIds.has(d.seedId)).map((d) => d.seedId), 'drafts of aborted seeds').toEqual([]);
  };

  it('is seen by read_uncommitted only, and nothing downstream comes of it', async () => {
    const seeds = seedRange(t, 0, 40);
    const abortedSeeds = seeds.slice(0, 25);
    const committedSeeds = seeds.slice(25);
    const producer = await transactional('test-aborter');
    try {
      const doomed = await producer.transaction();
      await doomed.send({ topic: seedTopic(), messages: await encode(abortedSeeds), acks: -1 });
      await doomed.abort();
      // Committed after the aborted records, so a read_committed reader that sees these has read past them.
      const kept = await producer.transaction();
      await kept.send({ topic: seedTopic(), messages: await encode(committedSeeds), acks: -1 });
      await kept.commit();
    } finally {
      await producer.disconnect();
    }
    const committedIds = new Set(committedSeeds.map((s) => s.id));
    const abortedIds = new Set(abortedSeeds.map((s) => s.id));
    expect(await t.observer.waitUntilSettled(committedIds, { timeoutMs: 180_000 })).toBe(true);
    await expectInvisible(abortedIds, committedIds);
    expect(t.observer.seen.draft.size).toBe(committedIds.size);
    await expectNothingLostOrDuplicated(t, committedIds, { dlq: 0 });
  }, 300_000);

  /**
   * PRODUCT DEFECT (kafkajs 2.2.4, consumer/filterAbortedMessages.js): two transactions on one
   * partition, A's first record before B's, aborted B first and A second. The broker lists a fetch's
   * aborted transactions in the order of their abort markers (B, A); kafkajs assumes the order of their
   * first offsets and starts skipping a producer only once a record's offset reaches the head of the
   * list, one transaction per record. A's record comes before B's first offset, so it is delivered to
   * read_committed consumers: the observer counts it and the draft stage drafts a persona from a seed
   * whose ingest was aborted. The Java client sorts the list by first offset (a priority queue).
   * In the pipeline this happens whenever a killed or fenced instance leaves several transactions open
   * on one output partition and they are aborted in another order than they began (kill.test.ts
   * measures it). runtime/kafkajs-patches.ts replaces the filter with one that sorts by first offset.
   */
  it('overlapping aborted transactions are invisible too', async () => {
    const seeds = seedRange(t, 1_000, 4);
    const [a, b, ...committedSeeds] = seeds as [Seed, Seed, ...Seed[]];
    const first = await transactional('test-overlap-a');
    const second = await transactional('test-overlap-b');
    try {
      const ta = await first.transaction();
      await ta.send({ topic: seedTopic(), messages: await encode([a], 0), acks: -1 });
      const tb = await second.transaction();
      await tb.send({ topic: seedTopic(), messages: await encode([b], 0), acks: -1 });
      await tb.abort();
      await ta.abort();
      const kept = await first.transaction();
      await kept.send({ topic: seedTopic(), messages: await encode(committedSeeds, 0), acks: -1 });
      await kept.commit();
    } finally {
      await first.disconnect();
      await second.disconnect();
    }
    const committedIds = new Set(committedSeeds.map((s) => s.id));
    const abortedIds = new Set([a.id, b.id]);
    expect(await t.observer.waitUntilSettled(committedIds, { timeoutMs: 180_000 })).toBe(true);
    await expectInvisible(abortedIds, committedIds);
    await expectNothingLostOrDuplicated(t, committedIds, { dlq: 0 });
  }, 300_000);
});

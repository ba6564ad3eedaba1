import { randomUUID } from 'node:crypto';
import { AssignerProtocol, type Producer } from 'kafkajs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isFenced } from '../../../runtime/error-policy.ts';
import { producerConfig } from '../../../runtime/kafka.ts';
import { groupId, stages, topicName } from '../../../topology/index.ts';
import { expectNothingLostOrDuplicated, StageFleet, until, type StageProcess } from '../../helpers/faults.ts';
import type { TestPipeline } from '../../helpers/pipeline.ts';
import { committedInputPartitions, committedLogObserver, createTestPipelineGuarded, heldInputs, metricsText, metricSum, OffsetProbe, pipelineTopics, readLog, readTopics, SeedFeed, seedRange } from '../../helpers/transactions.ts';

const stageNames = stages.map((s) => s.name);
const PARTITIONS = 3;
const WAVE = 100;
const MIN_SEEDS = 1_000;

/** Partitions of the input topic each member of a stage's consumer group holds, as the group coordinator says. */
async function assignments(t: TestPipeline, stage: 'enrich'): Promise<number[][]> {
  const admin = t.pipeline.kafka.admin();
  await admin.connect();
  try {
    const { groups } = await admin.describeGroups([groupId(t.prefix, stage)]);
    const group = groups[0];
    if (!group || group.state !== 'Stable') return [];
    return group.members.map((m) => {
      const decoded = AssignerProtocol.MemberAssignment.decode(m.memberAssignment);
      return [...(decoded?.assignment[topicName(t.prefix, 'draft')] ?? [])].sort();
    }).sort();
  } finally {
    await admin.disconnect();
  }
}

/** Waits until the committed log (not a kafkajs read_committed view) accounts for every seed; returns that view. */
async function settledLog(t: TestPipeline, seedIds: ReadonlySet<string>) {
  expect(await t.observer.waitUntilSettled(seedIds, { timeoutMs: 600_000 }), 'settled as the observer sees it').toBe(true);
  let audit = await committedLogObserver(t);
  await until(async () => (audit = await committedLogObserver(t)).settled(seedIds), 300_000, 'the committed log settled');
  return audit;
}

/**
 * Scale out and in: enrich runs as one process, two more start mid-run and take partitions from it
 * (the group rebalances; their producers take over the moved partitions' transactional ids and fence
 * the first instance's), then both are stopped with SIGTERM (exit 0) while work is flowing and the
 * first instance takes everything back, with producers for those partitions that were fenced meanwhile.
 * Nothing lost, nothing duplicated, nothing dead-lettered.
 */
describe('scaling a stage out and in mid-run', () => {
  let t: TestPipeline;
  let fleet: StageFleet;

  beforeAll(async () => {
    t = await createTestPipelineGuarded({
      PERSONAHUB_MODE: 'sampler', PERSONAHUB_EMBEDDER: 'hash', PERSONAHUB_PARTITIONS: String(PARTITIONS), PERSONAHUB_SESSION_TIMEOUT_MS: '6000',
    });
    fleet = new StageFleet(t);
    await fleet.startAll(stageNames);
  });

  afterAll(async () => {
    await fleet?.stopAll('SIGKILL');
    await t?.close();
  });

  it('loses and duplicates nothing while two enrich instances join and leave', async () => {
    const feed = new SeedFeed(t, WAVE);
    const { ingested } = feed;
    const keepBusy = () => feed.keepBusy();
    const enriched = async (p: StageProcess) => metricSum(await metricsText(p.metricsPort), 'personahub_events_produced_total');

    await feed.send();
    const [first] = fleet.of('enrich');
    if (!first) throw new Error('no enrich instance');
    await until(async () => (await keepBusy(), (await enriched(first)) > 0), 300_000, 'the first enrich instance committing');

    // Scale out: three members, one partition each.
    const extras = [await fleet.start('enrich'), await fleet.start('enrich')];
    await until(async () => (await keepBusy(), JSON.stringify(await assignments(t, 'enrich')) === JSON.stringify([[0], [1], [2]])), 300_000, 'enrich rebalanced over three instances');
    // Each newcomer commits work of its own partition.
    await until(async () => (await keepBusy(), (await Promise.all(extras.map(enriched))).every((n) => n > 0)), 300_000, 'both new instances committing');
    const byExtras = await Promise.all(extras.map(enriched));

    // Scale in while there is work in flight: both leave gracefully.
    await feed.send();
    expect(await Promise.all(extras.map((p) => fleet.stop(p, 'SIGTERM'))), 'exit codes of the stopped instances').toEqual([0, 0]);
    await until(async () => (await keepBusy(), JSON.stringify(await assignments(t, 'enrich')) === JSON.stringify([[0, 1, 2]])), 300_000, 'enrich back on one instance');
    const beforeScaleIn = await enriched(first);
    await until(async () => (await keepBusy(), (await enriched(first)) > beforeScaleIn), 300_000, 'the first instance committing again');

    await feed.upTo(MIN_SEEDS);
    await settledLog(t, ingested);
    console.log(`[scale] seeds ${ingested.size}; enriched by the two extra instances before they left: ${byExtras.join(', ')}; by the first instance: ${await enriched(first)}`);
    expect(await fleet.stopAll('SIGTERM')).toEqual(stageNames.map(() => 0));
    expect(fleet.unexpectedExits).toEqual([]);

    const log = await readLog(t.pipeline.kafka, pipelineTopics(t.prefix));
    expect([...log.values()].flat().filter((r) => r.state === 'open').length, 'transactions left open').toBe(0);
    const audit = await committedLogObserver(t, log);
    await expectNothingLostOrDuplicated({ ...t, observer: audit }, ingested, { dlq: 0 });
    expect(audit.seen.enriched.size).toBe(ingested.size);
  }, 1_200_000);
});

/**
 * A zombie (an instance that lost its partition but still runs) holds a producer with the partition's
 * transactional id. Once another producer initialises that id, the zombie can neither send nor commit,
 * and nothing it sent is visible to read_committed. The id is the runner's (`<group>.<input topic>.<partition>`),
 * and the second case has the runner itself do the fencing.
 */
describe('a fenced zombie producer cannot commit', () => {
  let t: TestPipeline;
  const open: Producer[] = [];

  beforeAll(async () => {
    t = await createTestPipelineGuarded({ PERSONAHUB_MODE: 'sampler', PERSONAHUB_EMBEDDER: 'hash', PERSONAHUB_PARTITIONS: String(PARTITIONS) });
    await t.startStages();
  });

  afterAll(async () => {
    for (const p of open) await p.disconnect().catch(() => {});
    await t?.close();
  });

  /** The transactional id the enrich runner uses for input partition 0. */
  const enrichTxnId = () => `${groupId(t.prefix, 'enrich')}.${topicName(t.prefix, 'draft')}.0`;
  const producer = async (transactionalId: string) => {
    // A transaction timeout far beyond the test: only fencing, never the broker's timeout, ends the zombie's transaction.
    const p = t.pipeline.kafka.producer(producerConfig({ transactionalId, idempotent: true, maxInFlightRequests: 1, transactionTimeout: 900_000 }));
    open.push(p);
    await p.connect();
    return p;
  };
  /** An enriched persona as the enrich stage writes them, under a key no stage will ever produce. */
  const zombieRecord = async (ingested: ReadonlySet<string>) => {
    const persona = [...t.observer.seen.enriched.values()].find((p) => ingested.has(p.seedId));
    if (!persona) throw new Error('no enriched persona to copy');
    const id = `zombie-${randomUUID()}`;
    return { id, message: { key: await t.pipeline.serde.encodeKey('enriched', id), value: await t.pipeline.serde.encodeValue('enriched', { ...persona, id }) } };
  };
  /** What became of the zombie's records: those it sent before the fence in the log, aborted; the later ones nowhere; none delivered to read_committed. */
  const expectAbortedAndInvisible = async (sent: readonly string[], refused: readonly string[] = []) => {
    const ids = [...sent, ...refused];
    const topic = topicName(t.prefix, 'enriched');
    const log = (await readLog(t.pipeline.kafka, [topic])).get(topic) ?? [];
    const states = new Map<string, string>();
    for (const r of log) {
      const key = await t.pipeline.serde.decodeKey(r.key);
      if (key !== null && ids.includes(key)) states.set(key, r.state);
    }
    expect(Object.fromEntries(states), 'the zombie\'s records in the log').toEqual(Object.fromEntries(sent.map((id) => [id, 'aborted'])));
    const delivered = await readTopics(t.pipeline.kafka, [topic], { readUncommitted: false });
    const deliveredKeys = await Promise.all([...(delivered.get(topic)?.values() ?? [])].map((r) => t.pipeline.serde.decodeKey(r.key)));
    expect(deliveredKeys.filter((k) => k !== null && ids.includes(k)), 'zombie records delivered to read_committed').toEqual([]);
    expect(ids.filter((id) => t.observer.seen.enriched.has(id) || t.observer.seen.validated.has(id)), 'zombie records seen by the observer').toEqual([]);
  };

  it('a second producer with the runner\'s transactional id fences the first: its send and commit fail', async () => {
    const seeds = seedRange(t, 0, 30);
    const ids = new Set(seeds.map((s) => s.id));
    await t.ingest(seeds);
    expect(await t.observer.waitUntilSettled(ids, { timeoutMs: 180_000 })).toBe(true);

    const zombie = await producer(enrichTxnId());
    const txn = await zombie.transaction();
    const before = await zombieRecord(ids);
    await txn.send({ topic: topicName(t.prefix, 'enriched'), messages: [before.message], acks: -1 });
    // The partition's new owner initialises the same id: the zombie's open transaction is aborted, its
    // epoch is over. (kafkajs initialises a transactional id at the producer's first transaction(), not
    // at connect(): the runner's producers do it when they first commit a chunk of the partition.)
    const successor = await producer(enrichTxnId());
    const successorTxn = await successor.transaction();
    const after = await zombieRecord(ids);
    const sendError = await txn.send({ topic: topicName(t.prefix, 'enriched'), messages: [after.message], acks: -1 }).then(() => undefined, (e: unknown) => e);
    expect(sendError, 'the zombie\'s send after the fence').toBeDefined();
    expect(isFenced(sendError), `fenced: ${String(sendError)}`).toBe(true);
    const commitError = await txn.commit().then(() => undefined, (e: unknown) => e);
    expect(commitError, 'the zombie\'s commit').toBeDefined();
    expect(isFenced(commitError), `fenced: ${String(commitError)}`).toBe(true);
    await successorTxn.abort();
    await successor.disconnect();
    await zombie.disconnect();

    // The successor also fenced the enrich runner's producer for partition 0: the runner drops the chunk
    // it cannot commit, takes the id back, and redoes it. More seeds go through to show nothing stuck or lost.
    const more = seedRange(t, 30, 60);
    for (const s of more) ids.add(s.id);
    await t.ingest(more);
    const audit = await settledLog(t, ids);
    await expectAbortedAndInvisible([before.id], [after.id]);
    await expectNothingLostOrDuplicated({ ...t, observer: audit }, ids, { dlq: 0 });
    await expectNothingLostOrDuplicated(t, ids, { dlq: 0 });
  }, 600_000);

  it('the runner itself fences a zombie holding its transactional id', async () => {
    const seeds = seedRange(t, 100, 30);
    const ids = new Set(seeds.map((s) => s.id));
    await t.ingest(seeds);
    expect(await t.observer.waitUntilSettled(ids, { timeoutMs: 180_000 })).toBe(true);

    // The zombie takes the id of enrich's partition 0 and opens a transaction with a record in it.
    const zombie = await producer(enrichTxnId());
    const txn = await zombie.transaction();
    const record = await zombieRecord(ids);
    await txn.send({ topic: topicName(t.prefix, 'enriched'), messages: [record.message], acks: -1 });

    // Work for the runner on every draft partition: its commit on partition 0 is refused (the zombie's
    // epoch is newer), it drops that chunk and initialises the id again, which aborts the zombie's transaction.
    const more = seedRange(t, 130, 60);
    for (const s of more) ids.add(s.id);
    await t.ingest(more);
    const enrichedTopic = topicName(t.prefix, 'enriched');
    await until(async () => {
      const log = (await readLog(t.pipeline.kafka, [enrichedTopic])).get(enrichedTopic) ?? [];
      for (const r of log) if ((await t.pipeline.serde.decodeKey(r.key)) === record.id) return r.state === 'aborted';
      return false;
    }, 600_000, 'the zombie\'s transaction aborted by the runner');
    const commitError = await txn.commit().then(() => undefined, (e: unknown) => e);
    expect(commitError, 'the zombie\'s commit after the runner took its id back').toBeDefined();
    expect(isFenced(commitError), `fenced: ${String(commitError)}`).toBe(true);
    await zombie.disconnect();

    const audit = await settledLog(t, ids);
    await expectAbortedAndInvisible([record.id]);
    await expectNothingLostOrDuplicated({ ...t, observer: audit }, ids, { dlq: 0 });
    await expectNothingLostOrDuplicated(t, ids, { dlq: 0 });
  }, 900_000);
});

/**
 * A zombie that wakes before the partition's new owner has committed anything cannot commit either.
 *
 * This showed a product defect, fixed by the runner fencing on assignment (db6dfd6): its producers used
 * to initialise their transactional id (and so fence the previous owner) only at their first
 * transaction, when the new owner committed its first chunk of the partition; and kafkajs commits
 * offsets in a transaction with TxnOffsetCommit v0/v1, which carry no group generation, so the group
 * coordinator cannot refuse a former member's offsets (KIP-447). An instance frozen past its session
 * timeout (GC pause, VM stall, SIGSTOP) that woke in the middle of a commit completed it, while the
 * new owner, which had read the committed offsets before, committed the same chunk again: the enriched
 * topic held 36 to 43 records twice (636 and 643 records for 600 personas in two runs).
 *
 * The test freezes the first enrich instance with a transaction open (SIGSTOP), holds the new owner's
 * first chunk before its commit by locking the chunk's input claims in PostgreSQL (standing in for a
 * chunk that takes a while: LLM calls, a slow store), wakes the zombie, then lets the new owner go.
 * The new owner fences the zombie when the partitions are assigned: the zombie's open transaction ends
 * aborted (or committed, if its EndTxn had left before it froze, and then the new owner skips that
 * chunk), and nothing is duplicated.
 */
describe('a zombie that wakes before the new owner first commits', () => {
  let t: TestPipeline;
  let fleet: StageFleet;

  beforeAll(async () => {
    t = await createTestPipelineGuarded({
      PERSONAHUB_MODE: 'sampler', PERSONAHUB_EMBEDDER: 'hash', PERSONAHUB_PARTITIONS: String(PARTITIONS), PERSONAHUB_SESSION_TIMEOUT_MS: '6000',
    });
    fleet = new StageFleet(t);
    await fleet.startAll(stageNames);
  });

  afterAll(async () => {
    await fleet?.stopAll('SIGKILL');
    await t?.close();
  });

  it('cannot commit what the partition\'s new owner commits again', async () => {
    const feed = new SeedFeed(t, WAVE);
    const enrichedTopic = topicName(t.prefix, 'enriched');
    await feed.send();
    const [zombie] = fleet.of('enrich');
    if (!zombie) throw new Error('no enrich instance');

    // Freeze the enrich instance while a transaction of its own is open with records in the log.
    const probe = await OffsetProbe.open(t.pipeline.kafka, [enrichedTopic]);
    let open: { partition: number; from: number; to: number }[] = [];
    try {
      await until(async () => {
        await feed.keepBusy();
        const m = await metricsText(zombie.metricsPort);
        if (!(heldInputs(m) > 0 && committedInputPartitions(m) === PARTITIONS)) return false;
        zombie.child.kill('SIGSTOP');
        open = (await probe.ends()).filter((e) => e.lso < e.hw).map((e) => ({ partition: e.partition, from: e.lso, to: e.hw }));
        if (open.length > 0) return true;
        zombie.child.kill('SIGCONT');
        return false;
      }, 300_000, 'enrich frozen with a transaction open');
    } finally {
      await probe.close();
    }

    // The new owner's first chunk of the zombie's partitions starts at their committed offsets: the very
    // inputs the zombie holds, whose claims are locked here, so it waits before its first transaction.
    const db = new pg.Client(t.config.databaseUrl);
    await db.connect();
    try {
      await db.query('BEGIN');
      await db.query("SELECT identity FROM input_claims WHERE stage = 'enrich' FOR UPDATE");
      const owner = await fleet.start('enrich');
      await until(async () => JSON.stringify(await assignments(t, 'enrich')) === JSON.stringify([[0, 1, 2]]), 300_000, 'the new instance owning every partition (the frozen one expired)');
      await until(async () => heldInputs(await metricsText(owner.metricsPort)) > 0, 300_000, 'the new owner holding a chunk');

      zombie.child.kill('SIGCONT');
      const inZombieTransaction = (r: { partition: number; offset: string }) => open.some((o) => o.partition === r.partition && Number(r.offset) >= o.from && Number(r.offset) < o.to);
      let states: string[] = [];
      await until(async () => {
        states = ((await readLog(t.pipeline.kafka, [enrichedTopic])).get(enrichedTopic) ?? []).filter(inZombieTransaction).map((r) => r.state);
        return states.length > 0 && states.every((s) => s !== 'open');
      }, 300_000, 'the zombie\'s transaction ended');
      console.log(`[zombie] the woken zombie's open transaction ended: ${states.length} records ${[...new Set(states)].join(', ')}`);
      await fleet.stop(zombie, 'SIGKILL');
      await db.query('COMMIT');
    } finally {
      await db.end();
    }

    await feed.upTo(600);
    const { ingested } = feed;
    const audit = await settledLog(t, ingested);
    console.log(`[zombie] enriched records ${audit.records.enriched} for ${audit.seen.enriched.size} personas`);
    expect(await fleet.stopAll('SIGTERM')).toEqual(stageNames.map(() => 0));
    await expectNothingLostOrDuplicated({ ...t, observer: await committedLogObserver(t) }, ingested, { dlq: 0 });
  }, 900_000);
});

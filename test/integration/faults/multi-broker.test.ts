import { mkdtemp, rm } from 'node:fs/promises';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../config/index.ts';
import { createLogger } from '../../../core/logger.ts';
import { observeTopics } from '../../../runtime/admin.ts';
import { portFree } from '../../../stack/health.ts';
import { stackDown, stackStatus, stackUp, type StackOptions } from '../../../stack/index.ts';
import type { KafkaNode } from '../../../stack/types.ts';
import { events, stages, topicName, type EventName } from '../../../topology/index.ts';
import { expectNothingLostOrDuplicated, StageFleet, until } from '../../helpers/faults.ts';
import { createTestPipeline, type TestPipeline } from '../../helpers/pipeline.ts';

/**
 * A real three-node KRaft cluster (combined broker+controller nodes on loopback, from the stack's own jars),
 * the pipeline on it with replication factor 3 and min.insync.replicas 2, one process per stage. Mid-run one
 * broker (the leader of a draft partition) is stopped and, after the pipeline has moved on without it, started
 * again. No operator action: every seed accounted for, nothing duplicated, no dead letter, and the restarted
 * broker back in every in-sync replica set.
 *
 * The cluster is the test's own: free ports and a temporary home, stopped and removed afterwards. The schema
 * registry and PostgreSQL are the suite's (neither depends on which brokers the pipeline uses).
 */

const SEEDS = 300;
const STAGES = stages.map((s) => s.name);
/** Hang guards only: no assertion is about how long anything took. */
const CLUSTER_TIMEOUT_MS = 300_000;
const SETTLE_TIMEOUT_MS = 300_000;

const logger = createLogger({ level: 'warn', name: 'multi-broker-test' });
const suite = loadConfig({ ...process.env, PERSONAHUB_START_LOCAL_LLM: 'false' });

/** Six consecutive free ports below Linux's ephemeral range (outgoing connections never take them), even-aligned. */
async function freeNodePorts(count: number): Promise<KafkaNode[]> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = 23_000 + 2 * Math.floor(Math.random() * 4_000);
    const nodes = Array.from({ length: count }, (_, i) => ({ nodeId: i + 1, port: base + 2 * i, controllerPort: base + 2 * i + 1 }));
    const free = await Promise.all(nodes.flatMap((n) => [portFree(n.port), portFree(n.controllerPort)]));
    if (free.every(Boolean)) return nodes;
  }
  throw new Error('no six consecutive free ports found between 23000 and 31000');
}

/**
 * Keys with more than one committed record on a topic, each with where its records are (partition@offset, in
 * order): read afresh with read_committed, independently of the observer. Printed when the audit fails, so the
 * failure says which records were written twice and how far apart.
 */
async function duplicates(t: TestPipeline, brokers: string[], event: EventName): Promise<Record<string, string[]>> {
  const kafka = new kafkajs.Kafka({ clientId: 'multi-broker-dups', brokers, logLevel: kafkajs.logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const topic = topicName(t.prefix, event);
  const ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, BigInt(p.high)]));
  await admin.disconnect();
  const positions = new Map<string, string[]>();
  const reached = new Map<number, bigint>();
  const consumer = kafka.consumer({ groupId: `${t.prefix}.dups.${Date.now()}`, readUncommitted: false });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      const key = (await t.pipeline.serde.decodeKey(message.key)) ?? '';
      positions.set(key, [...(positions.get(key) ?? []), `${partition}@${message.offset}`]);
      reached.set(partition, BigInt(message.offset) + 1n);
    },
  });
  // Transaction markers take the last offsets, so "caught up" is: nothing new for a while, every partition read.
  let last = -1;
  await until(async () => {
    const now = [...positions.values()].reduce((n, p) => n + p.length, 0);
    const done = now === last && [...ends.keys()].every((p) => (ends.get(p) ?? 0n) === 0n || reached.has(p));
    last = now;
    await new Promise((r) => setTimeout(r, 2_000));
    return done;
  }, 120_000, `reading ${topic}`);
  await consumer.disconnect();
  return Object.fromEntries([...positions].filter(([, p]) => p.length > 1));
}

describe('a three-broker cluster, one broker stopped mid-run', () => {
  let home: string;
  let cluster: StackOptions;
  let brokers: string[];
  let t: TestPipeline | undefined;
  let fleet: StageFleet | undefined;
  const started = Date.now();
  const log = (what: string) => console.info(`[multi-broker] +${((Date.now() - started) / 1000).toFixed(1)}s ${what}`);

  beforeAll(async () => {
    home = await mkdtemp('/var/tmp/ph-multi-broker-test-');
    const nodes = await freeNodePorts(3);
    cluster = {
      home,
      cacheDir: suite.cacheDir,
      kafka: { port: nodes[0]?.port ?? 0, controllerPort: nodes[0]?.controllerPort ?? 0, nodes },
      // Not started (core is Kafka alone); the shapes are required.
      registry: { port: suite.registryPort, managementPort: suite.registryManagementPort },
      postgres: { port: suite.postgresPort, user: suite.postgresUser, password: suite.postgresPassword, database: suite.postgresDatabase },
      core: ['kafka'],
      readyTimeoutMs: CLUSTER_TIMEOUT_MS,
      logger,
    };
    brokers = nodes.map((n) => `127.0.0.1:${n.port}`);
    const status = await stackUp(cluster);
    expect(status.services.map((s) => [s.name, s.ready])).toEqual([['kafka-1', true], ['kafka-2', true], ['kafka-3', true]]);
    log(`cluster of 3 up on ${brokers.join(', ')}`);
  }, CLUSTER_TIMEOUT_MS);

  afterAll(async () => {
    await fleet?.stopAll('SIGKILL').catch(() => {});
    await t?.close();
    if (cluster) await stackDown(cluster);
    if (home) await rm(home, { recursive: true, force: true });
    log('cluster stopped and removed');
  }, CLUSTER_TIMEOUT_MS);

  it('loses and duplicates nothing, and the broker rejoins every in-sync replica set', async () => {
    t = await createTestPipeline({
      PERSONAHUB_KAFKA_BROKERS: brokers.join(','),
      PERSONAHUB_REPLICATION_FACTOR: '3', PERSONAHUB_MIN_INSYNC_REPLICAS: '2',
      // Sampler drafts and hash embeddings: no LLM, so the brokers are the only thing that fails here.
      PERSONAHUB_MODE: 'sampler', PERSONAHUB_EMBEDDER: 'hash',
      PERSONAHUB_SESSION_TIMEOUT_MS: '6000', PERSONAHUB_RETRY_MAX_DELAY_MS: '5000', PERSONAHUB_BREAKER_OPEN_MS: '1000',
      // One event and one partition at a time per process: the run lasts long enough for the stop to land in it.
      PERSONAHUB_MAX_IN_FLIGHT: '1', PERSONAHUB_PARTITION_CONCURRENCY: '1',
    });
    const topics = (Object.keys(events) as EventName[]).map((e) => topicName(t!.prefix, e));
    const admin = new kafkajs.Kafka({ clientId: 'multi-broker-test', brokers, logLevel: kafkajs.logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      // The helper's topics init named no replication settings: the cluster's defaults (3 replicas, min ISR 2) applied.
      const observed = await observeTopics(admin, topics);
      for (const topic of topics) {
        expect({ topic, replicas: observed.get(topic)?.replicasPerPartition, minIsr: observed.get(topic)?.configs['min.insync.replicas'] })
          .toEqual({ topic, replicas: [3, 3, 3], minIsr: '2' });
      }

      fleet = new StageFleet(t);
      await fleet.startAll(STAGES);
      await fleet.untilReady();
      log('fleet ready');
      const seeds = t.seeds(SEEDS);
      const seedIds = new Set(seeds.map((s) => s.id));
      await t.ingest(seeds);
      log(`ingested ${seeds.length}`);
      await until(() => t!.observer.seen.indexed.size >= 10, SETTLE_TIMEOUT_MS, 'the first personas indexed');

      const { topics: [draft] } = await admin.fetchTopicMetadata({ topics: [topicName(t.prefix, 'draft')] });
      const victim = `kafka-${draft?.partitions.find((p) => p.partitionId === 0)?.leader}`;
      log(`indexed ${t.observer.seen.indexed.size}: stopping ${victim}, the leader of draft partition 0`);
      await stackDown(cluster, [victim]);
      const indexedAtStop = t.observer.seen.indexed.size;
      expect(t.observer.settled(seedIds), 'the broker stopped mid-run').toBe(false);
      expect((await stackStatus(cluster)).services.filter((s) => s.running).map((s) => s.name)).toHaveLength(2);

      // With two of three replicas in sync, acks=all writes go on: the pipeline moves without the broker.
      await until(() => t!.observer.seen.indexed.size >= indexedAtStop + 30 || t!.observer.settled(seedIds), SETTLE_TIMEOUT_MS, 'progress with one broker down');
      log(`indexed ${t.observer.seen.indexed.size} with ${victim} down: starting it again`);
      await stackUp(cluster);
      log(`${victim} back`);

      const settled = await t.observer.waitUntilSettled(seedIds, { timeoutMs: SETTLE_TIMEOUT_MS });
      log(`settled=${settled}: indexed ${t.observer.seen.indexed.size}, rejected ${t.observer.seen.rejected.size}`);
      expect(settled).toBe(true);
      for (const event of ['draft', 'enriched', 'validated', 'indexed'] as const) {
        if (t.observer.records[event] === t.observer.seen[event].size) continue;
        const twice = await duplicates(t, brokers, event);
        log(`${event}: ${t.observer.records[event]} records for ${t.observer.seen[event].size} keys; written more than once: ${JSON.stringify(twice)}`);
      }
      await expectNothingLostOrDuplicated(t, seedIds, { dlq: 0 });
      expect(t.observer.undecodable).toEqual([]);
      expect(fleet.unexpectedExits).toEqual([]);

      // The restarted broker caught up: every partition of the pipeline's topics and of the transaction and
      // offsets logs has all three replicas in sync again.
      const watched = [...topics, '__consumer_offsets', '__transaction_state'];
      await until(async () => {
        const { topics: metadata } = await admin.fetchTopicMetadata({ topics: watched });
        return metadata.every((m) => m.partitions.every((p) => p.isr.length === 3));
      }, CLUSTER_TIMEOUT_MS, 'every replica back in sync');
      log('every replica back in sync');

      const codes = await fleet.stopAll();
      expect(codes).toEqual(codes.map(() => 0));
    } finally {
      await admin.disconnect();
    }
  }, 2 * SETTLE_TIMEOUT_MS + CLUSTER_TIMEOUT_MS);
});

import { randomUUID } from 'node:crypto';
import { Partitioners, type Admin, type Consumer, type Kafka, type Producer } from 'kafkajs';
import pg from 'pg';
import { loadConfig, type Config } from '../../config/index.ts';
import type { Logger } from '../../core/logger.ts';
import { deleteByNamePrefix, initTopics } from '../../runtime/admin.ts';
import { createKafka } from '../../runtime/kafka.ts';
import { CHUNK_SIZE } from '../../runtime/runner.ts';
import { Serde } from '../../runtime/serde.ts';
import type { Seed } from '../../schemas/types.generated.ts';
import { topicName } from '../../topology/index.ts';
import { BenchError } from '../harness.ts';

/**
 * What the Kafka benchmarks share: a run's own topics (a fresh prefix, so nothing another run or engineer
 * wrote is read), its own database, filling an input topic with encoded events, and the raw kafkajs pipe the
 * runner is measured against.
 */

/** The raw pipe's transaction size: the runner's chunk. */
export const CHUNK = CHUNK_SIZE;

export interface RunTopics {
  prefix: string;
  config: Config;
  kafka: Kafka;
  serde: Serde;
}

/** A fresh topic prefix with every topic created and every schema registered, as `topics init` does. */
export async function freshTopics(env: Record<string, string>, logger: Logger): Promise<RunTopics> {
  const prefix = `bench${Date.now().toString(36)}${randomUUID().slice(0, 6)}`;
  const config = loadConfig({ ...env, PERSONAHUB_TOPIC_PREFIX: prefix });
  // kafkajs reports every CONCURRENT_TRANSACTIONS retry as a warning; back-to-back transactions meet it all the time.
  const kafka = createKafka(config, prefix, logger.child({}, { level: 'error' }));
  const serde = new Serde(config.registryUrl, prefix, config);
  await initTopics(kafka, serde, { prefix, partitions: config.partitions, logger });
  return { prefix, config, kafka, serde };
}

/** Removes a run's topics and groups, so a benchmark leaves the shared broker as it found it. */
export async function dropTopics(t: RunTopics): Promise<void> {
  await deleteByNamePrefix(t.kafka, `${t.prefix}.`);
}

/** Writes encoded records (not timed), in large acknowledged batches, partitioned as every producer here partitions. */
export async function fill(kafka: Kafka, topic: string, records: readonly { key: Buffer; value: Buffer }[]): Promise<void> {
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    for (let i = 0; i < records.length; i += 500) await producer.send({ topic, acks: -1, messages: records.slice(i, i + 500).map((r) => ({ key: r.key, value: r.value })) });
  } finally {
    await producer.disconnect();
  }
}

/** Encodes seeds as `personahub ingest` would and writes them to the run's seed topic. */
export async function fillSeeds(t: RunTopics, seeds: readonly Seed[]): Promise<void> {
  const records: { key: Buffer; value: Buffer }[] = [];
  for (const s of seeds) records.push({ key: await t.serde.encodeKey('seed', s.id), value: await t.serde.encodeValue('seed', s) });
  await fill(t.kafka, topicName(t.prefix, 'seed'), records);
}

/** A database of the benchmark's own (the runner claims inputs in the store), dropped at the end. */
export async function benchDatabase(base: Config): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `bench_${Date.now().toString(36)}_${randomUUID().slice(0, 6).replace(/-/g, '')}`;
  const admin = new pg.Client(base.databaseUrl);
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  return {
    url: base.databaseUrl.replace(/\/[^/?]+(\?|$)/, `/${name}$1`),
    async drop() {
      const a = new pg.Client(base.databaseUrl);
      await a.connect();
      try {
        // A session this role may not end (an autovacuum worker just started on the new database) makes FORCE
        // fail with 42501; it leaves within a moment, so the drop is tried again a few times.
        for (let attempt = 1; ; attempt += 1) {
          try {
            await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
            return;
          } catch (error) {
            const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
            if (code !== '42501' || attempt >= 10) throw error;
            await new Promise((r) => setTimeout(r, 1_000));
          }
        }
      } finally {
        await a.end();
      }
    },
  };
}

/** What a raw pipe moves: from which topic to which, as which group, and the record it writes per input. */
export interface RawPipeOptions {
  group: string;
  input: string;
  output: string;
  config: Config;
  record: (key: Buffer | null) => { key: Buffer | null; value: Buffer };
}

export interface RawPipe {
  /** Outputs made visible by committed transactions so far. */
  readonly committed: number;
  stop(): Promise<void>;
}

/**
 * The baseline: a kafkajs consume → produce pipe with nothing of ours in it. read_committed, manual offsets,
 * the same partition concurrency, one transactional producer per input partition (as the runner keeps), and per
 * chunk of CHUNK records one transaction: one send of the chunk's outputs (the bytes `output` gives for each
 * input), sendOffsets, commit. No decoding, no encoding, no store, no metrics.
 */
export async function startRawPipe(kafka: Kafka, o: RawPipeOptions): Promise<RawPipe> {
  const producers = new Map<number, Promise<Producer>>();
  const producerFor = (partition: number): Promise<Producer> => {
    let p = producers.get(partition);
    if (!p) {
      const producer = kafka.producer({
        createPartitioner: Partitioners.DefaultPartitioner, transactionalId: `${o.group}.${partition}`, idempotent: true, maxInFlightRequests: 1,
        retry: { initialRetryTime: 20, retries: 10 },
      });
      p = producer.connect().then(() => producer);
      producers.set(partition, p);
    }
    return p;
  };
  const consumer: Consumer = kafka.consumer({
    groupId: o.group, readUncommitted: false, allowAutoTopicCreation: false, sessionTimeout: o.config.sessionTimeoutMs,
    maxBytesPerPartition: o.config.fetchMaxBytesPerPartition, maxBytes: o.config.fetchMaxBytesPerPartition * 4,
  });
  let committed = 0;
  await consumer.connect();
  await consumer.subscribe({ topic: o.input, fromBeginning: true });
  await consumer.run({
    autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: o.config.partitionConcurrency,
    eachBatch: async (payload) => {
      const producer = await producerFor(payload.batch.partition);
      await pipeChunks(payload, o, () => producer.transaction(), {
        send: (messages) => ({ topic: o.output, acks: -1, messages }),
        offsets: (partition, offset) => ({ consumerGroupId: o.group, topics: [{ topic: o.input, partitions: [{ partition, offset }] }] }),
        committed: (n) => (committed += n),
      });
    },
  });
  return {
    get committed() {
      return committed;
    },
    async stop() {
      await consumer.disconnect();
      for (const p of producers.values()) await (await p).disconnect();
    },
  };
}

/** The part of a kafkajs-shaped transaction the raw pipes use: kafkajs' own and the confluent client's kafkajs-compatible one. */
interface ChunkTransaction<S, F> {
  send(record: S): Promise<unknown>;
  sendOffsets(offsets: F): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/** The part of a kafkajs-shaped eachBatch payload the raw pipes use. */
export interface ChunkBatchPayload {
  batch: { partition: number; messages: { key: Buffer | null; offset: string }[] };
  resolveOffset(offset: string): void;
  heartbeat(): Promise<void>;
  isRunning(): boolean;
  isStale(): boolean;
}

/**
 * The raw pipes' loop over one batch, for kafkajs and the confluent client alike: per chunk of CHUNK records one
 * transaction (one send of the chunk's outputs, the offset after it, commit), then the offset resolved. `send` and
 * `offsets` shape the two calls as each client takes them; `committed` counts what each commit made visible.
 */
export async function pipeChunks<S, F>(p: ChunkBatchPayload, o: RawPipeOptions, transaction: () => Promise<ChunkTransaction<S, F>>, shape: {
  send: (messages: { key: Buffer | null; value: Buffer }[]) => S;
  offsets: (partition: number, offset: string) => F;
  committed: (n: number) => void;
}): Promise<void> {
  const { batch } = p;
  for (let i = 0; i < batch.messages.length; i += CHUNK) {
    if (!p.isRunning() || p.isStale()) return;
    const chunk = batch.messages.slice(i, i + CHUNK);
    const last = chunk[chunk.length - 1];
    if (!last) continue;
    const txn = await transaction();
    try {
      await txn.send(shape.send(chunk.map((m) => o.record(m.key))));
      await txn.sendOffsets(shape.offsets(batch.partition, (BigInt(last.offset) + 1n).toString()));
      await txn.commit();
    } catch (error) {
      await txn.abort().catch(() => {});
      throw error;
    }
    shape.committed(chunk.length);
    p.resolveOffset(last.offset);
    await p.heartbeat();
  }
}

/**
 * Waits until `count()` reaches `expected`, polling every 20 ms, and returns the rate between the first poll
 * that saw progress and the last: group joins and connection set-up before the first commit are left out, for
 * the runner and the raw pipe alike.
 */
export async function rateUntil(count: () => Promise<number> | number, expected: number, timeoutMs: number, what: string): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  let first: { at: number; n: number } | undefined;
  for (;;) {
    const n = await count();
    const at = performance.now();
    if (first === undefined && n > 0) first = { at, n };
    if (n >= expected && first !== undefined) {
      // Everything in one poll: the whole run fitted between two polls, so the rate is bounded by the poll step.
      const ms = Math.max(at - first.at, 20);
      return (n - (at === first.at ? 0 : first.n)) / (ms / 1000);
    }
    if (at > deadline) throw new BenchError('PH_BENCH_TIMEOUT', `${what}: ${n} of ${expected} after ${Math.round(timeoutMs / 1000)} s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function sumCommitted(admin: Admin, group: string, topic: string): Promise<number> {
  const [t] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  return (t?.partitions ?? []).reduce((s, p) => s + Math.max(0, Number(p.offset)), 0);
}

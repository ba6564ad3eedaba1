// First: the kafkajs fix must be in place before kafkajs itself loads.
import './kafkajs-patches.ts';
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Kafka, logLevel, Partitioners, type IHeaders, type KafkaMessage, type ProducerConfig, type SASLOptions } from 'kafkajs';
import type { Config } from '../config/index.ts';
import { topicName, type EventName } from '../topology/index.ts';
import type { Logger } from '../core/logger.ts';
import type { Output, Tombstone } from './processor.ts';
import type { SerdePort } from './serde.ts';

export const TRACE_HEADER = 'ph-trace-id';
/** Header a record re-driven from the DLQ carries: which DLQ record it replays (`<partition>:<offset>`). */
export const REPLAYED_FROM_HEADER = 'ph-replayed-from';

type KafkaSecurity = 'kafkaSsl' | 'kafkaSslCaFile' | 'kafkaSslCertFile' | 'kafkaSslKeyFile' | 'kafkaSaslMechanism' | 'kafkaSaslUsername' | 'kafkaSaslPassword';

export function createKafka(config: Pick<Config, 'kafkaBrokers' | KafkaSecurity>, clientId: string, logger: Logger): Kafka {
  // The configuration checked these files and their combinations at start; they are read here, once per client.
  const pem = (file: string): string => readFileSync(file, 'utf8');
  const ssl: ConnectionOptions | undefined = config.kafkaSsl
    ? {
        ...(config.kafkaSslCaFile ? { ca: [pem(config.kafkaSslCaFile)] } : {}),
        ...(config.kafkaSslCertFile && config.kafkaSslKeyFile ? { cert: pem(config.kafkaSslCertFile), key: pem(config.kafkaSslKeyFile) } : {}),
      }
    : undefined;
  const sasl: SASLOptions | undefined = config.kafkaSaslMechanism === 'none'
    ? undefined
    : { mechanism: config.kafkaSaslMechanism, username: config.kafkaSaslUsername, password: config.kafkaSaslPassword };
  return new Kafka({
    clientId,
    brokers: config.kafkaBrokers.split(','),
    ...(ssl ? { ssl } : {}),
    ...(sasl ? { sasl } : {}),
    connectionTimeout: 5_000,
    // Waits between retries capped at 5 s (kafkajs' default cap is 30 s), with two retries more so an
    // operation still gives up after about 25 s. A consumer whose retries ran out during a broker outage
    // is restarted by kafkajs after the last wait: uncapped, up to 30 s after the broker is back.
    retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 5_000 },
    // kafkajs logs through its own creator; route it into pino so every line is JSON with a component.
    logLevel: logLevel.WARN,
    logCreator: () => ({ namespace, level, log }) => {
      const { message, ...extra } = log;
      const child = logger.child({ component: 'kafkajs', namespace });
      // kafkajs logs broker error responses and send failures it is about to retry at ERROR (e.g.
      // CONCURRENT_TRANSACTIONS between back-to-back transactions); they are warnings until retries run out.
      const retried = 'retryCount' in extra || message.startsWith('Response ');
      // Printed on every idempotent producer with a finite retry count. Finite is deliberate: a send
      // that keeps failing must surface so the chunk's transaction aborts and is redone.
      if (message.startsWith('Limiting retries for the idempotent producer')) return child.debug(extra, message);
      if (level <= logLevel.ERROR && !retried) child.error(extra, message);
      else child.warn(extra, message);
    },
  });
}

/**
 * Every producer uses the Java client's murmur2 partitioner, so a key lands on the same partition
 * whichever client (Java, Python, Node) produced it; stating it also silences kafkajs' v2 notice.
 */
export function producerConfig(extra: ProducerConfig = {}): ProducerConfig {
  return { createPartitioner: Partitioners.DefaultPartitioner, ...extra };
}

/** Encoded records grouped by topic, in the order they were produced: what one send (or one transaction) writes. */
export type Encoded = Map<string, { key: Buffer; value: Buffer | null; headers: IHeaders }[]>;

/** Joins groups topic by topic, keeping each group's order and the groups' order. */
export function mergeByTopic(groups: Iterable<Encoded>): Encoded {
  const merged: Encoded = new Map();
  for (const group of groups) {
    for (const [topic, records] of group) {
      const list = merged.get(topic);
      if (list) list.push(...records);
      else merged.set(topic, [...records]);
    }
  }
  return merged;
}

export async function encodeOutputs<O extends EventName>(serde: Pick<SerdePort, 'encodeKey' | 'encodeValue'>, prefix: string, outputs: readonly (Output<O> | Tombstone<O>)[], headers: IHeaders): Promise<Encoded> {
  const groups: Encoded[] = [];
  for (const out of outputs) {
    // A tombstone's value stays null: no schema, no registry, nothing for a consumer to decode.
    const record = { key: await serde.encodeKey(out.event, out.key), value: isTombstone(out) ? null : await serde.encodeValue(out.event, out.value), headers };
    groups.push(new Map([[topicName(prefix, out.event), [record]]]));
  }
  return mergeByTopic(groups);
}

export function isTombstone<O extends EventName>(out: Output<O> | Tombstone<O>): out is Tombstone<O> {
  return out.value === null;
}

const keyPartitioner = Partitioners.DefaultPartitioner();

/**
 * The partition kafkajs' producer (the Java client's murmur2 partitioner, producerConfig) puts a keyed record in,
 * on a topic of `partitions` partitions: keyed placement depends on the count alone, not on leaders.
 */
export function partitionOf(topic: string, key: Buffer, partitions: number): number {
  const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({ partitionErrorCode: 0, partitionId, leader: 0, replicas: [0], isr: [0] }));
  return keyPartitioner({ topic, partitionMetadata, message: { key, value: null } });
}

/** Records split by the partition each lands in, each group in produce order, groups in order of first record. */
export function groupByPartition<R extends { key: Buffer }>(topic: string, records: readonly R[], partitions: number): R[][] {
  const groups = new Map<number, R[]>();
  for (const r of records) {
    const p = partitionOf(topic, r.key, partitions);
    const group = groups.get(p);
    if (group) group.push(r);
    else groups.set(p, [r]);
  }
  return [...groups.values()];
}

/**
 * The part of Kafka the runner uses, as narrow ports: kafkajs behind them in production, a fake in the
 * runner's unit tests (test/helpers/fake-kafka.ts). Nothing else of kafkajs leaks into the runner.
 */
export interface BatchPort {
  batch: { topic: string; partition: number; highWatermark: string; messages: KafkaMessage[] };
  heartbeat(): Promise<void>;
  isRunning(): boolean;
  isStale(): boolean;
  resolveOffset(offset: string): void;
}

export interface ConsumerPort {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  subscribe(subscription: { topic: string; fromBeginning: boolean }): Promise<void>;
  run(options: { partitionsConsumedConcurrently: number; eachBatch: (payload: BatchPort) => Promise<void> }): Promise<void>;
  pause(topics: { topic: string }[]): void;
  resume(topics: { topic: string }[]): void;
  /** kafkajs crashed the consumer; `restart` says whether it restarts it by itself. */
  onCrash(listener: (event: { error: Error; restart: boolean }) => void): void;
  /** The member joined the group with these partitions of the subscribed topic. */
  onGroupJoin(listener: (event: { partitions: number[] }) => void): void;
  onHeartbeat(listener: () => void): void;
}

export interface TransactionPort {
  send(record: { topic: string; messages: { key: Buffer; value: Buffer | null; headers: IHeaders }[]; acks: -1 }): Promise<unknown>;
  sendOffsets(offsets: { consumerGroupId: string; topics: { topic: string; partitions: { partition: number; offset: string }[] }[] }): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export interface ProducerPort {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  transaction(): Promise<TransactionPort>;
}

export interface ConsumerSettings {
  groupId: string;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  /** Bytes a fetch may bring per partition: with the partitions in flight, bounds what is buffered. */
  maxBytesPerPartition: number;
}

export interface KafkaPort {
  consumer(settings: ConsumerSettings): ConsumerPort;
  transactionalProducer(transactionalId: string): ProducerPort;
  /** The group's committed offset of a partition (-1 if none). */
  committedOffset(groupId: string, topic: string, partition: number): Promise<bigint>;
  /** How many partitions the topic has now. */
  partitionCount(topic: string): Promise<number>;
}

export function kafkaPort(kafka: Kafka): KafkaPort {
  return {
    consumer(s) {
      const c = kafka.consumer({
        groupId: s.groupId, readUncommitted: false, allowAutoTopicCreation: false,
        sessionTimeout: s.sessionTimeoutMs, heartbeatInterval: s.heartbeatIntervalMs,
        maxBytesPerPartition: s.maxBytesPerPartition, maxBytes: s.maxBytesPerPartition * 4,
      });
      return {
        connect: () => c.connect(),
        disconnect: () => c.disconnect(),
        subscribe: (sub) => c.subscribe(sub),
        run: (o) => c.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: o.partitionsConsumedConcurrently, eachBatch: o.eachBatch }),
        pause: (topics) => c.pause(topics),
        resume: (topics) => c.resume(topics),
        onCrash: (listener) => { c.on(c.events.CRASH, (e) => listener({ error: e.payload.error, restart: e.payload.restart })); },
        onGroupJoin: (listener) => { c.on(c.events.GROUP_JOIN, (e) => listener({ partitions: Object.values(e.payload.memberAssignment).flat() })); },
        onHeartbeat: (listener) => { c.on(c.events.HEARTBEAT, () => listener()); },
      };
    },
    async committedOffset(groupId, topic, partition) {
      const admin = kafka.admin();
      await admin.connect();
      try {
        const [t] = await admin.fetchOffsets({ groupId, topics: [topic] });
        return BigInt(t?.partitions.find((p) => p.partition === partition)?.offset ?? '-1');
      } finally {
        await admin.disconnect();
      }
    },
    async partitionCount(topic) {
      const admin = kafka.admin();
      await admin.connect();
      try {
        const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
        return topics[0]?.partitions.length ?? 0;
      } finally {
        await admin.disconnect();
      }
    },
    transactionalProducer(transactionalId) {
      return kafka.producer(producerConfig({
        transactionalId,
        idempotent: true,
        maxInFlightRequests: 1,
        // kafkajs waits 300 ms on CONCURRENT_TRANSACTIONS by default, capping a producer at ~4 transactions/s.
        retry: { initialRetryTime: 20, retries: 10 },
      }));
    },
  };
}

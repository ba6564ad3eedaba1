import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, Partitioners, type Admin, type IHeaders, type Producer, type ProducerConfig } from 'kafkajs';
import type { Config } from '../config/index.ts';
import { events, topicName, type EventName } from '../topology/index.ts';
import { PersonaHubError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { Output } from './processor.ts';
import type { Serde } from './serde.ts';

export const TRACE_HEADER = 'ph-trace-id';

export function createKafka(config: Pick<Config, 'kafkaBrokers'>, clientId: string, logger: Logger): Kafka {
  return new Kafka({
    clientId,
    brokers: config.kafkaBrokers.split(','),
    connectionTimeout: 5_000,
    retry: { retries: 8, initialRetryTime: 100 },
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

/**
 * Creates every topic of the topology (idempotent). Leaders are awaited by polling metadata rather
 * than `waitForLeaders`, which throws UNKNOWN_TOPIC_OR_PARTITION right after a broker restart
 * although the topics were created.
 */
export async function ensureTopics(admin: Admin, prefix: string, partitions: number, timeoutMs = 60_000): Promise<string[]> {
  const existing = new Set(await admin.listTopics());
  const wanted = (Object.keys(events) as EventName[]).map((event) => ({
    topic: topicName(prefix, event),
    numPartitions: partitions,
    replicationFactor: 1,
    configEntries: [
      { name: 'retention.ms', value: String(events[event].retentionMs) },
      { name: 'cleanup.policy', value: 'delete' },
    ],
  }));
  const missing = wanted.filter((t) => !existing.has(t.topic));
  if (missing.length > 0) await admin.createTopics({ topics: missing, waitForLeaders: false });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: wanted.map((t) => t.topic) });
      if (topics.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))) break;
    } catch (cause) {
      if (Date.now() > deadline) throw new PersonaHubError('PH_KAFKA_TOPICS', `topics have no leaders after ${timeoutMs} ms: ${(cause as Error).message}`, { cause });
    }
    if (Date.now() > deadline) throw new PersonaHubError('PH_KAFKA_TOPICS', `topics have no leaders after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return missing.map((t) => t.topic);
}

/** Encoded records grouped by topic, in the order they were produced: what one send (or one transaction) writes. */
export type Encoded = Map<string, { key: Buffer; value: Buffer; headers: IHeaders }[]>;

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

export async function encodeOutputs<O extends EventName>(serde: Serde, prefix: string, outputs: readonly Output<O>[], headers: IHeaders): Promise<Encoded> {
  const groups: Encoded[] = [];
  for (const out of outputs) {
    const record = { key: await serde.encodeKey(out.event, out.key), value: await serde.encodeValue(out.event, out.value), headers };
    groups.push(new Map([[topicName(prefix, out.event), [record]]]));
  }
  return mergeByTopic(groups);
}

/** A plain idempotent producer for sources (ingest): each event keyed, with a fresh trace id. */
export async function produceEvents<O extends EventName>(producer: Producer, serde: Serde, prefix: string, outputs: readonly Output<O>[]): Promise<void> {
  const groups: Encoded[] = [];
  for (const out of outputs) groups.push(await encodeOutputs(serde, prefix, [out], { [TRACE_HEADER]: randomUUID() }));
  const byTopic = mergeByTopic(groups);
  await producer.sendBatch({ acks: -1, topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) });
}

import { Kafka, logLevel, Partitioners, type IHeaders, type ProducerConfig } from 'kafkajs';
import type { Config } from '../config/index.ts';
import { topicName, type EventName } from '../topology/index.ts';
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

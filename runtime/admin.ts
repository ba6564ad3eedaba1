import type { Admin, Kafka } from 'kafkajs';
import { PersonaHubError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { events, topicName, type EventName } from '../topology/index.ts';
import type { Serde } from './serde.ts';

/** `personahub topics init`: every topic of the topology created and every schema registered, idempotently. */
export async function initTopics(kafka: Kafka, serde: Serde, o: { prefix: string; partitions: number; logger: Logger }): Promise<{ created: string[]; subjects: number }> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const created = await ensureTopics(admin, o.prefix, o.partitions);
    const ids = await serde.registerAll();
    o.logger.info({ created, subjects: ids.size }, 'topics and schemas ready');
    return { created, subjects: ids.size };
  } finally {
    await admin.disconnect();
  }
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

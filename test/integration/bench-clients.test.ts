import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../core/logger.ts';
import { topicName, type EventName } from '../../topology/index.ts';
import { dropTopics, fill, freshTopics, rateUntil, startRawPipe, sumCommitted, type RawPipe, type RawPipeOptions, type RunTopics } from '../../bench/runner/kafka-bench.ts';
import { startPlatformaticPipe } from '../../bench/runner/platformatic-pipe.ts';
import { personahubEnv } from '../helpers/pipeline.ts';

/**
 * The clients benchmark compares like with like only if every client's pipe does the same work: each input
 * moved exactly once into a committed transaction, the group's offsets committed in it (so a restart would
 * not redo anything), and each output on the partition its key gives under the Java client's murmur2, as
 * kafkajs writes it. Checked here against the real broker, each pipe writing to a topic of its own.
 * The confluent pipe is not checked here: its client is built from source by the first full bench run (about
 * ten minutes on 2 cores), which the suite does not pay; `npm run bench -- --only clients` runs it.
 */

const N = 200;
const logger = createLogger({ level: 'warn', name: 'bench-clients-test' });
let t: RunTopics;
/** key → the input's partition (filled by kafkajs' DefaultPartitioner). */
const inputPartition = new Map<string, number>();

beforeAll(async () => {
  t = await freshTopics(personahubEnv(), logger);
  const records = Array.from({ length: N }, (_, i) => ({ key: Buffer.from(`key-${i}`), value: Buffer.alloc(2_600, i % 251) }));
  await fill(t.kafka, topicName(t.prefix, 'seed'), records);
  const admin = t.kafka.admin();
  await admin.connect();
  try {
    const { topics } = await admin.fetchTopicMetadata({ topics: [topicName(t.prefix, 'seed')] });
    expect(topics[0]?.partitions.length).toBeGreaterThan(1);
  } finally {
    await admin.disconnect();
  }
  const consumer = t.kafka.consumer({ groupId: `${t.prefix}.partitions`, readUncommitted: false });
  await consumer.connect();
  await consumer.subscribe({ topic: topicName(t.prefix, 'seed'), fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    consumer.run({ eachMessage: async ({ partition, message }) => {
      inputPartition.set(message.key?.toString() ?? '', partition);
      if (inputPartition.size === N) resolve();
    } }).catch(reject);
  });
  await consumer.disconnect();
}, 120_000);

afterAll(async () => {
  await dropTopics(t);
});

/** Every committed output of `topic`, read as read_committed until N have come: key → partitions it was seen on. */
async function outputs(topic: string): Promise<Map<string, number[]>> {
  const seen = new Map<string, number[]>();
  let count = 0;
  const consumer = t.kafka.consumer({ groupId: `${topic}.check`, readUncommitted: false });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    consumer.run({ eachMessage: async ({ partition, message }) => {
      const key = message.key?.toString() ?? '';
      seen.set(key, [...(seen.get(key) ?? []), partition]);
      count += 1;
      if (count >= N) resolve();
    } }).catch(reject);
  });
  await consumer.disconnect();
  return seen;
}

async function check(name: string, output: EventName, start: (o: RawPipeOptions) => Promise<RawPipe>): Promise<void> {
  const group = `${t.prefix}.${name}`;
  const input = topicName(t.prefix, 'seed');
  const out = topicName(t.prefix, output);
  const value = Buffer.from(`out-${name}`);
  const pipe = await start({ group, input, output: out, config: t.config, record: (key) => ({ key, value }) });
  try {
    await rateUntil(() => pipe.committed, N, 120_000, name);
    expect(pipe.committed).toBe(N);
  } finally {
    await pipe.stop();
  }
  const admin = t.kafka.admin();
  await admin.connect();
  try {
    expect(await sumCommitted(admin, group, input)).toBe(N);
  } finally {
    await admin.disconnect();
  }
  const seen = await outputs(out);
  expect(seen.size).toBe(N);
  for (const [key, partitions] of seen) expect(partitions, key).toEqual([inputPartition.get(key)]);
}

describe('the clients benchmark\'s raw pipes', () => {
  it('kafkajs moves each input once, transactionally, offsets committed in the transaction, outputs on their key\'s partition', async () => {
    await check('kafkajs', 'draft', (o) => startRawPipe(t.kafka, o));
  }, 180_000);

  it('@platformatic/kafka does the same', async () => {
    await check('platformatic', 'enriched', startPlatformaticPipe);
  }, 180_000);
});

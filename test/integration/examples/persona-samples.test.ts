import { spawn, type ChildProcess } from 'node:child_process';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { ConfigResourceTypes, type Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MATH_WORD_PROBLEM, SAMPLE_TOPIC, sampleKey, type PersonaSample } from '../../../examples/persona-samples/consumer.ts';
import { topicName } from '../../../topology/index.ts';
import { FIXTURE_CHAT_MODEL, startFixtureLlm, type FixtureLlm } from '../../helpers/fixture-llm.ts';
import { createTestPipeline, stopChild, type TestPipeline } from '../../helpers/pipeline.ts';
import { producerConfig } from '../../../runtime/kafka.ts';

/** Every committed record of a topic, read from the start by a fresh read_committed consumer, until `count` have arrived. */
async function readAll(kafka: Kafka, topic: string, count: number, timeoutMs: number): Promise<{ key: string; value: Buffer | null; partition: number; offset: string }[]> {
  const consumer = kafka.consumer({ groupId: `reader-${topic}-${Date.now()}`, readUncommitted: false });
  const records: { key: string; value: Buffer | null; partition: number; offset: string }[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let done: () => void = () => undefined;
  const enough = new Promise<void>((resolve) => {
    done = resolve;
  });
  await consumer.run({
    eachMessage: async ({ message, partition }) => {
      records.push({ key: message.key?.toString('utf8') ?? '', value: message.value, partition, offset: message.offset });
      if (records.length >= count) done();
    },
  });
  const timer = setTimeout(done, timeoutMs);
  await enough;
  clearTimeout(timer);
  await consumer.disconnect();
  return records;
}

/** Waits for the example to create its topic (it does at start), so a reader can subscribe to it. */
async function topicCreated(kafka: Kafka, topic: string): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (let i = 0; i < 600 && !(await admin.listTopics()).includes(topic); i += 1) await new Promise((r) => setTimeout(r, 200));
  } finally {
    await admin.disconnect();
  }
}

/** The example as its users run it: its own process, configured like the pipeline, stopped with SIGTERM. */
function runExample(t: TestPipeline, llm: FixtureLlm): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'examples/persona-samples/main.ts'], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...t.env, PERSONAHUB_LLM_BASE_URL: llm.baseURL, PERSONAHUB_LLM_MODEL: FIXTURE_CHAT_MODEL },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

describe('example consumer: a synthetic sample per validated persona', () => {
  let t: TestPipeline;
  let llm: FixtureLlm;
  let validated: string[];

  beforeAll(async () => {
    t = await createTestPipeline({ PERSONAHUB_MODE: 'sampler', PERSONAHUB_EMBEDDER: 'hash' });
    llm = await startFixtureLlm({ embeddingDimensions: 384 });
    const seeds = t.seeds(6);
    // Without relate: no expansion seeds, so the validated personas are exactly those of these seeds.
    await t.startStages(['draft', 'enrich', 'validate', 'index']);
    await t.ingest(seeds);
    expect(await t.observer.waitUntilSettled(new Set(seeds.map((s) => s.id)), { timeoutMs: 180_000 })).toBe(true);
    validated = [...t.observer.seen.validated.keys()];
    await t.stopStages();
  });

  afterAll(async () => {
    await llm?.close();
    await t?.close();
  });

  it('writes one sample per validated persona to its compacted topic, keyed by persona and template version, and commits its position with them', async () => {
    expect(validated.length).toBeGreaterThan(0);
    const first = runExample(t, llm);
    await topicCreated(t.pipeline.kafka, SAMPLE_TOPIC(t.prefix));
    const records = await readAll(t.pipeline.kafka, SAMPLE_TOPIC(t.prefix), validated.length, 120_000);
    expect(await stopChild(first)).toBe(0);
    expect(records.map((r) => r.key).sort()).toEqual(validated.map((id) => sampleKey(id, MATH_WORD_PROBLEM)).sort());

    const registry = new SchemaRegistry({ host: t.config.registryUrl });
    for (const r of records) {
      const sample = (await registry.decode(r.value ?? Buffer.alloc(0))) as PersonaSample;
      const persona = t.observer.seen.validated.get(sample.personaId);
      expect(sample).toMatchObject({ personaVersion: persona?.version, templateId: 'math-word-problem', templateVersion: 1, model: FIXTURE_CHAT_MODEL });
      expect(sample.problem.length).toBeGreaterThan(0);
    }
    // The prompt carried the persona: each chat request names one of the validated personas' descriptions.
    const prompts = llm.requests.filter((q) => q.path.endsWith('/chat/completions')).map((q) => q.text);
    for (const id of validated) expect(prompts.some((p) => p.includes(t.observer.seen.validated.get(id)?.description ?? '\u0000'))).toBe(true);

    // The group's position was committed with the samples, past each partition's last persona (and the
    // transaction marker after it): a restart of the service (same group) has nothing to redo.
    const personas = await readAll(t.pipeline.kafka, topicName(t.prefix, 'validated'), validated.length, 120_000);
    const lastPersona = new Map<number, number>();
    for (const r of personas) lastPersona.set(r.partition, Math.max(lastPersona.get(r.partition) ?? 0, Number(r.offset)));
    const admin = t.pipeline.kafka.admin({ retry: { retries: 3 } });
    await admin.connect();
    const [committed] = await admin.fetchOffsets({ groupId: `${t.prefix}.example.persona-samples`, topics: [topicName(t.prefix, 'validated')] });
    const committedAt = new Map(committed?.partitions.filter((p) => Number(p.offset) >= 0).map((p) => [p.partition, Number(p.offset)]));
    expect([...committedAt.keys()].sort()).toEqual([...lastPersona.keys()].sort());
    for (const [partition, offset] of lastPersona) expect(committedAt.get(partition)).toBeGreaterThan(offset);
    const described = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: SAMPLE_TOPIC(t.prefix), configNames: ['cleanup.policy'] }], includeSynonyms: false });
    await admin.disconnect();
    expect(described.resources[0]?.configEntries[0]?.configValue).toBe('compact');
  }, 300_000);

  it('turns a tombstone for a persona into a tombstone for its sample, resuming from its committed position', async () => {
    const gone = validated[0] ?? '';
    // Idempotent: a retried send must not write the tombstone twice (the sample topic would then carry two).
    const producer = t.pipeline.kafka.producer(producerConfig({ idempotent: true, maxInFlightRequests: 1 }));
    await producer.connect();
    await producer.send({ topic: topicName(t.prefix, 'validated'), messages: [{ key: await t.pipeline.serde.encodeKey('validated', gone), value: null }] });
    await producer.disconnect();
    const calls = llm.requests.length;
    const service = runExample(t, llm);
    const records = await readAll(t.pipeline.kafka, SAMPLE_TOPIC(t.prefix), validated.length + 1, 120_000);
    expect(await stopChild(service)).toBe(0);
    // One record more than before, the tombstone, and no sample made again: the restart began where the first run stopped.
    expect(records).toHaveLength(validated.length + 1);
    expect(records.filter((r) => r.value === null).map((r) => r.key)).toEqual([sampleKey(gone, MATH_WORD_PROBLEM)]);
    expect(llm.requests.length).toBe(calls);
  }, 300_000);
});

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import type { Kafka, KafkaMessage, Producer } from 'kafkajs';
import { z } from 'zod';
import type { Logger } from '../../core/logger.ts';
import type { LlmClient } from '../../llm/client.ts';
import { producerConfig } from '../../runtime/kafka.ts';
import type { Serde } from '../../runtime/serde.ts';
import type { Persona } from '../../schemas/types.generated.ts';
import { topicName } from '../../topology/index.ts';

/**
 * An example downstream service: for each validated persona, one synthetic sample from a prompt
 * template (the PersonaHub recipe, one template × many personas), written to a topic of its own.
 *
 * It subscribes the way any service outside the pipeline does: the topic name from topology/ (the
 * pipeline's single source), its own consumer group, read_committed, and the persona decoded by the
 * project's Serde into its own reader schema (so a field added later under BACKWARD compatibility is
 * read with its default). Output goes through the registry client with this example's own schema.
 *
 * Exactly once, idempotent by persona id and template version:
 * - Each batch's samples and its input offsets commit in one Kafka transaction, with one transactional
 *   id per input partition: a crash or rebalance redoes the batch, and the aborted attempt is invisible
 *   to read_committed readers; the partition's next owner fences a zombie.
 * - The key is `<personaId>:<templateId>@<templateVersion>` and the topic is compacted, so anything
 *   that makes a persona arrive again (a replay, a rewound or new consumer group, a new version of the
 *   persona) overwrites that key's sample instead of adding one; a new template version is a new key.
 * - The LLM request is deterministic (fixed seed, temperature 0) and the client caches responses by
 *   content, so a redone batch costs no second model call and writes the same sample.
 */

export interface PromptTemplate {
  id: string;
  version: number;
  instruction: string;
}

export const MATH_WORD_PROBLEM: PromptTemplate = {
  id: 'math-word-problem',
  version: 1,
  instruction: 'Write a math word problem this person would pose, drawn from their own work and life, and its answer.',
};

export const SAMPLE_TOPIC = (prefix: string) => `${prefix}.example.persona-samples.v1`;
export const sampleKey = (personaId: string, t: PromptTemplate) => `${personaId}:${t.id}@${t.version}`;

const SAMPLE_SCHEMA = readFileSync(join(import.meta.dirname, 'sample.avsc'), 'utf8');
const Answer = z.object({ problem: z.string().min(1), answer: z.string().min(1) });
const ANSWER_SCHEMA = {
  type: 'object',
  properties: { problem: { type: 'string', minLength: 1, maxLength: 600 }, answer: { type: 'string', minLength: 1, maxLength: 200 } },
  required: ['problem', 'answer'],
  additionalProperties: false,
};

export interface PersonaSample {
  personaId: string;
  personaVersion: number;
  templateId: string;
  templateVersion: number;
  problem: string;
  answer: string;
  model: string;
  generatedAt: number;
}

export interface SampleConsumerOptions {
  kafka: Kafka;
  /** Decodes the persona topics (the project's Serde). */
  serde: Pick<Serde, 'decode' | 'decodeKey'>;
  registryUrl: string;
  prefix: string;
  llm: LlmClient;
  logger: Logger;
  template?: PromptTemplate;
  /** Its own consumer group: this service's position in the validated topic. */
  groupId?: string;
  now?: () => number;
}

export async function generateSample(llm: LlmClient, persona: Persona, template: PromptTemplate, now: number): Promise<PersonaSample> {
  const { value, model } = await llm.chatJson({
    messages: [
      { role: 'system', content: 'You write synthetic training data in the voice of a given person. Answer with JSON only.' },
      { role: 'user', content: `${template.instruction}\n\nThe person: ${persona.description}\n(${persona.name}, ${persona.age}, ${persona.occupation}, ${persona.locale})` },
    ],
    schemaName: 'word_problem', schema: ANSWER_SCHEMA, parse: (v) => Answer.parse(v), maxTokens: 300, temperature: 0, seed: 1,
  });
  return {
    personaId: persona.id, personaVersion: persona.version, templateId: template.id, templateVersion: template.version,
    problem: value.problem, answer: value.answer, model, generatedAt: now,
  };
}

export interface RunningSampleConsumer {
  stop(): Promise<void>;
}

export async function startSampleConsumer(o: SampleConsumerOptions): Promise<RunningSampleConsumer> {
  const template = o.template ?? MATH_WORD_PROBLEM;
  const input = topicName(o.prefix, 'validated');
  const output = SAMPLE_TOPIC(o.prefix);
  const groupId = o.groupId ?? `${o.prefix}.example.persona-samples`;
  const now = o.now ?? (() => Date.now());
  const log = o.logger.child({ component: 'persona-samples', template: `${template.id}@${template.version}` });

  const admin = o.kafka.admin();
  await admin.connect();
  // Compacted: the latest sample per key is what the topic keeps, which is what makes it idempotent by key.
  await admin.createTopics({ topics: [{ topic: output, numPartitions: 3, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }], waitForLeaders: false });
  await admin.disconnect();

  const registry = new SchemaRegistry({ host: o.registryUrl });
  const { id: schemaId } = await registry.register({ type: SchemaType.AVRO, schema: SAMPLE_SCHEMA }, { subject: `${output}-value` });

  const producers = new Map<number, Producer>();
  async function producerFor(partition: number): Promise<Producer> {
    const known = producers.get(partition);
    if (known) return known;
    // One transactional id per input partition: whoever owns the partition next takes it and fences this one.
    const p = o.kafka.producer(producerConfig({ transactionalId: `${groupId}.${input}.${partition}`, idempotent: true, maxInFlightRequests: 1, retry: { retries: 5, initialRetryTime: 20 } }));
    await p.connect();
    producers.set(partition, p);
    return p;
  }

  async function recordFor(m: KafkaMessage): Promise<{ key: string; value: Buffer | null }> {
    const personaId = await o.serde.decodeKey(m.key);
    if (personaId === null) throw new Error(`record at offset ${m.offset} of ${input} has no key`);
    // A tombstone (the persona was deleted) deletes this persona's sample too.
    if (m.value === null) return { key: sampleKey(personaId, template), value: null };
    const persona = await o.serde.decode('validated', m.value, m.key);
    const sample = await generateSample(o.llm, persona, template, now());
    return { key: sampleKey(persona.id, template), value: await registry.encode(schemaId, sample) };
  }

  const consumer = o.kafka.consumer({ groupId, readUncommitted: false });
  await consumer.connect();
  await consumer.subscribe({ topic: input, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, isRunning, isStale, resolveOffset, heartbeat }) => {
      if (batch.messages.length === 0) return;
      const records: { key: string; value: Buffer | null }[] = [];
      for (const m of batch.messages) records.push(await recordFor(m));
      // A batch finished after its partition moved is dropped: the new owner redoes it.
      if (!isRunning() || isStale()) return;
      const producer = await producerFor(batch.partition);
      const txn = await producer.transaction();
      try {
        // Sends inside one transaction must not race each other.
        for (const r of records) await txn.send({ topic: output, messages: [r] });
        await txn.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: input, partitions: [{ partition: batch.partition, offset: (BigInt(batch.lastOffset()) + 1n).toString() }] }] });
        await txn.commit();
      } catch (error) {
        await txn.abort().catch(() => undefined);
        throw error;
      }
      // The offsets went to the group inside the transaction; this moves the consumer's own position, or
      // kafkajs would fetch the same records again and the batch would be made twice.
      resolveOffset(batch.lastOffset());
      await heartbeat();
      log.info({ partition: batch.partition, samples: records.length }, 'samples committed');
    },
  });
  return {
    async stop() {
      await consumer.disconnect();
      for (const p of producers.values()) await p.disconnect();
    },
  };
}

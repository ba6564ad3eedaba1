import { randomUUID } from 'node:crypto';
import type { Admin, Consumer } from 'kafkajs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { events, groupId, stages, topicName, type EventName } from '../../topology/index.ts';
import { DLQ_HEADERS } from '../../runtime/runner.ts';
import { producerConfig } from '../../runtime/kafka.ts';
import { FIXTURE_EMBEDDING_MODEL, startFixtureLlm, type FixtureLlm } from '../helpers/fixture-llm.ts';
import { createTestPipeline, type TestPipeline } from '../helpers/pipeline.ts';

/**
 * Every record of every topic of a test pipeline, counted per key (read_committed), and how far each
 * partition has been read, control records included, so a test can tell when it has seen everything
 * committed so far.
 */
class TopicTally {
  private readonly counts = new Map<string, Map<string, number>>();
  /** Next offset to read, per topic and partition. */
  private readonly position = new Map<string, Map<number, bigint>>();
  /** Highest offset of a data record, per topic and partition: what a stage's committed offset must pass. */
  private readonly lastData = new Map<string, Map<number, bigint>>();
  private consumer: Consumer | undefined;

  constructor(private readonly t: TestPipeline) {}

  async start(): Promise<void> {
    const consumer = this.t.pipeline.kafka.consumer({ groupId: `${this.t.prefix}.tally.${randomUUID()}`, readUncommitted: false });
    this.consumer = consumer;
    await consumer.connect();
    await consumer.subscribe({ topics: (Object.keys(events) as EventName[]).map((e) => topicName(this.t.prefix, e)), fromBeginning: true });
    const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      // lastOffset counts control records too: once it reaches the high watermark, the partition is read.
      if (payload.lastOffset !== null) this.map(this.position, payload.topic).set(payload.partition, BigInt(payload.lastOffset) + 1n);
    });
    await consumer.run({
      eachMessage: async ({ topic, partition, message }) => {
        const key = (await this.t.pipeline.serde.decodeKey(message.key)) ?? '';
        const counts = this.counts.get(topic) ?? new Map<string, number>();
        this.counts.set(topic, counts);
        counts.set(key, (counts.get(key) ?? 0) + 1);
        this.map(this.lastData, topic).set(partition, BigInt(message.offset));
      },
    });
    await joined;
  }

  /** Records with this key on the event's topic. */
  count(event: EventName, key: string): number {
    return this.counts.get(topicName(this.t.prefix, event))?.get(key) ?? 0;
  }

  /** True once every partition of the topic has been read up to its high watermark as of now. */
  async caughtUp(admin: Admin, event: EventName): Promise<boolean> {
    const topic = topicName(this.t.prefix, event);
    const read = this.map(this.position, topic);
    return (await admin.fetchTopicOffsets(topic)).every((o) => BigInt(o.high) === 0n || (read.get(o.partition) ?? 0n) >= BigInt(o.high));
  }

  /** True once the stage's consumer group has committed past every data record of its input topic read so far. */
  async processedBy(admin: Admin, stage: (typeof stages)[number]): Promise<boolean> {
    const topic = topicName(this.t.prefix, stage.input);
    const [committed] = await admin.fetchOffsets({ groupId: groupId(this.t.prefix, stage.name), topics: [topic] });
    const offsetOf = (partition: number): bigint => BigInt(committed?.partitions.find((p) => p.partition === partition)?.offset ?? '-1');
    return [...this.map(this.lastData, topic)].every(([partition, last]) => offsetOf(partition) > last);
  }

  /**
   * Waits until the pipeline has done everything there is to do with what is on its topics: stage
   * by stage, the tally has read the stage's input up to its end and the stage has committed past
   * it (so all of its outputs are committed); then the tally has read every output. No sleeps
   * bounded by a guess: the test's timeout is the only limit.
   */
  async untilQuiet(admin: Admin): Promise<void> {
    const until = async (condition: () => Promise<boolean>): Promise<void> => {
      while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 100));
    };
    for (const stage of stages) {
      await until(() => this.caughtUp(admin, stage.input));
      await until(() => this.processedBy(admin, stage));
    }
    for (const event of Object.keys(events) as EventName[]) await until(() => this.caughtUp(admin, event));
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
  }

  private map<V>(maps: Map<string, Map<number, V>>, topic: string): Map<number, V> {
    const m = maps.get(topic) ?? new Map<number, V>();
    maps.set(topic, m);
    return m;
  }
}

/** The texts of an OpenAI embeddings request's body: `input` is one string or a list. */
function embeddingInputs(body: unknown): string[] {
  const input = typeof body === 'object' && body !== null && 'input' in body ? body.input : undefined;
  return typeof input === 'string' ? [input] : Array.isArray(input) ? input.filter((t): t is string => typeof t === 'string') : [];
}

/**
 * The walking skeleton's end-to-end proof on the real broker, registry and PostgreSQL: 50 seeds in,
 * every seed accounted for at every hop, indexed personas in the store with their embeddings, every
 * event decodable through the registry, and one malformed event in the DLQ while the rest flow.
 */
describe('pipeline end to end (sampler drafts, fixture embeddings, PostgreSQL store)', () => {
  let llm: FixtureLlm;
  let t: TestPipeline;

  beforeAll(async () => {
    llm = await startFixtureLlm({ embeddingDimensions: 384 });
    t = await createTestPipeline({
      PERSONAHUB_MODE: 'sampler', PERSONAHUB_EMBEDDER: 'llm', PERSONAHUB_LLM_BASE_URL: llm.baseURL, PERSONAHUB_EMBEDDING_MODEL: FIXTURE_EMBEDDING_MODEL,
    });
  });

  afterAll(async () => {
    await t?.close();
    await llm?.close();
  });

  it('accounts for 50 seeds at every hop and dead-letters one poison event', async () => {
    const seeds = t.seeds(50);
    expect(seeds).toHaveLength(50);
    await t.startStages();
    await t.ingest(seeds.slice(0, 25));
    // A malformed event between good ones: not Avro at all.
    const producer = t.pipeline.kafka.producer(producerConfig());
    await producer.connect();
    await producer.send({ topic: topicName(t.prefix, 'seed'), messages: [{ key: 'poison-1', value: Buffer.from('{"text": "I am JSON, not Avro"}') }] });
    await producer.disconnect();
    await t.ingest(seeds.slice(25));

    const seedIds = new Set(seeds.map((s) => s.id));
    const settled = await t.observer.waitUntilSettled(seedIds, { timeoutMs: 240_000, poison: 1 });
    const hops = t.observer.accounting(seedIds);
    expect(hops.map((h) => [h.hop, h.pending.length])).toEqual([
      ['seed→draft', 0], ['draft→enriched', 0], ['enriched→validated|rejected', 0], ['validated→indexed', 0],
    ]);
    expect(settled).toBe(true);
    expect(hops.map((h) => h.in)[0]).toBe(50);

    const { seen, records } = t.observer;
    expect(seen.draft.size).toBe(50);
    expect(seen.enriched.size).toBe(50);
    expect(seen.validated.size + seen.rejected.size).toBe(50);
    expect(seen.validated.size).toBeGreaterThan(40);
    expect(seen.indexed.size).toBe(seen.validated.size);
    // Exactly once between topics: no persona appears twice on any topic.
    for (const event of ['draft', 'enriched', 'validated', 'indexed'] as const) expect(records[event]).toBe(seen[event].size);
    // Everything the stages wrote decodes through the registry; the only undecodable record is the poison one.
    expect(t.observer.undecodable.map((u) => u.topic)).toEqual([topicName(t.prefix, 'seed')]);

    const [dlqKey, dead] = [...seen.dlq][0] ?? [];
    expect(seen.dlq.size).toBe(1);
    expect(dlqKey).toBe('poison-1');
    expect(dead).toMatchObject({ stage: 'draft', errorCode: 'PH_SERDE_DECODE', originalTopic: topicName(t.prefix, 'seed'), attempts: 1 });
    expect(dead?.originalValue?.toString()).toContain('I am JSON, not Avro');
    const headers = t.observer.dlqHeaders.get('poison-1') ?? {};
    expect(headers[DLQ_HEADERS.code]).toBe('PH_SERDE_DECODE');
    expect(headers[DLQ_HEADERS.stage]).toBe('draft');
    expect(headers[DLQ_HEADERS.topic]).toBe(topicName(t.prefix, 'seed'));
    expect(headers[DLQ_HEADERS.offset]).toMatch(/^\d+$/);
    expect(headers[DLQ_HEADERS.message]).toMatch(/not Confluent-framed Avro/);

    const store = t.pipeline.ctx.store;
    expect(store.kind).toBe('postgres');
    expect(await store.countPersonas()).toBe(seen.validated.size);
    for (const id of [...seen.validated.keys()].slice(0, 10)) {
      const row = await store.getPersona(id);
      expect(row?.embedding).toHaveLength(384);
      expect(row?.embeddingModel).toBe(FIXTURE_EMBEDDING_MODEL);
      expect(row?.mode).toBe('SAMPLER');
    }
    // Metrics come from the runner's hooks: consumed, produced, dead-lettered, store writes.
    const metric = async (name: string) => (await t.pipeline.metrics.registry.getSingleMetric(name)?.get())?.values ?? [];
    const sum = (values: { value: number; labels: Record<string, unknown> }[], labels: Record<string, string>) =>
      values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((n, v) => n + v.value, 0);
    expect(sum(await metric('personahub_events_consumed_total'), { stage: 'draft' })).toBe(51);
    expect(sum(await metric('personahub_events_produced_total'), { stage: 'draft', topic: topicName(t.prefix, 'draft') })).toBe(50);
    expect(sum(await metric('personahub_events_dead_lettered_total'), { stage: 'draft', code: 'PH_SERDE_DECODE' })).toBe(1);
    expect(sum(await metric('personahub_events_produced_total'), { stage: 'index' })).toBe(seen.indexed.size);
    expect(sum(await metric('personahub_validation_rejections_total'), {})).toBe([...seen.rejected.values()].reduce((n, r) => n + r.reasons.length, 0));
    expect(await t.pipeline.metrics.registry.metrics()).toMatch(/personahub_store_write_duration_seconds_count \d+/);
    // Every stage caught up: what is left behind each partition's high watermark is transaction
    // markers and aborted records (a few per partition), not the 50 records.
    const lag = await metric('personahub_consumer_lag');
    expect(new Set(lag.map((v) => v.labels.stage))).toEqual(new Set(stages.map((s) => s.name)));
    for (const v of lag) expect(v.value).toBeLessThanOrEqual(10);
    // The embeddings really came over HTTP from the fixture: every drafted persona's text was embedded,
    // in requests grouping the personas a chunk embedded together (so fewer requests than texts).
    const embeddings = llm.requests.filter((r) => r.path === '/v1/embeddings');
    const embedded = new Set(embeddings.flatMap((r) => embeddingInputs(r.body)));
    for (const p of seen.draft.values()) expect(embedded.has(p.description), `the text of ${p.id} was embedded`).toBe(true);
    expect(embeddings.length).toBeLessThan(seen.draft.size);
  });

  // Each stage claims its inputs by identity (runtime/identity.ts): a seed seen again at a new offset
  // is skipped, so nothing new reaches any downstream topic or the store.
  it('re-ingesting the same seeds changes nothing downstream: one record per persona on every topic, one store row', async () => {
    // Seeds of its own (past the 50 above) and stages started if need be: it sets up its own
    // precondition, whether it runs alone (-t) or after the test above.
    const seeds = t.seeds(60).slice(50);
    expect(seeds).toHaveLength(10);
    const seedIds = new Set(seeds.map((s) => s.id));
    if (t.runners.length === 0) await t.startStages();
    const tally = new TopicTally(t);
    await tally.start();
    const admin = t.pipeline.kafka.admin();
    await admin.connect();
    const db = new pg.Client(t.config.databaseUrl);
    await db.connect();
    const storeRows = async (): Promise<Map<string, number>> => {
      const { rows } = await db.query<{ id: string; n: string }>('SELECT id, count(*) AS n FROM personas WHERE seed_id = ANY($1) GROUP BY id', [[...seedIds]]);
      return new Map(rows.map((r) => [r.id, Number(r.n)]));
    };
    try {
      // 1. Ingest once and wait until every seed is accounted for at every hop and the stages are idle.
      await t.ingest(seeds);
      expect(await t.observer.waitUntilSettled(seedIds, { timeoutMs: 240_000 })).toBe(true);
      await tally.untilQuiet(admin);
      const personas = [...t.observer.seen.draft.values()].filter((p) => seedIds.has(p.seedId)).map((p) => p.id);
      const validated = personas.filter((id) => t.observer.seen.validated.has(id));
      const rejected = personas.filter((id) => t.observer.seen.rejected.has(id));
      expect(personas.length).toBeGreaterThanOrEqual(seeds.length);
      expect(validated.length).toBeGreaterThan(0);
      expect(validated.length + rejected.length).toBe(personas.length);

      // 2. Record the counts: so far, one record per persona id on each topic it reached, one store row per indexed persona.
      const snapshot = () => ({
        seed: seeds.map((s) => tally.count('seed', s.id)),
        draft: personas.map((id) => tally.count('draft', id)),
        enriched: personas.map((id) => tally.count('enriched', id)),
        validated: personas.map((id) => tally.count('validated', id)),
        rejected: personas.map((id) => tally.count('rejected', id)),
        indexed: personas.map((id) => tally.count('indexed', id)),
        dlq: [...seeds.map((s) => s.id), ...personas].map((id) => tally.count('dlq', id)),
      });
      const once = personas.map(() => 1);
      const expected = {
        draft: once, enriched: once,
        validated: personas.map((id) => (validated.includes(id) ? 1 : 0)),
        rejected: personas.map((id) => (rejected.includes(id) ? 1 : 0)),
        indexed: personas.map((id) => (validated.includes(id) ? 1 : 0)),
        dlq: [...seeds.map(() => 0), ...personas.map(() => 0)],
      };
      expect(snapshot()).toEqual({ seed: seeds.map(() => 1), ...expected });
      const rowsBefore = await storeRows();
      expect(rowsBefore).toEqual(new Map(validated.map((id) => [id, 1])));

      // 3. Re-ingest the same seeds and wait until every stage has processed them and committed.
      await t.ingest(seeds);
      await tally.untilQuiet(admin);

      // 4. The seeds are on their topic twice (the re-ingest happened), and nothing downstream changed:
      // still exactly one record per persona id on every topic, and one store row each.
      expect(snapshot()).toEqual({ seed: seeds.map(() => 2), ...expected });
      expect(await storeRows()).toEqual(rowsBefore);
    } finally {
      await db.end();
      await admin.disconnect();
      await tally.stop();
    }
  }, 600_000);
});

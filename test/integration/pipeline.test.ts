import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topicName } from '../../topology/index.ts';
import { DLQ_HEADERS } from '../../runtime/runner.ts';
import { producerConfig } from '../../runtime/kafka.ts';
import { FIXTURE_EMBEDDING_MODEL, startFixtureLlm, type FixtureLlm } from '../helpers/fixture-llm.ts';
import { createTestPipeline, type TestPipeline } from '../helpers/pipeline.ts';

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
    expect(new Set(lag.map((v) => v.labels.stage))).toEqual(new Set(['draft', 'enrich', 'validate', 'index']));
    for (const v of lag) expect(v.value).toBeLessThanOrEqual(10);
    // The embeddings really came over HTTP from the fixture: one request per persona at least.
    expect(llm.requests.filter((r) => r.path === '/v1/embeddings').length).toBeGreaterThanOrEqual(50);
  });

  it('re-ingesting the same seeds changes nothing downstream (idempotent ids, dedup by owner)', async () => {
    const before = await t.pipeline.ctx.store.countPersonas();
    const seeds = t.seeds(10);
    const seedIds = new Set(seeds.map((s) => s.id));
    const validatedBefore = [...t.observer.seen.validated.values()].filter((p) => seedIds.has(p.seedId)).length;
    const indexedRecordsBefore = t.observer.records.indexed;
    await t.ingest(seeds);
    const deadline = Date.now() + 120_000;
    while (t.observer.records.indexed < indexedRecordsBefore + validatedBefore && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    expect(t.observer.records.indexed).toBe(indexedRecordsBefore + validatedBefore);
    // Re-announced, but the store saw the same (id, version) and kept one row each.
    const outcomes = [...t.observer.seen.indexed.values()].filter((i) => seedIds.has(i.seedId)).map((i) => i.outcome);
    expect(outcomes).toEqual(new Array(validatedBefore).fill('UNCHANGED'));
    expect(await t.pipeline.ctx.store.countPersonas()).toBe(before);
    // A re-delivered persona finds its own dedup claim: no new rejections as "duplicate of itself".
    expect([...t.observer.seen.rejected.values()].filter((r) => r.reasons.some((x) => x.code === 'DUPLICATE'))).toEqual([]);
  });
});

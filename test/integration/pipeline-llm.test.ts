import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_CHAT_MODEL, FIXTURE_EMBEDDING_MODEL, startFixtureLlm, type FixtureLlm } from '../helpers/fixture-llm.ts';
import { createTestPipeline, type TestPipeline } from '../helpers/pipeline.ts';
import { personaId } from '../../persona/ids.ts';
import { samplePersona, samplerFor } from '../../persona/sampler.ts';

/**
 * LLM mode over real HTTP with injected faults: a 429 with Retry-After and a 500 are retried and the
 * persona still flows; persistently malformed JSON ends in the DLQ with the LLM error code; every other
 * seed is validated or rejected with reasons.
 */
describe('pipeline in LLM mode against the fault-injecting fixture', () => {
  let llm: FixtureLlm;
  let t: TestPipeline;

  beforeAll(async () => {
    llm = await startFixtureLlm({ embeddingDimensions: 384 });
    t = await createTestPipeline({
      PERSONAHUB_MODE: 'llm', PERSONAHUB_EMBEDDER: 'llm', PERSONAHUB_LLM_BASE_URL: llm.baseURL,
      PERSONAHUB_LLM_MODEL: FIXTURE_CHAT_MODEL, PERSONAHUB_EMBEDDING_MODEL: FIXTURE_EMBEDDING_MODEL, PERSONAHUB_LLM_MAX_RETRIES: '3',
    });
  });

  afterAll(async () => {
    await t?.close();
    await llm?.close();
  });

  it('retries transient faults, dead-letters persistent bad output, accounts for every seed', async () => {
    const seeds = t.seeds(12);
    const [flaky, broken] = [seeds[2], seeds[5]];
    if (!flaky || !broken) throw new Error('corpus too small');
    const chatFor = (seedText: string) => (r: { path: string; text: string }) => r.path === '/v1/chat/completions' && r.text.includes(seedText.slice(0, 60));
    llm.setFaults({ match: chatFor(flaky.text), sequence: [{ status: 429, retryAfterSeconds: 1 }, { status: 500 }] });
    await t.startStages();
    await t.ingest(seeds.filter((s) => s !== broken));
    const settledFirst = await t.observer.waitUntilSettled(new Set(seeds.filter((s) => s !== broken).map((s) => s.id)), { timeoutMs: 120_000 });
    expect(settledFirst).toBe(true);

    llm.setFaults({ match: chatFor(broken.text), sequence: ['malformed_json'], repeat: true });
    await t.ingest([broken]);
    const seedIds = new Set(seeds.map((s) => s.id));
    expect(await t.observer.waitUntilSettled(seedIds, { timeoutMs: 120_000 })).toBe(true);

    const { seen } = t.observer;
    // The flaky seed's persona went through after a 429 (honouring Retry-After) and a 500.
    const flakyRequests = llm.requests.filter((r) => chatFor(flaky.text)(r));
    expect(flakyRequests.map((r) => r.status)).toEqual([429, 500, 200]);
    expect((flakyRequests[1]?.receivedAt ?? 0) - (flakyRequests[0]?.receivedAt ?? 0)).toBeGreaterThanOrEqual(1000);
    expect([...seen.draft.values()].some((p) => p.seedId === flaky.id)).toBe(true);

    // The broken seed: the client tried other seeds, then the runner dead-lettered it with the code.
    const dead = seen.dlq.get(broken.id);
    expect(dead).toMatchObject({ stage: 'draft', errorCode: 'PH_LLM_BAD_OUTPUT' });
    expect(seen.draft.size).toBe(11);
    expect(seen.validated.size + seen.rejected.size).toBe(11);
    for (const p of seen.draft.values()) expect(p.provenance).toMatchObject({ mode: 'LLM', model: FIXTURE_CHAT_MODEL });
    // The draft call's one answer carried the written facets; the enrich stage had the model write the modalities, one call per persona.
    for (const p of seen.draft.values()) for (const text of Object.values(p.facets ?? {})) expect(text.length).toBeGreaterThanOrEqual(20);
    expect(seen.enriched.size).toBe(11);
    for (const p of seen.enriched.values()) {
      expect(p.facets).toEqual(seen.draft.get(p.id)?.facets);
      expect(p.enrichment).toMatchObject({ modalitiesSource: 'LLM', modalitiesModel: FIXTURE_CHAT_MODEL });
      expect(p.enrichment?.backstory.length).toBeGreaterThanOrEqual(60);
      expect(p.enrichment?.routines.length).toBeGreaterThanOrEqual(1);
    }
    const schemaOf = (r: { body: unknown }) => (r.body as { response_format?: { json_schema?: { name?: string } } }).response_format?.json_schema?.name;
    expect(llm.requests.filter((r) => schemaOf(r) === 'persona_modalities' && r.status === 200)).toHaveLength(11);
    for (const r of seen.rejected.values()) expect(r.reasons.length).toBeGreaterThan(0);
  });

  it('dead-letters at enrich a persona whose modalities answer never parses, and keeps the others flowing', async () => {
    const [broken, ...fine] = t.seeds(15).slice(12);
    if (!broken) throw new Error('corpus too small');
    // The modalities call names the persona (its sampled name), not the seed: that is what the fault matches.
    const { name } = samplePersona(samplerFor(t.config.profile), broken.id, 0).attributes;
    const schemaOf = (r: { body: unknown }) => (r.body as { response_format?: { json_schema?: { name?: string } } }).response_format?.json_schema?.name;
    const modalitiesOf = (r: { body: unknown; text: string }) => schemaOf(r) === 'persona_modalities' && r.text.includes(`Name: ${name}\n`);
    llm.setFaults({ match: modalitiesOf, sequence: ['schema_violation'], repeat: true });
    await t.ingest([broken, ...fine]);
    expect(await t.observer.waitUntilSettled(new Set([broken, ...fine].map((s) => s.id)), { timeoutMs: 120_000 })).toBe(true);

    const { seen } = t.observer;
    const id = personaId(broken.id, 0);
    // Drafted, then asked three times with other sampling seeds, then PH_LLM_BAD_OUTPUT (permanent): the DLQ, from the enrich stage.
    expect(seen.draft.has(id)).toBe(true);
    expect(llm.requests.filter(modalitiesOf)).toHaveLength(3);
    expect(seen.dlq.get(id)).toMatchObject({ stage: 'enrich', errorCode: 'PH_LLM_BAD_OUTPUT' });
    expect(seen.enriched.has(id)).toBe(false);
    for (const s of fine) expect(seen.enriched.get(personaId(s.id, 0))?.enrichment?.modalitiesSource).toBe('LLM');
  });
});

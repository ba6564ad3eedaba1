import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../config/index.ts';
import { fetchModels } from '../../../models/weights/fetch.ts';
import { buildLlmServer } from '../../../models/server/server.ts';
import { createLogger } from '../../../core/logger.ts';
import { createTestPipeline, type TestPipeline } from '../../helpers/pipeline.ts';
import { TEST_LLM, TEST_LLM_ENV } from './test-llm.ts';

/**
 * The real local models through the whole pipeline: the suite's local text model (test-llm.ts: the small
 * Qwen2.5-Coder-0.5B-Instruct, through its chat template, with the draft prompt's few-shot examples) writes
 * the personas through the local OpenAI-compatible server, all-MiniLM-L6-v2 embeds them, and every event on every topic decodes
 * against its Avro schema (the observer decodes each one through the registry).
 */
describe('pipeline with the real local models', () => {
  let t: TestPipeline;
  let server: Awaited<ReturnType<typeof buildLlmServer>>;
  const base = loadConfig({ ...process.env, ...TEST_LLM_ENV });

  beforeAll(async () => {
    const logger = createLogger({ level: 'warn', name: 'llm-test' });
    const models = await fetchModels({ modelsDir: base.modelsDir, cacheDir: base.cacheDir, llm: TEST_LLM, logger });
    server = await buildLlmServer({
      llmModelPath: models.llm?.path ?? '', llmModelName: base.llmModel, embeddingModelPath: models.embedding.path, embeddingModelName: base.embeddingModel,
      // The cap the served model takes in `llm serve` (1024): the enrich stage asks up to 640 tokens for the modalities.
      contextSize: 3072, maxQueue: 16, requestTimeoutMs: 120_000, maxPromptTokens: 1536, maxTokensCap: 1024, logger,
    });
    const address = await server.app.listen({ host: '127.0.0.1', port: 0 });
    t = await createTestPipeline({ ...TEST_LLM_ENV, PERSONAHUB_MODE: 'llm', PERSONAHUB_EMBEDDER: 'llm', PERSONAHUB_LLM_BASE_URL: `${address}/v1` });
  });

  afterAll(async () => {
    await t?.close();
    await server?.close();
  });

  it('drafts, embeds, validates and indexes a handful of personas written by the model', async () => {
    const seeds = t.seeds(4);
    await t.startStages();
    await t.ingest(seeds);
    const seedIds = new Set(seeds.map((s) => s.id));
    expect(await t.observer.waitUntilSettled(seedIds, { timeoutMs: 300_000 })).toBe(true);
    const { seen } = t.observer;
    expect(t.observer.undecodable).toEqual([]);
    expect([...seen.dlq.values()].map((d) => `${d.stage}: ${d.errorCode}: ${d.errorMessage}`)).toEqual([]);
    expect(seen.draft.size).toBe(4);
    for (const p of seen.draft.values()) {
      expect(p.provenance).toMatchObject({ mode: 'LLM', model: base.llmModel });
      expect(p.description.length).toBeGreaterThanOrEqual(40);
      expect(p.description.length).toBeLessThanOrEqual(600);
    }
    for (const p of seen.enriched.values()) {
      expect(p.enrichment?.embeddingModel).toBe(base.embeddingModel);
      expect(p.enrichment?.embedding).toHaveLength(384);
      expect(Math.hypot(...(p.enrichment?.embedding ?? []))).toBeGreaterThan(0.5);
    }
    expect(seen.validated.size + seen.rejected.size).toBe(4);
    expect(seen.indexed.size).toBe(seen.validated.size);
    // The model's personas must get through: a run where validation rejects every one of them is a failure, not a pass.
    const rejections = [...seen.rejected.values()].map((r) => r.reasons.map((x) => x.code).join('+'));
    expect(seen.indexed.size, `every persona was rejected: ${rejections.join(', ')}`).toBeGreaterThanOrEqual(1);
    // Semantic search over what was indexed finds each indexed persona by its own meaning.
    for (const id of seen.indexed.keys()) {
      const persona = seen.validated.get(id);
      expect(persona, `indexed persona ${id} was never validated`).toBeDefined();
      const [vector] = await t.pipeline.ctx.embedder.embed([persona?.description ?? '']);
      const [hit] = await t.pipeline.ctx.store.search(vector ?? [], 1);
      expect(hit?.id).toBe(id);
      expect(hit?.score).toBeGreaterThan(0.99);
    }
    // A hang guard beyond the wait above: four model-written personas take what the machine gives them
    // (the suite's 120 s default cut this test off on a loaded machine while the wait still had time).
  }, 600_000);
});

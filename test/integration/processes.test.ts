import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stages } from '../../topology/index.ts';
import { FIXTURE_EMBEDDING_MODEL, startFixtureLlm, type FixtureLlm } from '../helpers/fixture-llm.ts';
import { createTestPipeline, spawnCli, stopChild, type TestPipeline } from '../helpers/pipeline.ts';

/**
 * The deployment shape: each stage its own process (`personahub processor <stage>`), talking only
 * through Kafka topics, the registry and the store, and each stopping cleanly on SIGTERM.
 */
describe('one process per stage', () => {
  let llm: FixtureLlm;
  let t: TestPipeline;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    llm = await startFixtureLlm({ embeddingDimensions: 384 });
    t = await createTestPipeline({
      PERSONAHUB_MODE: 'sampler', PERSONAHUB_EMBEDDER: 'llm', PERSONAHUB_LLM_BASE_URL: llm.baseURL, PERSONAHUB_EMBEDDING_MODEL: FIXTURE_EMBEDDING_MODEL,
    });
  });

  afterAll(async () => {
    for (const c of children) await stopChild(c, 'SIGKILL');
    await t?.close();
    await llm?.close();
  });

  it('runs the pipeline across one process per stage and stops each with exit code 0', async () => {
    for (const stage of stages) children.push(spawnCli(t, ['processor', stage.name]));
    const seeds = t.seeds(20);
    await t.ingest(seeds);
    const settled = await t.observer.waitUntilSettled(new Set(seeds.map((s) => s.id)), { timeoutMs: 180_000 });
    expect(t.observer.accounting().map((h) => h.pending.length)).toEqual([0, 0, 0, 0]);
    expect(settled).toBe(true);
    const { seen, records } = t.observer;
    expect(seen.draft.size).toBe(20);
    expect(seen.indexed.size).toBe(seen.validated.size);
    for (const event of ['draft', 'enriched', 'validated', 'indexed'] as const) expect(records[event]).toBe(seen[event].size);
    expect(await t.pipeline.ctx.store.countPersonas()).toBe(seen.validated.size);
    const codes = await Promise.all(children.splice(0).map((c) => stopChild(c)));
    expect(codes).toEqual(stages.map(() => 0));
  });
});

import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_EMBEDDING_MODEL, startFixtureLlm, type FixtureLlm } from '../helpers/fixture-llm.ts';
import { createTestPipeline, spawnCli, stopChild, type TestPipeline } from '../helpers/pipeline.ts';

/**
 * The delivery guarantee under a crash: all stages run in a child process that is killed with
 * SIGKILL mid-run and restarted. Every seed must still be accounted for, and no persona may appear
 * twice on any topic or in the store.
 */
describe('kill -9 mid-run', () => {
  let llm: FixtureLlm;
  let t: TestPipeline;
  let child: ChildProcess | undefined;

  const startChild = (): ChildProcess => spawnCli(t, ['run']);

  beforeAll(async () => {
    // Slow embeddings stretch the run so the kill lands in the middle of it.
    llm = await startFixtureLlm({ embeddingDimensions: 384, latencyMs: 150 });
    t = await createTestPipeline({
      PERSONAHUB_MODE: 'sampler', PERSONAHUB_EMBEDDER: 'llm', PERSONAHUB_LLM_BASE_URL: llm.baseURL,
      PERSONAHUB_EMBEDDING_MODEL: FIXTURE_EMBEDDING_MODEL, PERSONAHUB_MAX_IN_FLIGHT: '1', PERSONAHUB_SESSION_TIMEOUT_MS: '6000',
    });
  });

  afterAll(async () => {
    child?.kill('SIGKILL');
    await t?.close();
    await llm?.close();
  });

  it('loses and duplicates nothing', async () => {
    const seeds = t.seeds(80);
    const seedIds = new Set(seeds.map((s) => s.id));
    await t.ingest(seeds);
    child = startChild();
    const deadline = Date.now() + 120_000;
    while (t.observer.seen.indexed.size < 10 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const indexedAtKill = t.observer.seen.indexed.size;
    expect(indexedAtKill).toBeGreaterThanOrEqual(10);
    await stopChild(child, 'SIGKILL');
    expect(t.observer.settled(seedIds)).toBe(false);

    child = startChild();
    const settled = await t.observer.waitUntilSettled(seedIds, { timeoutMs: 240_000 });
    expect(t.observer.accounting(seedIds).map((h) => h.pending.length)).toEqual([0, 0, 0, 0]);
    expect(settled).toBe(true);
    const { seen, records } = t.observer;
    expect(seen.draft.size).toBe(80);
    for (const event of ['draft', 'enriched', 'validated', 'rejected', 'indexed'] as const) expect(records[event]).toBe(seen[event].size);
    expect(await t.pipeline.ctx.store.countPersonas()).toBe(seen.validated.size);
    // Graceful stop: SIGTERM drains and disconnects, and the process exits 0.
    expect(await stopChild(child)).toBe(0);
  });
});

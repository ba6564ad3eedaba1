import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_CHAT_MODEL, startFixtureLlm, type FixtureLlm } from '../helpers/fixture-llm.ts';
import { createTestPipeline, type TestPipeline } from '../helpers/pipeline.ts';

/**
 * The LLM judge in the pipeline: sampler-mode personas (which pass the deterministic checks) are scored by
 * the fixture model, whose answers follow the judge's schema with scores drawn from 1-5; every persona the
 * checks pass is judged once, those with a criterion below the threshold reach the rejected topic with
 * LLM_JUDGE reasons, and the others carry their scores in validation.checks.
 */
describe('pipeline with the LLM judge on', () => {
  let llm: FixtureLlm;
  let t: TestPipeline;

  beforeAll(async () => {
    llm = await startFixtureLlm();
    t = await createTestPipeline({
      PERSONAHUB_MODE: 'sampler', PERSONAHUB_EMBEDDER: 'hash', PERSONAHUB_LLM_JUDGE: 'on',
      PERSONAHUB_LLM_BASE_URL: llm.baseURL, PERSONAHUB_LLM_MODEL: FIXTURE_CHAT_MODEL,
    });
  });

  afterAll(async () => {
    await t?.close();
    await llm?.close();
  });

  it('judges each checked persona once and sends judged rejects to the rejected topic with their reasons', async () => {
    const seeds = t.seeds(8);
    await t.startStages();
    await t.ingest(seeds);
    expect(await t.observer.waitUntilSettled(new Set(seeds.map((s) => s.id)), { timeoutMs: 120_000 })).toBe(true);

    const { seen } = t.observer;
    const schemaOf = (r: { body: unknown }) => (r.body as { response_format?: { json_schema?: { name?: string } } }).response_format?.json_schema?.name;
    const judgeCalls = llm.requests.filter((r) => schemaOf(r) === 'persona_judge' && r.status === 200);
    // The judge is the only chat call in sampler mode.
    expect(llm.requests.filter((r) => r.path === '/v1/chat/completions')).toHaveLength(judgeCalls.length);

    const judgedRejects = [...seen.rejected.values()].filter((r) => r.reasons.some((x) => x.code === 'LLM_JUDGE'));
    expect(judgedRejects.length).toBeGreaterThan(0);
    for (const r of judgedRejects) {
      expect(r.stage).toBe('validate');
      // Rejected by the judge alone: the checks had passed, so no other reason sits beside it.
      for (const reason of r.reasons) expect(reason).toMatchObject({ code: 'LLM_JUDGE', message: expect.stringMatching(/^(consistency|specificity|hygiene|coherence|seed_relation) scored [12] \(below 3\): \S/) });
      // Its prompt was the judge's, on this very persona.
      const persona = JSON.parse(r.personaJson) as { description: string };
      expect(judgeCalls.some((c) => c.text.includes(persona.description))).toBe(true);
    }
    for (const p of seen.validated.values()) {
      expect(p.validation?.checks).toContain('llm_judge');
      const scores = (p.validation?.checks ?? []).filter((c) => c.startsWith('llm_judge.')).map((c) => Number(c.split('=')[1]));
      expect(scores).toHaveLength(5);
      for (const s of scores) expect(s).toBeGreaterThanOrEqual(3);
    }
    // One call per persona judged: the validated ones and the judged rejects (a duplicate is judged before its claim fails).
    const duplicates = [...seen.rejected.values()].filter((r) => r.duplicateOf !== null).length;
    expect(judgeCalls.length).toBe(seen.validated.size + judgedRejects.length + duplicates);
  });
});

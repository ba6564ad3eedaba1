import { describe, expect, it } from 'vitest';
import type { ChatJsonRequest, LlmClient } from '../../../llm/client.ts';
import { personaId } from '../../../persona/ids.ts';
import { DRAFT_OUTPUT_SCHEMA } from '../../../persona/prompt.ts';
import { draft, draftPlans, draftRequest } from '../../../processors/draft/index.ts';
import { fakeContext } from '../../helpers/context.ts';
import { draftAnswer, sampleSeed } from '../../helpers/samples.ts';

describe('draft processor, sampler mode', () => {
  it('draft emits personasPerSeed personas with stable ids and SAMPLER provenance', async () => {
    const out = await draft.process(sampleSeed(), fakeContext({ env: { PERSONAHUB_PERSONAS_PER_SEED: '3' } }));
    expect(out.map((o) => o.key)).toEqual([0, 1, 2].map((i) => personaId('a'.repeat(32), i)));
    for (const o of out) {
      expect(o.event).toBe('draft');
      expect(o.value.provenance).toMatchObject({ mode: 'SAMPLER', model: 'sampler', createdAt: 42 });
      expect(o.value.facets?.professional).toContain(o.value.occupation);
      expect(o.value.facets?.shortPersona).toMatch(/^An? /);
    }
    // Composed, so the same seed gives the same facets; another persona of it, other ones.
    const again = await draft.process(sampleSeed(), fakeContext({ env: { PERSONAHUB_PERSONAS_PER_SEED: '3' } }));
    expect(again.map((o) => o.value.facets)).toEqual(out.map((o) => o.value.facets));
    expect(new Set(out.map((o) => o.value.facets?.shortPersona)).size).toBe(3);
  });
});

describe('LLM mode', () => {
  it('sends the grounded prompt with a JSON schema and keeps only a description that parses', async () => {
    const calls: ChatJsonRequest<unknown>[] = [];
    const llm: LlmClient = {
      async chatJson<T>(req: ChatJsonRequest<T>) {
        calls.push(req as ChatJsonRequest<unknown>);
        return { value: req.parse(draftAnswer('  A grounded persona description that is long enough to pass the length check.  ')), model: 'fake-model', cached: false };
      },
      embed: async () => ({ vectors: [], model: 'x', dimensions: 0 }),
      close: async () => {},
    };
    const out = await draft.process(sampleSeed(), fakeContext({ llm, env: { PERSONAHUB_MODE: 'llm' } }));
    expect(calls).toHaveLength(1);
    expect(calls[0]?.schema).toEqual(DRAFT_OUTPUT_SCHEMA);
    // The profile's demographics are in the prompt: the model is told the sex the validator checks pronouns against.
    expect(calls[0]?.messages.at(-1)?.content).toContain(`Sex: ${out[0]?.value.demographics?.sex}`);
    expect(out[0]?.value.description).toBe('A grounded persona description that is long enough to pass the length check.');
    expect(out[0]?.value.provenance).toMatchObject({ mode: 'LLM', model: 'fake-model' });
    // The facets come from the same call; the answer's `relation` is the record's seedRelation facet.
    const { description: _, relation, ...facets } = draftAnswer('');
    expect(out[0]?.value.facets).toEqual({ ...facets, seedRelation: relation });
    expect(() => calls[0]?.parse({ ...draftAnswer('A grounded persona description that is long enough to pass.'), family: undefined })).toThrow();
    expect(() => calls[0]?.parse({ ...draftAnswer('A grounded persona description that is long enough to pass.'), leisure: 'x'.repeat(401) })).toThrow();
    expect(() => calls[0]?.parse({ description: 'too short' })).toThrow();
    expect(() => calls[0]?.parse({ text: 'wrong field' })).toThrow();
  });

  it('sends for each persona what draftPlans and draftRequest give, which the llm-e2e benchmark\'s bare loop sends', async () => {
    const calls: ChatJsonRequest<unknown>[] = [];
    const llm: LlmClient = {
      async chatJson<T>(req: ChatJsonRequest<T>) {
        calls.push(req as ChatJsonRequest<unknown>);
        return { value: req.parse(draftAnswer('A grounded persona description that is long enough to pass the length check.')), model: 'fake-model', cached: false };
      },
      embed: async () => ({ vectors: [], model: 'x', dimensions: 0 }),
      close: async () => {},
    };
    const ctx = fakeContext({ llm, env: { PERSONAHUB_MODE: 'llm', PERSONAHUB_PERSONAS_PER_SEED: '2' } });
    await draft.process(sampleSeed(), ctx);
    const expected = draftPlans(sampleSeed(), ctx.config).map((plan) => draftRequest(plan, personaId(sampleSeed().id, plan.index)));
    expect(expected).toHaveLength(2);
    // The functions are the stage's own, so everything but the parse closure is equal; two personas, two prompts.
    const data = <T>(reqs: ChatJsonRequest<T>[]) => reqs.map(({ parse: _, ...rest }) => rest);
    expect(data(calls)).toEqual(data(expected));
    expect(calls[0]?.seed).not.toBe(calls[1]?.seed);
    expect(calls[0]?.messages.at(-1)?.content).not.toBe(calls[1]?.messages.at(-1)?.content);
  });
});

import { describe, expect, it } from 'vitest';
import type { ChatJsonRequest, LlmClient } from '../../../llm/client.ts';
import { hashEmbed } from '../../../llm/embedder.ts';
import { bigFiveFor, lifeStageFor } from '../../../persona/modalities.ts';
import { MODALITIES_OUTPUT_SCHEMA } from '../../../persona/modalities-prompt.ts';
import { enrich } from '../../../processors/enrich/index.ts';
import { fakeContext } from '../../helpers/context.ts';
import { samplePersona } from '../../helpers/samples.ts';

/** A model's answer to the modalities call, every field inside its bounds. */
const answer = {
  backstory: 'Amara grew up in Ibadan, trained as a nurse in Lagos and has worked on the children\'s ward for ten years.',
  speakingStyle: 'Warm and unhurried; she repeats instructions twice for worried parents.',
  habits: ['checks the vaccine fridge at the start of every shift', 'walks to church on Sundays'],
  goals: ['become the ward\'s nurse educator'],
  values: ['patience', 'faith'],
  mediaDiet: ['nursing journals', 'Nollywood films'],
  appearance: 'A woman in her thirties with braided hair, a blue uniform and a watch pinned to her chest.',
  imagePrompt: 'Documentary photo of a pediatric nurse in her thirties weighing a baby on a clinic scale, Lagos, soft light, 35mm',
  settings: ['children\'s ward', 'church'],
  routines: ['Night shifts Monday to Thursday, then a long sleep and market on Saturday.'],
};

function fakeLlm(reply: unknown, calls: ChatJsonRequest<unknown>[]): LlmClient {
  return {
    async chatJson<T>(req: ChatJsonRequest<T>) {
      calls.push(req as ChatJsonRequest<unknown>);
      return { value: req.parse(structuredClone(reply)), model: 'fake-model', cached: false };
    },
    embed: async () => ({ vectors: [], model: 'x', dimensions: 0 }),
    close: async () => {},
  };
}

describe('enrich processor', () => {
  it('adds the embedding of the description with the embedder model name', async () => {
    const p = { ...samplePersona(), enrichment: null };
    const [out] = await enrich.process(p, fakeContext());
    expect(out?.value.enrichment?.embedding).toEqual(hashEmbed(p.description, 384));
    expect(out?.value.enrichment?.embeddingModel).toBe('hash-bow-384');
  });

  it('in sampler mode derives the modalities and labels them as the sampler\'s', async () => {
    const [out] = await enrich.process({ ...samplePersona(), enrichment: null }, fakeContext());
    expect(out?.value.enrichment).toMatchObject({ modalitiesSource: 'SAMPLER', modalitiesModel: 'sampler', backstory: '', speakingStyle: '', values: [], routines: [] });
    expect(out?.value.enrichment?.habits).toHaveLength(3);
  });

  it('in LLM mode has a model write the modalities of a model-written persona in one structured call', async () => {
    const calls: ChatJsonRequest<unknown>[] = [];
    const p = samplePersona({ enrichment: null, provenance: { ...samplePersona().provenance, mode: 'LLM', model: 'fake-model' } });
    const [out] = await enrich.process(p, fakeContext({ llm: fakeLlm(answer, calls), env: { PERSONAHUB_MODE: 'llm' } }));
    expect(calls).toHaveLength(1);
    expect(calls[0]?.schema).toEqual(MODALITIES_OUTPUT_SCHEMA);
    expect(calls[0]?.messages.at(-1)?.content).toContain(p.description);
    // What the model wrote, labelled with it; life stage and Big Five still follow from age and traits.
    expect(out?.value.enrichment).toMatchObject({ ...answer, modalitiesSource: 'LLM', modalitiesModel: 'fake-model', lifeStage: lifeStageFor(p.age), bigFive: bigFiveFor(p) });
    expect(out?.value.enrichment?.embedding).toEqual(hashEmbed(p.description, 384));

    // A backstory the grammar closed at its bound mid-sentence is cut back to its last full sentence.
    const [cut] = await enrich.process(p, fakeContext({ llm: fakeLlm({ ...answer, backstory: `${answer.backstory} Patient and anxious, she still` }, []), env: { PERSONAHUB_MODE: 'llm' } }));
    expect(cut?.value.enrichment?.backstory).toBe(answer.backstory);
  });

  it('refuses an answer that misses a field or breaks a bound, and leaves a sampler persona to the sampler', async () => {
    const calls: ChatJsonRequest<unknown>[] = [];
    const llm = fakeLlm(answer, calls);
    const p = samplePersona({ enrichment: null, provenance: { ...samplePersona().provenance, mode: 'LLM', model: 'fake-model' } });
    await enrich.process(p, fakeContext({ llm, env: { PERSONAHUB_MODE: 'llm' } }));
    const parse = calls[0]?.parse;
    const { backstory: _, ...noBackstory } = answer;
    expect(() => parse?.(noBackstory)).toThrow();
    expect(() => parse?.({ ...answer, habits: [] })).toThrow();
    expect(() => parse?.({ ...answer, values: ['x'.repeat(51)] })).toThrow();
    expect(() => parse?.({ ...answer, appearance: 'x'.repeat(281) })).toThrow();

    // Bulk sampler personas cost no model call even with a model configured.
    const [sampler] = await enrich.process(samplePersona({ enrichment: null }), fakeContext({ llm, env: { PERSONAHUB_MODE: 'llm' } }));
    expect(calls).toHaveLength(1);
    expect(sampler?.value.enrichment?.modalitiesSource).toBe('SAMPLER');
    // PERSONAHUB_MODALITIES=sampler keeps the model to the draft call: one call per persona, not two.
    const [derived] = await enrich.process(p, fakeContext({ llm, env: { PERSONAHUB_MODE: 'llm', PERSONAHUB_MODALITIES: 'sampler' } }));
    expect(calls).toHaveLength(1);
    expect(derived?.value.enrichment).toMatchObject({ modalitiesSource: 'SAMPLER', modalitiesModel: 'sampler' });
  });
});

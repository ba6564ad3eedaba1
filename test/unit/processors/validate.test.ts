import { describe, expect, it } from 'vitest';
import type { ChatJsonRequest, LlmClient } from '../../../llm/client.ts';
import { hashEmbed } from '../../../llm/embedder.ts';
import { JUDGE_CRITERION_NAMES } from '../../../persona/judge.ts';
import { textHash } from '../../../persona/ids.ts';
import { validate } from '../../../processors/validate/index.ts';
import type { Persona } from '../../../schemas/types.generated.ts';
import { fakeContext, MemoryStore } from '../../helpers/context.ts';
import { samplePersona } from '../../helpers/samples.ts';

describe('validate processor', () => {
  const run = async (store: MemoryStore, persona = samplePersona(), embedded: string[] = []) => {
    const embedder = { model: 'hash-bow-384', embed: async (texts: string[]) => { embedded.push(...texts); return texts.map((t) => hashEmbed(t, 384)); } };
    return validate.process(persona, fakeContext({ embedder, store }));
  };
  /** A store already holding `persona` as indexed, so near-duplicate checks have a neighbour. */
  const storeWith = async (persona: Persona): Promise<MemoryStore> => {
    const store = new MemoryStore();
    await store.upsertPersona(persona);
    return store;
  };

  it('emits a validated persona with its checks', async () => {
    const far = samplePersona({ id: 'far', description: 'Kenji Sato is a 58-year-old beekeeper in Osaka who argues about honey prices at the market every weekend.' });
    const [out] = await run(await storeWith(far));
    expect(out?.event).toBe('validated');
    if (out?.event !== 'validated') return;
    expect(out.value.validation?.checks).toEqual(expect.arrayContaining(['age_in_text', 'unique_text', 'not_near_duplicate']));
  });

  it('re-embeds a repaired text so the stored vector matches the stored text', async () => {
    const embedded: string[] = [];
    const persona = samplePersona({ description: 'Amara Okafor is a 19-year-old pediatric nurse in Lagos who reads every update on vaccination schedules.' });
    const [out] = await run(new MemoryStore(), persona, embedded);
    if (out?.event !== 'validated') throw new Error(`expected validated, got ${out?.event}`);
    expect(out.value.validation?.repaired).toEqual(['description.age']);
    expect(embedded).toEqual([out.value.description]);
    expect(out.value.enrichment?.embedding).toEqual(hashEmbed(out.value.description, 384));
  });

  it('does not re-embed an unrepaired persona', async () => {
    const embedded: string[] = [];
    await run(new MemoryStore(), samplePersona(), embedded);
    expect(embedded).toEqual([]);
  });

  it('rejects an exact duplicate owned by another persona', async () => {
    const store = new MemoryStore();
    const persona = samplePersona();
    await store.claimSignature('text-sha256', textHash(persona.description), 'someone-else');
    const [out] = await run(store, persona);
    expect(out?.event).toBe('rejected');
    if (out?.event !== 'rejected') return;
    expect(out.value.duplicateOf).toBe('someone-else');
    expect(out.value.reasons.map((r) => r.code)).toEqual(['DUPLICATE']);
  });

  it('a re-delivered persona finds its own claim and passes again', async () => {
    const store = new MemoryStore();
    const [first] = await run(store);
    const [again] = await run(store);
    expect([first?.event, again?.event]).toEqual(['validated', 'validated']);
  });

  it('rejects a near-duplicate of a persona passed before, naming it with the scores', async () => {
    const persona = samplePersona();
    // The same words with other punctuation, under another id: no exact-text match, but the same vector and shingles.
    const twin = samplePersona({ id: 'twin', description: persona.description.replace(/\.$/, '!') });
    const store = new MemoryStore();
    expect((await run(store, twin))[0]?.event).toBe('validated');
    const [out] = await run(store, persona);
    expect(out?.event).toBe('rejected');
    if (out?.event !== 'rejected') return;
    expect(out.value.reasons[0]?.code).toBe('NEAR_DUPLICATE');
    expect(out.value.reasons[0]?.message).toMatch(/^near-duplicate of persona twin: cosine 1\.000 ≥ 0\.84 to persona twin, estimated Jaccard 1\.000 ≥ 0\.9$/);
    expect(out.value.duplicateOf).toBe('twin');
    expect(JSON.parse(out.value.personaJson).enrichment.embedding).toBe('[384 floats]'); // left out of the rejected record
    // The persona passed first passes again when redelivered: it owns its claims.
    expect((await run(store, twin))[0]?.event).toBe('validated');
  });

  it('rejects the same persona under another name on its words, whatever the embedding makes of the name', async () => {
    const persona = samplePersona();
    const renamed = samplePersona({ id: 'renamed', name: 'Chiamaka Eze', description: persona.description.replace('Amara Okafor', 'Chiamaka Eze') });
    const store = new MemoryStore();
    expect((await run(store, persona))[0]?.event).toBe('validated');
    const [out] = await run(store, renamed);
    expect(out?.event).toBe('rejected');
    if (out?.event !== 'rejected') return;
    expect(out.value.duplicateOf).toBe(persona.id);
    expect(out.value.reasons[0]?.message).toContain('estimated Jaccard 1.000 ≥ 0.9');
  });

  it('keeps a rejected derived persona\'s edge, pointing at the persona kept in its place', async () => {
    const kept = samplePersona({ id: 'kept' });
    const derived = samplePersona({ id: 'derived', description: kept.description.replace(/\.$/, '!'), lineage: { depth: 1, rootSeedId: 'root', parentPersonaId: 'parent', relationKind: 'colleague' } });
    const store = new MemoryStore();
    await run(store, kept);
    expect((await run(store, derived))[0]?.event).toBe('rejected');
    expect([...store.relations.values()]).toEqual([{ from: 'parent', to: 'kept', kind: 'colleague', depth: 1, createdAt: 42 }]);
  });
});

describe('validate processor with the LLM judge', () => {
  const judgeLlm = (scores: Record<string, number>, calls: ChatJsonRequest<unknown>[]): LlmClient => ({
    async chatJson<T>(req: ChatJsonRequest<T>) {
      calls.push(req as ChatJsonRequest<unknown>);
      const answer = Object.fromEntries(JUDGE_CRITERION_NAMES.map((c) => [c, { score: scores[c] ?? 5, reason: `${c} reason` }]));
      return { value: req.parse(answer), model: 'judge-model', cached: false };
    },
    embed: async () => ({ vectors: [], model: 'x', dimensions: 0 }),
    close: async () => {},
  });
  const judged = (llm: LlmClient, store = new MemoryStore(), env: Record<string, string> = { PERSONAHUB_LLM_JUDGE: 'on' }) =>
    validate.process(samplePersona(), fakeContext({ llm, store, env }));

  it('rejects a persona the judge scores below the threshold, with its reasons, and claims nothing', async () => {
    const calls: ChatJsonRequest<unknown>[] = [];
    const store = new MemoryStore();
    const [out] = await judged(judgeLlm({ specificity: 2 }, calls), store);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.schemaName).toBe('persona_judge');
    expect(calls[0]?.messages.at(-1)?.content).toContain(samplePersona().description);
    if (out?.event !== 'rejected') throw new Error(`expected rejected, got ${out?.event}`);
    expect(out.value.reasons).toEqual([{ code: 'LLM_JUDGE', message: 'specificity scored 2 (below 3): specificity reason' }]);
    expect(out.value.duplicateOf).toBeNull();
    // No text claim was taken, so a later twin of this persona is not turned away as its duplicate.
    expect(await store.claimSignature('text-sha256', textHash(samplePersona().description), 'twin')).toBe('twin');
  });

  it('passes a persona scored at the threshold and records the scores in its checks', async () => {
    const [out] = await judged(judgeLlm({ coherence: 3 }, []));
    if (out?.event !== 'validated') throw new Error(`expected validated, got ${out?.event}`);
    expect(out.value.validation?.checks).toEqual(expect.arrayContaining(['llm_judge', 'llm_judge.coherence=3', 'llm_judge.hygiene=5', 'unique_text']));
  });

  it('follows PERSONAHUB_LLM_JUDGE_THRESHOLD, and makes no call when the judge is off or the checks already rejected', async () => {
    const [lenient] = await judged(judgeLlm({ coherence: 2 }, []), new MemoryStore(), { PERSONAHUB_LLM_JUDGE: 'on', PERSONAHUB_LLM_JUDGE_THRESHOLD: '2' });
    expect(lenient?.event).toBe('validated');
    const calls: ChatJsonRequest<unknown>[] = [];
    const [off] = await judged(judgeLlm({ coherence: 1 }, calls), new MemoryStore(), {});
    expect(off?.event).toBe('validated');
    if (off?.event === 'validated') expect(off.value.validation?.checks).not.toContain('llm_judge');
    const [failed] = await validate.process(samplePersona({ description: 'too short' }), fakeContext({ llm: judgeLlm({}, calls), env: { PERSONAHUB_LLM_JUDGE: 'on' } }));
    expect(failed?.event).toBe('rejected');
    expect(calls).toEqual([]);
  });
});

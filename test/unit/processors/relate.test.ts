import { describe, expect, it } from 'vitest';
import type { ChatJsonRequest, LlmClient } from '../../../llm/client.ts';
import { personaId } from '../../../persona/ids.ts';
import { RELATION_PROMPT_VERSION } from '../../../persona/relations.ts';
import { draft } from '../../../processors/draft/index.ts';
import { relate } from '../../../processors/relate/index.ts';
import type { Persona } from '../../../schemas/types.generated.ts';
import { fakeContext, MemoryStore } from '../../helpers/context.ts';
import { draftAnswer, samplePersona } from '../../helpers/samples.ts';

const lattice = { PERSONAHUB_LATTICE_DEPTH: '2', PERSONAHUB_LATTICE_FANOUT: '2', PERSONAHUB_LATTICE_BUDGET: '3' };

describe('relate processor', () => {
  it('emits one expansion seed per granted kind, within the fan-out and the root\'s budget, and the same seeds when asked again', async () => {
    const store = new MemoryStore();
    const ctx = fakeContext({ env: lattice, store });
    const root = samplePersona();
    const first = await relate.process(root, ctx);
    expect(first.map((o) => o.value.relationKind)).toHaveLength(2);
    for (const o of first) expect(o.value).toMatchObject({ depth: 1, parentPersonaId: root.id, rootSeedId: root.seedId, text: root.description });
    // A redelivery gets the same grant, so the same (keyed) seeds: nothing more.
    expect((await relate.process(root, ctx)).map((o) => o.key)).toEqual(first.map((o) => o.key));
    expect(store.budgets.get(root.seedId)).toBe(2);
    // Two children at depth 1 share what is left of the budget: 1.
    const children = first.map((o, i) => samplePersona({ id: `child${i}`, lineage: { depth: 1, rootSeedId: root.seedId, parentPersonaId: root.id, relationKind: o.value.relationKind } }));
    const grandchildren = [...await relate.process(children[0] as Persona, ctx), ...await relate.process(children[1] as Persona, ctx)];
    expect(grandchildren).toHaveLength(1);
    expect(grandchildren[0]?.value).toMatchObject({ depth: 2, rootSeedId: root.seedId });
    expect(store.budgets.get(root.seedId)).toBe(3);
  });

  it('does not expand a persona at the maximum depth, nor at all when expansion is off', async () => {
    const deep = samplePersona({ lineage: { depth: 2, rootSeedId: 'r', parentPersonaId: 'p', relationKind: 'family' } });
    const store = new MemoryStore();
    expect(await relate.process(deep, fakeContext({ env: lattice, store }))).toEqual([]);
    expect(store.expansions.size).toBe(0);
    expect(await relate.process(samplePersona(), fakeContext({ store }))).toEqual([]);
  });

  it('records a zero grant when no configured kind applies, so observers know the persona is decided', async () => {
    const store = new MemoryStore();
    // A software engineer has no patients.
    const engineer = samplePersona({ occupation: 'software engineer' });
    expect(await relate.process(engineer, fakeContext({ env: { ...lattice, PERSONAHUB_RELATION_KINDS: 'patient' }, store }))).toEqual([]);
    expect(await store.expansionGrants([engineer.id])).toEqual(new Map([[engineer.id, 0]]));
  });
});

describe('draft processor, expansion seeds', () => {
  it('drafts one related persona with lineage, on attributes that fit the relation, with the kind\'s prompt', async () => {
    const store = new MemoryStore();
    const root = samplePersona();
    const [expansion] = await relate.process(root, fakeContext({ env: { ...lattice, PERSONAHUB_RELATION_KINDS: 'family' }, store }));
    if (!expansion) throw new Error('no expansion seed');
    const sampler = await draft.process(expansion.value, fakeContext({ env: { PERSONAHUB_PERSONAS_PER_SEED: '3' } }));
    expect(sampler).toHaveLength(1);
    const persona = sampler[0]?.value;
    expect(persona?.id).toBe(personaId(expansion.value.id, 0));
    expect(persona?.lineage).toEqual({ depth: 1, rootSeedId: root.seedId, parentPersonaId: root.id, relationKind: 'family' });
    expect(persona?.name.endsWith(' Okafor')).toBe(true);
    expect(persona?.description).toContain('a close relative of Amara Okafor');
    expect(persona?.facets?.shortPersona).toContain('a close relative of Amara Okafor');
    expect(persona?.provenance.promptVersion).toBe(RELATION_PROMPT_VERSION);

    const calls: ChatJsonRequest<unknown>[] = [];
    const llm: LlmClient = {
      async chatJson<T>(req: ChatJsonRequest<T>) {
        calls.push(req as ChatJsonRequest<unknown>);
        return { value: req.parse(draftAnswer('A related persona description, long enough to pass the length check of the draft stage.')), model: 'fake-model', cached: false };
      },
      embed: async () => ({ vectors: [], model: 'x', dimensions: 0 }),
      close: async () => {},
    };
    const [written] = await draft.process(expansion.value, fakeContext({ env: { PERSONAHUB_MODE: 'llm' }, llm }));
    expect(written?.value.lineage?.depth).toBe(1);
    expect(written?.value.facets?.seedRelation).toBe(draftAnswer('').relation);
    expect(calls[0]?.messages[1]?.content).toContain(`Other person: ${root.description}`);
    expect(calls[0]?.messages[1]?.content).toContain('Relation: ');
  });
});

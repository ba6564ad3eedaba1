import type { Processor } from '../../runtime/processor.ts';
import { chooseKinds, expansionCount, expansionSeeds, lineageOf } from '../../persona/relations.ts';

/**
 * Persona-to-Persona (PersonaHub §2.2) as a stage of its own: each validated persona below the
 * maximum depth asks its root's budget for up to `latticeFanout` related personas and emits one
 * expansion seed per granted relation kind, which the draft stage turns into a persona like any seed.
 * The grant is kept per parent in the store, so a redelivered or replayed persona gets the same grant
 * and the same (deterministically keyed) seeds: the lattice cannot grow twice from one persona.
 */
export const relate: Processor<'relate'> = {
  stage: 'relate',
  async process(persona, ctx) {
    const { latticeDepth: maxDepth, latticeFanout: perPersona, latticeBudget: perRoot, relationKinds } = ctx.config;
    const lineage = persona.lineage ?? lineageOf({ id: persona.seedId, depth: 0, parentPersonaId: null, rootSeedId: null, relationKind: null });
    if (lineage.depth >= maxDepth) return [];
    const kinds = chooseKinds(persona.id, persona, relationKinds, expansionCount(lineage.depth, perPersona, { maxDepth, perPersona, perRoot }));
    // Asked even for none (no kind applies): the recorded grant, 0, is how an observer knows this
    // persona's expansion is decided (runtime/observer.ts latticeSettled).
    const granted = await ctx.store.reserveExpansion(persona.id, lineage.rootSeedId, kinds.length, perRoot);
    return expansionSeeds({ ...persona, lineage }, kinds.slice(0, granted), ctx.now()).map((seed) => ({ event: 'seed' as const, key: seed.id, value: seed }));
  },
};

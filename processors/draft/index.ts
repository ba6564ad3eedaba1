import { z } from 'zod';
import type { ChatMessage } from '../../core/chat.ts';
import type { Demographics, Facets, Persona, Seed } from '../../schemas/types.generated.ts';
import type { ChatJsonRequest } from '../../llm/client.ts';
import type { Processor, SharedContext } from '../../runtime/processor.ts';
import { personaId } from '../../persona/ids.ts';
import type { SampledAttributes } from '../../persona/attributes.ts';
import { samplePersona, samplerFor } from '../../persona/sampler.ts';
import { buildRelationMessages, composeRelated, composeRelatedFacets, lineageOf, relationOf, RELATION_PROMPT_VERSION, sampleRelatedAttributes } from '../../persona/relations.ts';
import { composeDescription, composeFacets } from '../../persona/compose.ts';
import { buildDraftMessages, DRAFT_MAX_TOKENS, DRAFT_OUTPUT_SCHEMA, PROMPT_VERSION } from '../../persona/prompt.ts';

// A little looser than DRAFT_OUTPUT_SCHEMA: a server that ignores the schema's bounds may overshoot them slightly, which is no reason to dead-letter the persona.
const facet = z.string().trim().min(10).max(400);
const draftOutput = z.object({
  description: z.string().trim().min(40).max(600), shortPersona: facet, professional: facet, family: facet, leisure: facet, relation: facet,
});
type DraftOutput = z.infer<typeof draftOutput>;

/** One persona to draft: its attributes, the prompt a model gets, and the text sampler mode writes instead. */
export interface Plan {
  index: number;
  attributes: SampledAttributes;
  messages: () => ChatMessage[];
  compose: (id: string) => string;
  /** Sampler mode's written facets. */
  composeFacets: (id: string) => Facets;
  promptVersion: string;
  /** The demographics drawn from a sampler profile, with that profile; null for a related persona (sampled from its parent). */
  demographics: Demographics | null;
  profile: { name: string; version: string } | null;
}

/**
 * What the stage drafts from one seed, in order. Exported with draftRequest so that the llm-e2e benchmark's
 * bare model loop sends the very requests this stage sends.
 */
export function draftPlans(seed: Seed, config: Pick<SharedContext['config'], 'personasPerSeed' | 'profile'>): Plan[] {
  const relation = relationOf(seed);
  return relation
    ? [((attributes) => ({
      index: 0, attributes, promptVersion: RELATION_PROMPT_VERSION, demographics: null, profile: null,
      messages: () => buildRelationMessages(attributes, relation.kind, relation.parent, seed.text),
      compose: (id: string) => composeRelated(attributes, relation.kind, relation.parent, id),
      composeFacets: (id: string) => composeRelatedFacets(attributes, relation.kind, relation.parent, id),
    }))(sampleRelatedAttributes(relation.parentId, relation.parent, relation.kind, 0))]
    : Array.from({ length: config.personasPerSeed }, (_, index) => {
      // A generation job's seed names its profile and filter; any other seed draws from the configured profile.
      const sampler = samplerFor(seed.target?.profile ?? config.profile, seed.target?.where ?? '');
      const { attributes, demographics } = samplePersona(sampler, seed.id, index);
      return {
        index, attributes, promptVersion: PROMPT_VERSION, demographics, profile: { name: sampler.profile.name, version: sampler.profile.version },
        messages: () => buildDraftMessages(attributes, seed.text, demographics),
        compose: (id: string) => composeDescription(attributes, seed.text, id),
        composeFacets: (id: string) => composeFacets(attributes, demographics, seed.text, id),
      };
    });
}

/** The chat request for one plan of persona `id`. */
export function draftRequest(plan: Plan, id: string): ChatJsonRequest<DraftOutput> {
  return {
    messages: plan.messages(),
    schemaName: 'persona_draft',
    schema: DRAFT_OUTPUT_SCHEMA,
    parse: (v) => draftOutput.parse(v),
    maxTokens: DRAFT_MAX_TOKENS,
    temperature: 0.7,
    // The seed makes sampling reproducible per persona, which keeps the response cache effective.
    seed: Number.parseInt(id.slice(0, 8), 16),
  };
}

/**
 * Text-to-Persona: a source seed becomes `personasPerSeed` drafts, grounded on sampled attributes.
 * Persona-to-Persona: an expansion seed (from the relate stage) becomes one draft, a person related to
 * its parent, on attributes sampled to fit the relation and with the relation kind's prompt.
 */
export const draft: Processor<'draft'> = {
  stage: 'draft',
  async process(seed, ctx) {
    const plans = draftPlans(seed, ctx.config);
    const outputs = [];
    for (const plan of plans) {
      const { index, attributes, compose, composeFacets: facetsOf, promptVersion, demographics, profile } = plan;
      const id = personaId(seed.id, index);
      let description: string;
      let facets: Facets;
      let model: string;
      if (ctx.config.mode === 'llm' && ctx.llm) {
        const result = await ctx.llm.chatJson(draftRequest(plan, id));
        const { description: text, relation: seedRelation, ...written } = result.value;
        description = text;
        facets = { ...written, seedRelation };
        model = result.model;
      } else {
        description = compose(id);
        facets = facetsOf(id);
        model = 'sampler';
      }
      const persona: Persona = {
        id, version: 1, seedId: seed.id, generationIndex: index,
        name: attributes.name, age: attributes.age, occupation: attributes.occupation, locale: attributes.locale,
        traits: attributes.traits, description, seedRelation: attributes.seedRelation,
        provenance: { mode: model === 'sampler' ? 'SAMPLER' : 'LLM', model, promptVersion, createdAt: ctx.now(), samplerProfile: profile?.name ?? null, samplerProfileVersion: profile?.version ?? null },
        lineage: lineageOf(seed), demographics, facets, enrichment: null, validation: null,
      };
      outputs.push({ event: 'draft' as const, key: id, value: persona });
    }
    return outputs;
  },
};

import { z } from 'zod';
import type { Persona } from '../../schemas/types.generated.ts';
import type { Processor } from '../../runtime/processor.ts';
import { personaId } from '../../persona/ids.ts';
import { samplePersona, samplerFor } from '../../persona/sampler.ts';
import { lineageOf } from '../../persona/relations.ts';
import { composeDescription } from '../../persona/compose.ts';
import { buildDraftMessages, DRAFT_OUTPUT_SCHEMA, PROMPT_VERSION } from '../../persona/prompt.ts';

const draftOutput = z.object({ description: z.string().trim().min(40).max(600) });

/** Text-to-Persona: each seed becomes `personasPerSeed` drafts, grounded on sampled attributes. */
export const draft: Processor<'draft'> = {
  stage: 'draft',
  async process(seed, ctx) {
    const outputs = [];
    for (let index = 0; index < ctx.config.personasPerSeed; index += 1) {
      const id = personaId(seed.id, index);
      // A generation job's seed names its profile and filter; any other seed draws from the configured profile.
      const sampler = samplerFor(seed.target?.profile ?? ctx.config.profile, seed.target?.where ?? '');
      const { attributes, demographics } = samplePersona(sampler, seed.id, index);
      let description: string;
      let model: string;
      if (ctx.config.mode === 'llm' && ctx.llm) {
        const result = await ctx.llm.chatJson({
          messages: buildDraftMessages(attributes, seed.text),
          schemaName: 'persona_draft',
          schema: DRAFT_OUTPUT_SCHEMA,
          parse: (v) => draftOutput.parse(v),
          maxTokens: 160,
          temperature: 0.7,
          // The seed makes sampling reproducible per persona, which keeps the response cache effective.
          seed: Number.parseInt(id.slice(0, 8), 16),
        });
        description = result.value.description;
        model = result.model;
      } else {
        description = composeDescription(attributes, seed.text, id);
        model = 'sampler';
      }
      const persona: Persona = {
        id, version: 1, seedId: seed.id, generationIndex: index,
        name: attributes.name, age: attributes.age, occupation: attributes.occupation, locale: attributes.locale,
        traits: attributes.traits, description, seedRelation: attributes.seedRelation,
        provenance: { mode: model === 'sampler' ? 'SAMPLER' : 'LLM', model, promptVersion: PROMPT_VERSION, createdAt: ctx.now(), samplerProfile: sampler.profile.name, samplerProfileVersion: sampler.profile.version },
        lineage: lineageOf(seed), demographics, enrichment: null, validation: null,
      };
      outputs.push({ event: 'draft' as const, key: id, value: persona });
    }
    return outputs;
  },
};

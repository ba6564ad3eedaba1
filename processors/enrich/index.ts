import { z } from 'zod';
import type { Processor } from '../../runtime/processor.ts';
import type { LlmClient } from '../../llm/client.ts';
import type { Persona } from '../../schemas/types.generated.ts';
import { PersonaHubError } from '../../core/errors.ts';
import { modalitiesFor, type Modalities } from '../../persona/modalities.ts';
import { buildModalitiesMessages, MODALITIES_MAX_TOKENS, MODALITIES_OUTPUT_SCHEMA, toLastSentence, type ModalitiesOutput } from '../../persona/modalities-prompt.ts';

// A little looser than MODALITIES_OUTPUT_SCHEMA, as the draft stage's parser is: a server that ignores the
// schema's bounds may overshoot them slightly; an answer missing a field or far off its bounds fails here.
const phrase = (max: number) => z.string().trim().min(2).max(max);
const phrases = (max: number) => z.array(phrase(max)).min(1).max(5);
const modalitiesOutput: z.ZodType<ModalitiesOutput> = z.object({
  backstory: phrase(450), speakingStyle: phrase(220), habits: phrases(100), goals: phrases(120), values: phrases(50),
  mediaDiet: phrases(80), appearance: phrase(280), imagePrompt: phrase(330), settings: phrases(80), routines: phrases(220),
});

/**
 * The model writes the modalities in one structured call; life stage and Big Five stay derived from age
 * and traits. A malformed answer is asked for again by the client (other seeds, then PH_LLM_BAD_OUTPUT,
 * which is permanent, so the runner dead-letters the persona); an unreachable endpoint is transient and
 * retried like the draft stage's calls.
 */
async function written(p: Persona, llm: LlmClient): Promise<Modalities> {
  const { value, model } = await llm.chatJson({
    messages: buildModalitiesMessages(p),
    schemaName: 'persona_modalities',
    schema: MODALITIES_OUTPUT_SCHEMA,
    parse: (v) => modalitiesOutput.parse(v),
    maxTokens: MODALITIES_MAX_TOKENS,
    temperature: 0.7,
    // Reproducible per persona (and version), which keeps the response cache effective.
    seed: Number.parseInt(p.id.slice(8, 16), 16) + p.version,
  });
  const { lifeStage, bigFive, bigFiveLabels } = modalitiesFor(p);
  // The prose fields reach their bounds mid-sentence at times (the server's grammar closes the string there).
  const prose = { backstory: toLastSentence(value.backstory), speakingStyle: toLastSentence(value.speakingStyle), appearance: toLastSentence(value.appearance), routines: value.routines.map(toLastSentence) };
  return { lifeStage, bigFive, bigFiveLabels, ...value, ...prose, modalitiesSource: 'LLM', modalitiesModel: model };
}

/**
 * Adds the modalities and the embedding of the persona text. A persona a model wrote gets modalities a
 * model wrote, when one is configured (and PERSONAHUB_MODALITIES is llm); a sampler persona (bulk mode)
 * gets the deterministic derivation, labelled as the sampler's.
 */
export const enrich: Processor<'enrich'> = {
  stage: 'enrich',
  async process(persona, ctx) {
    const [embedding] = await ctx.embedder.embed([persona.description]);
    if (!embedding) throw new PersonaHubError('PH_ENRICH_NO_EMBEDDING', `embedder ${ctx.embedder.model} returned no vector`, { transient: true });
    const { mode, modalities: by } = ctx.config;
    const modalities = ctx.llm && mode === 'llm' && by === 'llm' && persona.provenance.mode === 'LLM' ? await written(persona, ctx.llm) : modalitiesFor(persona);
    const enriched = {
      ...persona,
      enrichment: { ...modalities, embedding, embeddingModel: ctx.embedder.model, enrichedAt: ctx.now() },
    };
    return [{ event: 'enriched', key: persona.id, value: enriched }];
  },
};

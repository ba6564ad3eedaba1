import { z } from 'zod';
import type { LlmClient } from '../../llm/client.ts';
import type { Persona } from '../../schemas/types.generated.ts';
import { buildJudgeMessages, JUDGE_MAX_TOKENS, JUDGE_OUTPUT_SCHEMA, JUDGE_REASON_MAX, judgeVerdict, type JudgeAnswer, type JudgeVerdict } from '../../persona/judge.ts';

// A little looser on the reason than JUDGE_OUTPUT_SCHEMA, as the other stages' parsers are: a server that
// ignores the bounds may overshoot a line slightly; a score outside 1-5 or a missing criterion never parses.
const criterionScore = z.object({ score: z.number().int().min(1).max(5), reason: z.string().trim().min(1).max(JUDGE_REASON_MAX + 60) });
export const judgeAnswer: z.ZodType<JudgeAnswer> = z.object({
  consistency: criterionScore, specificity: criterionScore, hygiene: criterionScore, coherence: criterionScore, seed_relation: criterionScore,
});

/**
 * One judge call (the validate stage, and `personahub check --judge`). A malformed answer is asked for again
 * by the client and then fails as PH_LLM_BAD_OUTPUT, as the other structured calls do: an unjudged persona is
 * neither passed nor rejected on a guess.
 */
export async function judgePersona(llm: LlmClient, persona: Persona, threshold: number, seedText?: string): Promise<JudgeVerdict & { model: string }> {
  const { value, model } = await llm.chatJson({
    messages: buildJudgeMessages(persona, seedText),
    schemaName: 'persona_judge',
    schema: JUDGE_OUTPUT_SCHEMA,
    parse: (v) => judgeAnswer.parse(v),
    maxTokens: JUDGE_MAX_TOKENS,
    // A judge, not a writer: the same persona gets the same scores, and a re-delivery hits the response cache.
    temperature: 0,
    seed: Number.parseInt(persona.id.slice(8, 16), 16) + persona.version,
  });
  return { ...judgeVerdict(value, threshold), model };
}

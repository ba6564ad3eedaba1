import type { ChatMessage } from '../core/chat.ts';
import type { Persona } from '../schemas/types.generated.ts';
import type { Finding } from './checks/codes.ts';

/**
 * The optional LLM judge (PERSONAHUB_LLM_JUDGE): a rubric a strong model scores a persona on, after the
 * deterministic checks have passed. The checks catch what patterns can; the judge is for what only a
 * reader notices (a generic, interchangeable person; a text whose parts do not add up).
 */
export const JUDGE_PROMPT_VERSION = 'judge-v1';

/** The rubric's criteria, in the order the prompt lists them and the answer carries them. */
export const JUDGE_CRITERIA = {
  consistency: 'consistent with the given attributes (name, age, sex, occupation, place, traits): nothing contradicts them',
  specificity: 'a specific and believable person, not a generic or interchangeable one',
  hygiene: 'no leaked instructions, labels, JSON or text copied from the prompt or the seed',
  coherence: 'internally coherent: the sentences and facets agree with one another and with a plausible life',
  seed_relation: 'relates to the seed as stated: the stated relation is plausible and the text reflects it',
} as const;

export type JudgeCriterion = keyof typeof JUDGE_CRITERIA;
export const JUDGE_CRITERION_NAMES = Object.keys(JUDGE_CRITERIA) as JudgeCriterion[];

export interface CriterionScore {
  score: number;
  reason: string;
}

export type JudgeAnswer = Record<JudgeCriterion, CriterionScore>;

/** The schema's bound on a reason line, which the parser (processors/validate/judge.ts) loosens a little. */
export const JUDGE_REASON_MAX = 160;

/** Each criterion a 1-5 integer and one short line: the whole answer stays under about 1,100 characters. */
export const JUDGE_OUTPUT_SCHEMA = {
  type: 'object',
  properties: Object.fromEntries(JUDGE_CRITERION_NAMES.map((c) => [c, {
    type: 'object',
    properties: { score: { type: 'integer', minimum: 1, maximum: 5 }, reason: { type: 'string', minLength: 3, maxLength: JUDGE_REASON_MAX } },
    required: ['score', 'reason'],
    additionalProperties: false,
  }])),
  required: JUDGE_CRITERION_NAMES,
  additionalProperties: false,
} as const;

/** Room for the longest answer the schema allows (about 1,100 characters, some 300 tokens) and the JSON around it. */
export const JUDGE_MAX_TOKENS = 400;

const SYSTEM = [
  'You are a strict reviewer of synthetic persona descriptions.',
  'Score the persona on each criterion from 1 (fails it) to 5 (fully meets it), with one short line saying why.',
  'Judge only what is written; do not rewrite the persona. Answer in JSON.',
].join(' ');

/**
 * The rubric prompt: the persona's attributes and text, the seed (its text when known, else the stated
 * relation alone) and the criteria. Everything from the persona is quoted as data, after the instructions.
 */
export function buildJudgeMessages(p: Persona, seedText?: string): ChatMessage[] {
  const d = p.demographics;
  const attributes = [
    `Name: ${p.name}`, `Age: ${p.age}`, ...(d ? [`Sex: ${d.sex}`] : []), `Occupation: ${p.occupation}`, `Locale: ${p.locale}`,
    `Traits: ${p.traits.join(', ')}`, `Relation to the seed: ${p.seedRelation}`,
  ];
  const facets = p.facets ? [`Short persona: ${p.facets.shortPersona}`, `Work: ${p.facets.professional}`, `Family: ${p.facets.family}`, `Leisure: ${p.facets.leisure}`, `How they relate to the seed: ${p.facets.seedRelation}`] : [];
  const criteria = JUDGE_CRITERION_NAMES.map((c) => `- ${c}: ${JUDGE_CRITERIA[c]}`);
  const user = [
    'Criteria:', ...criteria, '',
    'Attributes:', ...attributes, '',
    ...(seedText === undefined ? [] : ['Seed text:', seedText, '']),
    'Description:', p.description,
    ...(facets.length > 0 ? ['', 'Facets:', ...facets] : []),
  ].join('\n');
  return [{ role: 'system', content: SYSTEM }, { role: 'user', content: user }];
}

export interface JudgeVerdict {
  passed: boolean;
  /** One LLM_JUDGE finding per criterion scored below the threshold. */
  reasons: Finding[];
  /** `llm_judge` and each criterion's score, for the validation record's checks. */
  checks: string[];
}

/**
 * Pass when every criterion scores at least `threshold` (1-5). The minimum, not the mean: the criteria are
 * not interchangeable, so a leaked instruction (hygiene 1) is a defect that four fives elsewhere do not make
 * up for; a mean would pass it at 4.2.
 */
export function judgeVerdict(answer: JudgeAnswer, threshold: number): JudgeVerdict {
  const low = JUDGE_CRITERION_NAMES.filter((c) => answer[c].score < threshold);
  return {
    passed: low.length === 0,
    reasons: low.map((c) => ({ code: 'LLM_JUDGE', message: `${c} scored ${answer[c].score} (below ${threshold}): ${answer[c].reason}` })),
    checks: ['llm_judge', ...JUDGE_CRITERION_NAMES.map((c) => `llm_judge.${c}=${answer[c].score}`)],
  };
}

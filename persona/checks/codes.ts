/**
 * Every reason the validator can give, with what it means. Codes are stable (the rejected topic, the
 * metrics and `personahub check` carry them); the table in docs/QUALITY.md lists the same ones, and a
 * unit test keeps the two equal.
 */
export const REASON_CODES = {
  NAME_EMPTY: 'the name attribute is empty',
  AGE_OUT_OF_RANGE: 'the age attribute is outside 16-100',
  NO_TRAITS: 'no traits were sampled',
  DESCRIPTION_TOO_SHORT: 'the description has fewer than 40 characters',
  DESCRIPTION_TOO_LONG: 'the description is longer than PERSONAHUB_MAX_DESCRIPTION_CHARS',
  SPECIAL_TOKEN: 'a model\'s special or control token (<|im_end|>, <start_of_image>, </s>) or a control character',
  PROMPT_LEAK: 'prompt or instruction text leaked into the prose ("the text", "as an AI", JSON fragments, field labels)',
  FOREIGN_SCRIPT: 'letters of a script other than Latin (the model drifted into another language)',
  PRONOUN_MISMATCH: 'the pronouns for the persona contradict its recorded sex',
  PRONOUN_SWITCH: 'the pronouns for the persona switch between he and she',
  NAME_NOT_IN_TEXT: 'the description never names the persona',
  NAME_CONTRADICTION: 'the persona is named with another first name or surname',
  AGE_CONTRADICTION: 'the text states another age for the persona',
  AGE_OCCUPATION: 'the age is implausible for the occupation',
  OCCUPATION_CONTRADICTION: 'the text gives the persona another job',
  LOCALE_CONTRADICTION: 'the text places the persona in another city or country',
  TRAIT_CONTRADICTION: 'the text or the traits contradict a sampled trait (impatient for a patient persona)',
  CAREER_SPAN: 'a time span or start year that the age makes impossible (in nursing for 64 years at 64)',
  REPETITION: 'a sentence or phrase repeated, word for word or nearly',
  TRUNCATED: 'the description ends mid-sentence and is too short to cut back',
  FEW_SHOT_ECHO: 'phrases copied from the prompt\'s few-shot examples',
  SEED_COPY: 'a long run of words copied from the seed text',
  SEED_EVENT_AS_OWN: 'the persona reads the seed, yet the seed\'s event is told as the persona\'s own act',
  NOT_ENRICHED: 'the persona has no enrichment section',
  LIFE_STAGE_MISMATCH: 'the life stage does not fit the age',
  EMBEDDING_DIMENSIONS: 'the embedding has the wrong number of dimensions',
  EMBEDDING_INVALID: 'the embedding has non-finite values or zero norm',
  BIG_FIVE_RANGE: 'a Big Five score is outside 0-1',
  LLM_JUDGE: 'the optional LLM judge (PERSONAHUB_LLM_JUDGE) scored a rubric criterion below PERSONAHUB_LLM_JUDGE_THRESHOLD',
} as const;

export type ReasonCode = keyof typeof REASON_CODES;

export interface Finding {
  code: ReasonCode;
  message: string;
}

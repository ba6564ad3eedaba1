import type { Persona } from '../../schemas/types.generated.ts';
import type { Finding } from './codes.ts';

/** What every check reads: the persona, and what the stage or the user knows besides it. */
export interface CheckInput {
  persona: Persona;
  /** The seed text the persona was drafted from, when known (the copy and seed-event checks need it). */
  seedText: string | undefined;
  /** PERSONAHUB_MAX_DESCRIPTION_CHARS. */
  maxDescriptionChars: number;
}

/** A check is a pure function of its input: no clock, no I/O, the same findings every time. */
export type Check = (input: CheckInput) => Finding[];

/** Sentences with their trailing punctuation and space, so joining them gives the text back. */
export function sentencesOf(text: string): string[] {
  return text.match(/[^.!?]+(?:[.!?]+["')\]]?\s*|$)/g)?.filter((s) => s.trim() !== '') ?? [text];
}

/** Lower-case words (letters, digits, inner apostrophes and hyphens), for n-gram comparisons. */
export function wordsOf(text: string): string[] {
  return text.normalize('NFKC').toLowerCase().replace(/[\u2018\u2019]/g, "'").match(/[\p{L}\p{N}]+(?:['-][\p{L}\p{N}]+)*/gu) ?? [];
}

export function ngrams(words: readonly string[], n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i + n <= words.length; i += 1) out.push(words.slice(i, i + n).join(' '));
  return out;
}

export const escapeRegExp = (x: string): string => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The persona's sex when the record carries its demographics (records from before profiles have none). */
export function recordedSex(persona: Persona): 'female' | 'male' | undefined {
  const sex = persona.demographics?.sex.toLowerCase();
  return sex === 'female' || sex === 'male' ? sex : undefined;
}

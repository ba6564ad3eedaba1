import { RELATION_VERBS } from '../prompt.ts';
import type { Finding } from './codes.ts';
import { escapeRegExp, type CheckInput } from './input.ts';

/**
 * Text hygiene: what a model emits that is not prose about a person. Its own special tokens
 * (a chat template's turn markers, a multimodal model's image token), control characters,
 * the prompt's wording echoed back, and other scripts.
 */

const SPECIAL_TOKENS = [
  /<\|[^|<>\s]{1,40}\|>/, // ChatML and friends: <|im_end|>, <|endoftext|>, <|eot_id|>
  /<\/?(?:s|bos|eos|pad|unk|mask|think|start_of_turn|end_of_turn|start_of_image|end_of_image|image|img|sep|cls)>/i,
  /\[\/?(?:INST|SYS)\]|<<\/?SYS>>/,
];
// Control characters, a zero-width space or byte-order mark, and U+FFFD (a token cut inside a UTF-8 sequence); tabs and newlines are whitespace.
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u200b\u2028\u2029\ufeff\ufffd]/;

export function specialTokens({ persona }: CheckInput): Finding[] {
  const d = persona.description;
  const token = SPECIAL_TOKENS.map((p) => p.exec(d)?.[0]).find((m) => m !== undefined);
  if (token !== undefined) return [{ code: 'SPECIAL_TOKEN', message: `special token ${JSON.stringify(token)} in the description` }];
  const control = CONTROL.exec(d);
  if (control) return [{ code: 'SPECIAL_TOKEN', message: `control character U+${(control[0].codePointAt(0) ?? 0).toString(16).padStart(4, '0').toUpperCase()} in the description` }];
  return [];
}

/** The prompt calls the seed "the text" and labels the attributes; prose about a person does neither. */
const LEAKS: readonly (readonly [RegExp, string])[] = [
  [/\b(?:the|this|that|above|given|provided|following|original|seed) (?:text|passage|prompt|excerpt|snippet)\b(?! messages?\b)/i, 'refers to the prompt\'s text'],
  [/\bthe (?:kind of )?person described\b/i, 'repeats the prompt\'s "the kind of person described in"'],
  [/\bas an? (?:AI|language model|assistant|chatbot)\b|\b(?:large )?language model\b|\bI(?:'m| am) (?:sorry|unable)\b/i, 'speaks as the assistant'],
  // The prompt's labels are capitalized ("Traits: ..."); prose may say "her traits: devout, frugal".
  [/"(?:description|name|age|occupation|locale|traits|relation|persona)"\s*:|\b(?:Description|Name|Age|Occupation|Locale|Traits|Relation|Text|Persona):\s/, 'carries a field label or JSON key'],
  [/[{}]|\\[n"t]/, 'carries JSON syntax'],
  [/\bpersonas?\b/i, 'calls the person a persona'],
  [new RegExp(`\\bsomeone who (?:${Object.values(RELATION_VERBS).map(escapeRegExp).join('|')})\\b`, 'i'), 'repeats the relation line of the prompt'],
];

export function promptLeak({ persona }: CheckInput): Finding[] {
  for (const [pattern, what] of LEAKS) {
    const m = pattern.exec(persona.description);
    if (m) return [{ code: 'PROMPT_LEAK', message: `the description ${what}: ${JSON.stringify(m[0])}` }];
  }
  return [];
}

/** Any letter outside the Latin script (accented Latin, as in "São Paulo", is Latin). */
const NON_LATIN = /(?=\p{L})\P{Script=Latin}/u;

export function foreignScript({ persona }: CheckInput): Finding[] {
  const m = NON_LATIN.exec(persona.description);
  return m ? [{ code: 'FOREIGN_SCRIPT', message: `letter ${JSON.stringify(m[0])} of another script at character ${m.index}` }] : [];
}

export function descriptionLength({ persona, maxDescriptionChars }: CheckInput): Finding[] {
  const n = persona.description.length;
  if (n < 40) return [{ code: 'DESCRIPTION_TOO_SHORT', message: `description has ${n} characters, at least 40 needed` }];
  if (n > maxDescriptionChars) return [{ code: 'DESCRIPTION_TOO_LONG', message: `description has ${n} characters, more than ${maxDescriptionChars} (PERSONAHUB_MAX_DESCRIPTION_CHARS)` }];
  return [];
}

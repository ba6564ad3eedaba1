import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Persona, Seed } from '../../schemas/types.generated.ts';
import { sampleName } from '../../persona/attributes.ts';
import { checkPersona } from '../../persona/coherence.ts';
import { composeDescription } from '../../persona/compose.ts';
import { personaId } from '../../persona/ids.ts';
import { samplePersona, samplerFor } from '../../persona/sampler.ts';
import { parseSeedLines } from '../../persona/seeds.ts';
import { pick, rng } from '../../persona/text.ts';

/**
 * A planted-duplicates set for the near-duplicate dedup (issue 15): distinct personas, and for a known
 * share of them near-duplicates of the kinds the issue lists, each labelled with the persona it
 * duplicates. Pure and seeded: the same options give the same set, so a figure measured on it can be
 * measured again.
 *
 * The distinct personas are different people: real model outputs (the coherent ones of
 * test/fixtures/draft-outputs.jsonl, one per seed, since both models wrote the same sampled person for
 * a seed) and sampler personas (persona/sampler.ts over the global profile, written by
 * composeDescription for a seed text of data/seeds.jsonl, with a sentence from their demographics),
 * with unique names and no two sharing occupation and city. Every persona of the set, duplicates
 * included, passes the validator's coherence checks unrepaired (persona/coherence.ts), so what the
 * validate stage decides about it is the dedup's decision alone. Personas carry no enrichment: the
 * embedding is the embedder's to compute.
 */
export type DuplicateKind = 'paraphrase' | 'reorder' | 'edit' | 'rename';
export const DUPLICATE_KINDS: readonly DuplicateKind[] = ['paraphrase', 'reorder', 'edit', 'rename'];

export type PlantedLabel = { kind: 'distinct'; source: 'model' | 'sampler' } | { kind: DuplicateKind; duplicateOf: string };

export interface PlantedPersona {
  persona: Persona;
  label: PlantedLabel;
}

export interface PlantedSet {
  distinct: PlantedPersona[];
  /** In the order the kinds take turns, each naming a persona of `distinct`. */
  duplicates: PlantedPersona[];
}

export interface PlantOptions {
  distinct: number;
  duplicates: number;
  /** Seed of every random choice. */
  seed?: string;
}

const ROOT = resolve(import.meta.dirname, '..', '..');
/** PERSONAHUB_MAX_DESCRIPTION_CHARS's default: the set is for the default validator. */
const MAX_DESCRIPTION_CHARS = 2000;

/** Passes the text checks as written: neither rejected nor repaired (a repair would change the text under test). */
function coherent(p: Persona): boolean {
  const r = checkPersona(p, { maxDescriptionChars: MAX_DESCRIPTION_CHARS, requireEnrichment: false });
  return r.reasons.length === 0 && r.repaired.length === 0;
}
const SAMPLER_PROFILE = 'global';

interface FixtureRow {
  model?: string;
  persona?: Persona;
  defects?: string[];
}

/** The coherent model outputs of the validator's fixture set, one per seed. */
function modelPersonas(): Persona[] {
  const rows = readFileSync(resolve(ROOT, 'test/fixtures/draft-outputs.jsonl'), 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as FixtureRow);
  const bySeed = new Map<string, Persona>();
  for (const row of rows) {
    const p = row.persona;
    if (!p || (row.defects ?? []).length > 0 || bySeed.has(p.seedId)) continue;
    const persona: Persona = { ...p, demographics: p.demographics ?? null, enrichment: null, validation: null };
    if (coherent(persona)) bySeed.set(p.seedId, persona);
  }
  return [...bySeed.values()];
}

function seedTexts(): Seed[] {
  const lines = readFileSync(resolve(ROOT, 'data/seeds.jsonl'), 'utf8').split('\n');
  return parseSeedLines(lines, { source: 'planted', format: 'jsonl', maxChars: 4000, now: 0 }).seeds;
}

const list = (items: readonly string[]): string => (items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} and ${items.at(-1) ?? ''}`);

/** A second sentence from the demographics, so sampler personas differ in more than the template's slots. */
function lifeSentence(random: () => number, d: NonNullable<Persona['demographics']>): string {
  const hobbies = list(d.hobbies.slice(0, 2));
  const skills = list(d.skills.slice(0, 2));
  const languages = list(d.languages);
  return pick(random, [
    `Off the clock they spend their time on ${hobbies}, speak ${languages}, and hope to ${d.careerGoal} in the next few years.`,
    `Known for ${skills}, they speak ${languages} and would like to ${d.careerGoal} one day; weekends go to ${hobbies}.`,
    `Their free hours go to ${hobbies}; at work they lean on ${skills}, and their plan is to ${d.careerGoal}.`,
  ]);
}

function samplerPersonas(count: number, seed: string, taken: Set<string>): Persona[] {
  const sampler = samplerFor(SAMPLER_PROFILE);
  const seeds = seedTexts();
  const out: Persona[] = [];
  const jobsInCities = new Set<string>();
  for (let draw = 0; out.length < count; draw += 1) {
    if (draw > count * 50) throw new Error(`planted duplicates: could not draw ${count} distinct sampler personas`);
    const s = seeds[draw % seeds.length] as Seed;
    const generationIndex = 1000 + Math.floor(draw / seeds.length);
    const { attributes: a, demographics: d } = samplePersona(sampler, `${seed}:${s.id}`, generationIndex);
    const jobInCity = `${a.occupation}@${a.locale}`;
    // Unique names and no shared job in a shared city: two such personas are different people, not a renamed one.
    if (taken.has(a.name) || jobsInCities.has(jobInCity) || a.traits.length < 3) continue;
    const id = personaId(s.id, generationIndex);
    const description = `${composeDescription(a, s.text, id)} ${lifeSentence(rng(`life:${id}`), d)}`;
    const persona: Persona = {
      id, version: 1, seedId: s.id, generationIndex, ...a, description,
      provenance: { mode: 'SAMPLER', model: 'sampler', promptVersion: 'draft-v2', createdAt: 0, samplerProfile: SAMPLER_PROFILE, samplerProfileVersion: sampler.profile.version },
      demographics: d, facets: null,
      lineage: { depth: 0, rootSeedId: s.id, parentPersonaId: null, relationKind: null },
      enrichment: null, validation: null,
    };
    if (!coherent(persona)) continue;
    taken.add(a.name);
    jobsInCities.add(jobInCity);
    out.push(persona);
  }
  return out;
}

// ---- the rewrites: each returns the new text, or undefined where it does not apply ----

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const capital = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);
const lower = (s: string): string => s.charAt(0).toLowerCase() + s.slice(1);

function sentences(text: string): string[] {
  return (text.match(/[^.!?]+[.!?]+(?=\s|$)/g) ?? [text]).map((s) => s.trim()).filter((s) => s !== '');
}

/** Words and phrases with a same-meaning substitute (first match wins per entry; case kept at the start). */
const SYNONYMS: readonly (readonly [RegExp, string])[] = [
  [/\bwould read a piece about\b/g, 'would pick up an article on'],
  [/\bcould have written a piece about\b/g, 'might have been the author of an article on'],
  [/\bwould love a piece about\b/g, 'would be delighted by an article on'],
  [/\bwould argue against a piece about\b/g, 'would dispute an article on'],
  [/\bis the kind of person described in a piece about\b/g, 'fits the portrait drawn in an article on'],
  [/\bbring that outlook to their work\b/g, 'carry that attitude into their job'],
  [/\bconversations about\b/g, 'discussions of'],
  [/\bworks in\b/g, 'is employed in'],
  [/\bbased in\b/g, 'living in'],
  [/\bspend their time on\b/g, 'devote their hours to'],
  [/\bfree hours go\b/g, 'spare time goes'],
  [/\bhope to\b/g, 'aim to'],
  [/\bwould like to\b/g, 'wish to'],
  [/\bone day\b/g, 'someday'],
  [/\bweekends go to\b/g, 'Saturdays and Sundays are for'],
  [/\bat work they lean on\b/g, 'on the job they rely on'],
  [/\btheir plan is to\b/g, 'they intend to'],
  [/\bOff the clock\b/g, 'Outside working hours'],
  [/\bKnown for\b/g, 'Recognised for'],
  [/\boften\b/g, 'frequently'],
  [/\benjoys\b/g, 'likes'],
  [/\bbelieves\b/g, 'thinks'],
  [/\bhelps\b/g, 'assists'],
  [/\bhelp\b/g, 'assist'],
  [/\bspends\b/g, 'passes'],
  [/\bpassionate about\b/g, 'devoted to'],
  [/\bcommunity\b/g, 'neighbourhood'],
  [/\bworks as\b/g, 'is employed as'],
  [/\bmanages\b/g, 'runs'],
  [/\bbig\b/g, 'large'],
  [/\bsmall\b/g, 'little'],
  [/\bknows\b/g, 'is familiar with'],
  [/\bwants to\b/g, 'hopes to'],
  [/\bbecause\b/g, 'since'],
  [/\balso\b/g, 'as well'],
  [/\bexpressing\b/g, 'voicing'],
  [/\bopinions\b/g, 'views'],
  [/\bcares about\b/g, 'is concerned with'],
  [/\bproblems\b/g, 'issues'],
  [/\bstarted\b/g, 'began'],
  [/\bfamily\b/g, 'relatives'],
  [/\bkids\b/g, 'children'],
  [/\bshop\b/g, 'store'],
  [/\bhouse\b/g, 'home'],
];

/** Active to passive for the verbs the personas use, with their participles. */
const PARTICIPLES: Record<string, string> = {
  manages: 'managed', writes: 'written', teaches: 'taught', raises: 'raised', runs: 'run', leads: 'led', owns: 'owned',
  studies: 'studied', reads: 'read', builds: 'built', designs: 'designed', makes: 'made', loves: 'loved', enjoys: 'enjoyed',
  follows: 'followed', organizes: 'organized', organises: 'organised', uses: 'used', tracks: 'tracked', keeps: 'kept', shares: 'shared',
  spends: 'spent', watches: 'watched', coaches: 'coached', grows: 'grown', sells: 'sold', repairs: 'repaired', maintains: 'maintained',
};
const PRONOUN_OBJECT: Record<string, string> = { He: 'him', She: 'her', They: 'them', he: 'him', she: 'her', they: 'them' };

function toPassive(sentence: string): string | undefined {
  const template = sentence.match(/^(.*), (they) bring that outlook to (.+)\.$/);
  if (template) return `${template[1]}, that outlook is brought by them to ${template[3]}.`;
  const m = sentence.match(/^(He|She|They) (?:also |often )?([a-z]+s) ((?:the|a|an|his|her|their) [^,.;]+)([,.;].*)$/);
  const participle = m && PARTICIPLES[m[2] ?? ''];
  if (!m || !participle) return undefined;
  return `${capital(m[3] ?? '')} ${/s$/.test((m[3] ?? '').split(' ')[1] ?? '') ? 'are' : 'is'} ${participle} by ${PRONOUN_OBJECT[m[1] ?? ''] ?? 'them'}${m[4] ?? ''}`;
}

/** "Fronted phrase, they do X." → "They do X, fronted phrase." */
function moveFrontedPhrase(sentence: string): string | undefined {
  const m = sentence.match(/^([A-Z][^.]*?), (he|she|they) ([^.]+)\.$/);
  if (!m || /\b(?:is|are|was)\b/.test(m[1] ?? '')) return undefined;
  return `${capital(m[2] ?? '')} ${m[3]}, ${lower(m[1] ?? '')}.`;
}

/** "Name is a 34-year-old X in City who …" → "A 34-year-old X in City, Name …" (the clause order turned). */
function turnOpener(sentence: string, name: string): string | undefined {
  const m = sentence.match(new RegExp(`^${escape(name)} is (an? \\d+-year-old [^,.]+?) in ([^,.]+?) who ([^.]+)\\.$`));
  if (!m) return undefined;
  return `${capital(m[1] ?? '')} living in ${m[2]}, ${name} ${m[3]}.`;
}

function paraphrase(p: Persona): string | undefined {
  let text = p.description;
  for (const [pattern, replacement] of SYNONYMS) text = text.replace(pattern, (match) => (/^[A-Z]/.test(match) ? capital(replacement) : replacement));
  const rewritten = sentences(text).map((s) => turnOpener(s, p.name) ?? toPassive(s) ?? moveFrontedPhrase(s) ?? s);
  const out = rewritten.join(' ');
  return out === p.description ? undefined : out;
}

function reorder(p: Persona, random: () => number): string | undefined {
  const parts = sentences(p.description);
  if (parts.length < 2) return undefined;
  for (let attempt = 0; attempt < 10; attempt += 1) {
    const shuffled = [...parts];
    for (let i = shuffled.length - 1; i > 0; i -= 1) {
      const j = Math.floor(random() * (i + 1));
      [shuffled[i], shuffled[j]] = [shuffled[j] as string, shuffled[i] as string];
    }
    if (shuffled.some((s, i) => s !== parts[i])) return shuffled.join(' ');
  }
  return undefined;
}

/** One or two small edits: a typo, a word changed or dropped, punctuation; never in the name, job or place. */
function smallEdit(p: Persona, random: () => number): string | undefined {
  const protectedWords = new Set(`${p.name} ${p.occupation} ${p.locale} ${p.traits.join(' ')}`.toLowerCase().match(/[\p{L}']+/gu) ?? []);
  let text = p.description;
  const edits = 1 + Math.floor(random() * 2);
  for (let e = 0; e < edits; e += 1) {
    const words = [...text.matchAll(/[\p{L}]{5,}/gu)].filter((w) => !protectedWords.has(w[0].toLowerCase()));
    const w = words.length > 0 ? pick(random, words) : undefined;
    const op = pick(random, ['typo', 'swap-letters', 'word', 'punctuation'] as const);
    if (op === 'punctuation') {
      const commas = [...text.matchAll(/, /g)];
      const c = commas.length > 0 ? pick(random, commas) : undefined;
      text = c?.index !== undefined ? `${text.slice(0, c.index)} ${text.slice(c.index + 2)}` : text.replace(/\.$/, '!');
    } else if (w?.index !== undefined) {
      const word = w[0];
      const at = 1 + Math.floor(random() * (word.length - 2));
      const changed = op === 'typo' ? word.slice(0, at) + word.slice(at + 1)
        : op === 'swap-letters' ? word.slice(0, at) + (word[at + 1] ?? '') + (word[at] ?? '') + word.slice(at + 2)
          : pick(random, ['really', 'quite', 'rather', 'truly', 'fairly']) + ' ' + word;
      text = text.slice(0, w.index) + changed + text.slice(w.index + word.length);
    }
  }
  return text === p.description ? undefined : text;
}

/** The same person under another name: the full name, the first name and the surname all replaced. */
function rename(p: Persona, random: () => number, taken: Set<string>): { name: string; description: string } | undefined {
  const old = p.name.split(' ');
  const first = old[0] ?? '';
  const last = old.at(-1) ?? '';
  for (let attempt = 0; attempt < 20; attempt += 1) {
    const name = sampleName(random);
    const [nFirst = '', nLast = ''] = name.split(' ');
    if (taken.has(name) || nFirst === first || nLast === last) continue;
    const description = p.description.replace(new RegExp(`\\b${escape(p.name)}\\b`, 'g'), name)
      .replace(new RegExp(`\\b${escape(first)}\\b`, 'g'), nFirst).replace(new RegExp(`\\b${escape(last)}\\b`, 'g'), nLast);
    if (description === p.description) return undefined;
    taken.add(name);
    return { name, description };
  }
  return undefined;
}

export function plantDuplicates(o: PlantOptions): PlantedSet {
  const seed = o.seed ?? 'planted-v1';
  const models = modelPersonas().slice(0, o.distinct);
  const taken = new Set(models.map((p) => p.name));
  const distinct: PlantedPersona[] = [
    ...models.map((persona) => ({ persona, label: { kind: 'distinct', source: 'model' } as const })),
    ...samplerPersonas(o.distinct - models.length, seed, taken).map((persona) => ({ persona, label: { kind: 'distinct', source: 'sampler' } as const })),
  ];
  const random = rng(`${seed}:duplicates`);
  const duplicates: PlantedPersona[] = [];
  const copies = new Map<string, number>();
  const planted = new Set<string>();
  for (let i = 0; duplicates.length < o.duplicates; i += 1) {
    if (i > o.duplicates * 20) throw new Error(`planted duplicates: could not plant ${o.duplicates}`);
    const kind = DUPLICATE_KINDS[duplicates.length % DUPLICATE_KINDS.length] as DuplicateKind;
    const original = pick(random, distinct).persona;
    // One duplicate of each kind per persona: a second paraphrase by the same rules would be the first again.
    if (planted.has(`${kind}:${original.id}`)) continue;
    let name = original.name;
    let description: string | undefined;
    if (kind === 'paraphrase') description = paraphrase(original);
    else if (kind === 'reorder') description = reorder(original, random);
    else if (kind === 'edit') description = smallEdit(original, random);
    else {
      const renamed = rename(original, random, taken);
      if (renamed) ({ name, description } = renamed);
    }
    if (description === undefined) continue;
    // Another generation of the same seed: the way a duplicate arrives in a real run.
    const copy = (copies.get(original.id) ?? 0) + 1;
    const generationIndex = original.generationIndex + 100 * copy;
    const persona: Persona = { ...original, id: personaId(original.seedId, generationIndex), generationIndex, name, description };
    if (!coherent(persona)) continue;
    copies.set(original.id, copy);
    planted.add(`${kind}:${original.id}`);
    duplicates.push({ persona, label: { kind, duplicateOf: original.id } });
  }
  return { distinct, duplicates };
}

import { z } from 'zod';
import { PersonaHubError } from '../core/errors.ts';
import type { Persona } from '../schemas/types.generated.ts';

/** A corpus file (JSONL or Parquet) that cannot be read, or an export that cannot go on. */
export class CorpusError extends PersonaHubError {
  constructor(code: `PH_CORPUS_${string}`, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
  }
}

/**
 * The exported persona, field for field the `Persona` of schemas/persona.avsc: the same names, the
 * same nesting, enums as their symbols, timestamps as epoch milliseconds. Checked on import so a
 * hand-edited or foreign file is refused with the field named, never half-stored. The sections later
 * stages fill (lineage, demographics, enrichment, validation) may be absent and read as the schema's
 * null default, so `personahub check` takes drafts made elsewhere.
 */
const strings = z.array(z.string());
const millis = z.number().int().nonnegative();
const personaSchema = z.object({
  id: z.string().min(1),
  version: z.number().int().positive(),
  seedId: z.string().min(1),
  generationIndex: z.number().int().nonnegative(),
  name: z.string(),
  age: z.number().int(),
  occupation: z.string(),
  locale: z.string(),
  traits: strings,
  description: z.string(),
  seedRelation: z.enum(['READER', 'WRITER', 'ENTHUSIAST', 'CRITIC', 'SUBJECT']),
  provenance: z.object({
    mode: z.enum(['LLM', 'SAMPLER']), model: z.string(), promptVersion: z.string(), createdAt: millis,
    // Absent in files exported before profiles existed: read as the schema's default.
    samplerProfile: z.string().nullable().default(null), samplerProfileVersion: z.string().nullable().default(null),
  }),
  lineage: z.object({ depth: z.number().int().nonnegative(), rootSeedId: z.string(), parentPersonaId: z.string().nullable(), relationKind: z.string().nullable() }).nullable().default(null),
  demographics: z.object({
    sex: z.string(), maritalStatus: z.string(), household: z.string(), educationLevel: z.string(), educationField: z.string(), employmentStatus: z.string(),
    occupationGroup: z.string(), industry: z.string(), city: z.string(), region: z.string(), country: z.string(), culturalBackground: z.string(),
    languages: strings, hobbies: strings, skills: strings, careerGoal: z.string(),
  }).nullable().default(null),
  enrichment: z.object({
    lifeStage: z.enum(['YOUNG_ADULT', 'ADULT', 'MIDDLE_AGED', 'SENIOR']),
    bigFive: z.object({ openness: z.number(), conscientiousness: z.number(), extraversion: z.number(), agreeableness: z.number(), neuroticism: z.number() }),
    habits: strings, goals: strings, mediaDiet: strings, appearance: z.string(), imagePrompt: z.string(), settings: strings,
    embedding: z.array(z.number()).min(1), embeddingModel: z.string(), enrichedAt: millis,
  }).nullable().default(null),
  validation: z.object({ textHash: z.string(), checks: strings, repaired: strings, validatedAt: millis }).nullable().default(null),
});

/**
 * The persona with its keys in the schema's field order at every level, whatever order it was built or
 * stored in (jsonb sorts keys its own way), so the same persona always serializes to the same bytes.
 */
export function canonicalPersona(p: Persona): Persona {
  const e = p.enrichment;
  const v = p.validation;
  const l = p.lineage;
  const d = p.demographics;
  return {
    id: p.id, version: p.version, seedId: p.seedId, generationIndex: p.generationIndex, name: p.name, age: p.age,
    occupation: p.occupation, locale: p.locale, traits: p.traits, description: p.description, seedRelation: p.seedRelation,
    provenance: {
      mode: p.provenance.mode, model: p.provenance.model, promptVersion: p.provenance.promptVersion, createdAt: p.provenance.createdAt,
      samplerProfile: p.provenance.samplerProfile, samplerProfileVersion: p.provenance.samplerProfileVersion,
    },
    lineage: l && { depth: l.depth, rootSeedId: l.rootSeedId, parentPersonaId: l.parentPersonaId, relationKind: l.relationKind },
    demographics: d && {
      sex: d.sex, maritalStatus: d.maritalStatus, household: d.household, educationLevel: d.educationLevel, educationField: d.educationField,
      employmentStatus: d.employmentStatus, occupationGroup: d.occupationGroup, industry: d.industry, city: d.city, region: d.region, country: d.country,
      culturalBackground: d.culturalBackground, languages: d.languages, hobbies: d.hobbies, skills: d.skills, careerGoal: d.careerGoal,
    },
    enrichment: e && {
      lifeStage: e.lifeStage,
      bigFive: { openness: e.bigFive.openness, conscientiousness: e.bigFive.conscientiousness, extraversion: e.bigFive.extraversion, agreeableness: e.bigFive.agreeableness, neuroticism: e.bigFive.neuroticism },
      habits: e.habits, goals: e.goals, mediaDiet: e.mediaDiet, appearance: e.appearance, imagePrompt: e.imagePrompt, settings: e.settings,
      embedding: e.embedding, embeddingModel: e.embeddingModel, enrichedAt: e.enrichedAt,
    },
    validation: v && { textHash: v.textHash, checks: v.checks, repaired: v.repaired, validatedAt: v.validatedAt },
  };
}

/** One JSONL line (without its newline). */
export function personaLine(p: Persona): string {
  return JSON.stringify(canonicalPersona(p));
}

/** A decoded record checked against the persona's shape; `where` names the line or row for the error. */
export function checkPersona(value: unknown, where: string): Persona {
  const parsed = personaSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CorpusError('PH_CORPUS_RECORD', `${where}: not a persona (${issue ? `${issue.path.join('.') || 'record'}: ${issue.message}` : 'invalid'})`);
  }
  return canonicalPersona(parsed.data);
}

export function parsePersonaLine(line: string, where: string): Persona {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (cause) {
    throw new CorpusError('PH_CORPUS_RECORD', `${where}: not JSON (${(cause as Error).message})`, { cause });
  }
  return checkPersona(value, where);
}

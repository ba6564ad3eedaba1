import type { Persona, Seed } from '../../schemas/types.generated.ts';
import { hashEmbed } from '../../llm/embedder.ts';
import { modalitiesFor } from '../../persona/modalities.ts';

export function sampleSeed(text = 'The library will extend its opening hours during exam season for students.'): Seed {
  return { id: 'a'.repeat(32), text, source: 'test', lineNumber: 1, depth: 0, parentPersonaId: null, rootSeedId: null, relationKind: null, parent: null, target: null, createdAt: 1_700_000_000_000 };
}

/** A coherent, enriched persona, as the enrich stage would emit it. */
export function samplePersona(overrides: Partial<Persona> = {}): Persona {
  const base: Persona = {
    id: 'b'.repeat(32), version: 1, seedId: 'a'.repeat(32), generationIndex: 0,
    name: 'Amara Okafor', age: 34, occupation: 'pediatric nurse', locale: 'Lagos, Nigeria', traits: ['warm', 'meticulous', 'curious'],
    description: 'Amara Okafor is a 34-year-old pediatric nurse in Lagos who reads every update on vaccination schedules and explains them patiently to worried parents.',
    seedRelation: 'READER',
    provenance: { mode: 'SAMPLER', model: 'sampler', promptVersion: 'draft-v1', createdAt: 1_700_000_000_000, samplerProfile: null, samplerProfileVersion: null },
    demographics: null, facets: null,
    lineage: { depth: 0, rootSeedId: 'a'.repeat(32), parentPersonaId: null, relationKind: null },
    enrichment: null, validation: null, ...overrides,
  };
  return {
    ...base,
    enrichment: base.enrichment ?? { ...modalitiesFor(base), embedding: hashEmbed(base.description, 384), embeddingModel: 'hash-bow-384', enrichedAt: 1_700_000_000_000 },
  };
}

/** What a model answers the draft call with: `description` and the written facets, each long enough to parse. */
export function draftAnswer(description: string): Record<string, string> {
  return {
    description,
    shortPersona: 'A pediatric nurse in Lagos who reads every update on vaccination schedules.',
    professional: 'She runs the vaccination clinic of a public hospital and trains new nurses on night shifts.',
    family: 'She lives with her husband and their two daughters near the hospital.',
    leisure: 'She sings in a church choir and cooks for friends on Sundays.',
    relation: 'She would read about longer library hours for her daughters, who study for exams.',
  };
}

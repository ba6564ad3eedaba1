import { Type, type Static } from 'typebox';
import { DEFAULT_GENERATION_TEXT } from '../persona/generate.ts';

/**
 * Every request and response shape of the API, as TypeBox schemas: the same objects validate requests
 * (fastify's ajv), serialize responses (fast-json-stringify), and become the OpenAPI document
 * (@fastify/swagger), so the document cannot describe an API other than the one that runs.
 */

export const PersonaId = Type.String({ pattern: '^[0-9a-f]{32}$', description: 'Persona id: 32 lowercase hex characters.' });
export const JobId = Type.String({ format: 'uuid', description: 'Job id (a UUID).' });

export const ErrorBody = Type.Object({
  statusCode: Type.Integer(),
  code: Type.String({ description: 'Stable error code, e.g. PH_API_VALIDATION, PH_FILTER_ATTRIBUTE, PH_API_NOT_FOUND.' }),
  error: Type.String(),
  message: Type.String(),
});
export type ErrorBodyT = Static<typeof ErrorBody>;

const Millis = Type.Integer({ description: 'Epoch milliseconds.' });

export const PersonaSummary = Type.Object({
  id: Type.String(),
  version: Type.Integer(),
  name: Type.String(),
  age: Type.Integer(),
  occupation: Type.String(),
  locale: Type.String(),
  description: Type.String(),
  mode: Type.String(),
  model: Type.String(),
  cluster: Type.Union([Type.Integer(), Type.Null()]),
  createdAt: Millis,
});

const Free = Type.Record(Type.String(), Type.Unknown());

export const PersonaVersion = Type.Object({
  version: Type.Integer(),
  name: Type.String(), age: Type.Integer(), occupation: Type.String(), locale: Type.String(), description: Type.String(), model: Type.String(),
  indexedAt: Millis,
  replacedAt: Type.Union([Millis, Type.Null()], { description: 'When a newer version replaced it; null for the current one.' }),
});


export const PersonaRecord = Type.Object({
  ...PersonaSummary.properties,
  seedId: Type.String(),
  attributes: Free,
  modalities: Free,
  provenance: Type.Object({ mode: Type.String(), model: Type.String(), promptVersion: Type.Union([Type.String(), Type.Null()]), createdAt: Millis }),
  lineage: Free,
  validation: Type.Union([Free, Type.Null()]),
  embeddingModel: Type.String(),
  indexedAt: Millis,
  versions: Type.Array(PersonaVersion, { description: 'Every version indexed, oldest first; the last is this one.' }),
  relations: Type.Array(Type.Object({
    from: Type.String(), to: Type.String(), kind: Type.String(), depth: Type.Integer(), createdAt: Millis,
  }), { description: 'The lattice edges from and to this persona (GET /personas/{id}/neighbours walks further).' }),
});

export const PatchBody = Type.Object({
  description: Type.Optional(Type.String({ minLength: 1, maxLength: 4000 })),
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  age: Type.Optional(Type.Integer({ minimum: 0, maximum: 130 })),
  occupation: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  locale: Type.Optional(Type.String({ minLength: 1, maxLength: 50 })),
  traits: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { maxItems: 20 })),
}, { additionalProperties: false, minProperties: 1 });
export const Deleting = Type.Object({
  id: Type.String(),
  status: Type.Literal('deleting', { description: 'The tombstone is on the validated topic; the index stage removes the persona and passes the tombstone on to the indexed topic.' }),
});

export type PatchBodyT = Static<typeof PatchBody>;

export const Submitted = Type.Object({
  id: Type.String(),
  version: Type.Integer({ description: 'The version the modification will be indexed as, once validated.' }),
  status: Type.Literal('submitted'),
});

export const ScoredPersona = Type.Object({ ...PersonaSummary.properties, score: Type.Number({ description: 'Cosine similarity, 1 for the same direction.' }) });

const Where = Type.String({
  maxLength: 2000,
  description: 'Filter language of persona/filter.ts: comma-separated clauses `attribute op value`, all of which must hold, e.g. `occupation=nurse,age>=30`. Operators = != >= <= > <.',
});

/** Filters every listing and search takes besides `where`. */
const FilterFields = {
  where: Type.Optional(Where),
  cluster: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
  mode: Type.Optional(Type.Union([Type.Literal('LLM'), Type.Literal('SAMPLER')])),
  model: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  depth: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
  createdAfter: Type.Optional(Type.Integer({ minimum: 0, maximum: 8_640_000_000_000, description: 'Epoch ms, inclusive.' })),
  createdBefore: Type.Optional(Type.Integer({ minimum: 0, maximum: 8_640_000_000_000, description: 'Epoch ms, exclusive.' })),
};

export const ListQuery = Type.Object({
  ...FilterFields,
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
  cursor: Type.Optional(Type.String({ maxLength: 1000, description: 'Opaque cursor from a previous page\'s `nextCursor`, valid with the same filters only.' })),
}, { additionalProperties: false });
export type ListQueryT = Static<typeof ListQuery>;

export const ListPage = Type.Object({
  items: Type.Array(PersonaSummary),
  nextCursor: Type.Union([Type.String(), Type.Null()], { description: 'Pass as `cursor` for the next page; null on the last page.' }),
});

export const SearchBody = Type.Object({
  text: Type.String({ minLength: 1, maxLength: 4000, description: 'What to look for, in plain words.' }),
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 10 }),
  ...FilterFields,
}, { additionalProperties: false });
export type SearchBodyT = Static<typeof SearchBody>;

export const Hits = Type.Object({ items: Type.Array(ScoredPersona) });

export const SimilarQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 10 }),
  ...FilterFields,
}, { additionalProperties: false });
export type SimilarQueryT = Static<typeof SimilarQuery>;

export const NeighboursQuery = Type.Object({ depth: Type.Integer({ minimum: 1, maximum: 6, default: 1, description: 'Hops from the persona (the lattice is at most 6 deep).' }) }, { additionalProperties: false });
export const Neighbours = Type.Object({
  id: Type.String(),
  depth: Type.Integer(),
  edges: Type.Array(Type.Object({
    from: Type.String(), to: Type.String(), kind: Type.String({ description: 'Relation kind: family, colleague, client...' }),
    depth: Type.Integer({ description: 'Lattice depth of the derived persona.' }), hops: Type.Integer({ description: 'Hops from the persona asked about.' }), createdAt: Millis,
  })),
  personas: Type.Array(PersonaSummary, { description: 'Every persona the edges reach, the one asked about included.' }),
});

export const IdParams = Type.Object({ id: PersonaId });
export const JobParams = Type.Object({ id: JobId });

export const ClustersQuery = Type.Object({ members: Type.Integer({ minimum: 0, maximum: 50, default: 5, description: 'Members listed per cluster.' }) }, { additionalProperties: false });
export const Clusters = Type.Object({
  clusters: Type.Array(Type.Object({
    cluster: Type.Integer(),
    size: Type.Integer(),
    label: Type.String({ description: 'The cluster\'s most common occupations.' }),
    members: Type.Array(Type.Object({ id: Type.String(), name: Type.String(), occupation: Type.String() })),
  })),
});

const CountMap = Type.Record(Type.String(), Type.Integer());
const Top = Type.Array(Type.Object({ value: Type.String(), count: Type.Integer() }));
export const Stats = Type.Object({
  personas: Type.Integer(),
  byMode: CountMap,
  byModel: CountMap,
  byDepth: CountMap,
  age: Type.Object({
    min: Type.Union([Type.Integer(), Type.Null()]),
    max: Type.Union([Type.Integer(), Type.Null()]),
    mean: Type.Union([Type.Number(), Type.Null()]),
    histogram: Type.Array(Type.Object({ from: Type.Integer(), to: Type.Integer(), count: Type.Integer() })),
  }),
  topOccupations: Top,
  topLocales: Top,
  clusters: Type.Integer(),
  clustered: Type.Integer(),
});

export const FidelityQuery = Type.Object({
  profile: Type.Optional(Type.String({ pattern: '^[a-z0-9_-]{1,64}$', description: 'Sampler profile (config/profiles/<name>.yaml) the personas were drawn from. Default: PERSONAHUB_PROFILE.' })),
  where: Type.String({ maxLength: 2000, default: '', description: 'Only personas matching the filter, compared with the profile conditioned on it (as `personahub report --where`).' }),
  values: Type.Integer({ minimum: 1, maximum: 100, default: 12, description: 'Values listed per attribute, largest share first; the rest pooled as "(other)".' }),
  limit: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 200_000, description: 'Personas read from the store at most, in id order.' }),
}, { additionalProperties: false });

const Share = Type.Number({ minimum: 0, maximum: 1 });
export const Fidelity = Type.Object({
  profile: Type.String(),
  profileVersion: Type.String(),
  where: Type.String(),
  personas: Type.Integer({ description: 'Stored personas drawn from the profile (and matching `where`) that were compared.' }),
  truncated: Type.Boolean({ description: 'More personas matched than `limit`; the first `limit` in id order were compared.' }),
  marginals: Type.Array(Type.Object({
    attribute: Type.String(),
    tvd: Type.Number({ description: 'Total variation distance from the target, 0 to 1.' }),
    jsd: Type.Number({ description: 'Jensen-Shannon divergence in bits, 0 to 1.' }),
    coverage: Share,
    entropy: Type.Number(),
    targetEntropy: Type.Number(),
    values: Type.Array(Type.Object({ value: Type.String(), observed: Share, target: Share }), { description: 'Observed and target share per value.' }),
  })),
  pairs: Type.Array(Type.Object({
    pair: Type.Array(Type.String(), { minItems: 2, maxItems: 2 }),
    tvd: Type.Number(),
    jsd: Type.Number(),
    chiSquare: Type.Union([Type.Number(), Type.Null()], { description: 'Against the target joint; null when infinite (a combination the target rules out was observed).' }),
    critical: Type.Number({ description: 'Chi-square critical value at alpha 0.001.' }),
    flagged: Type.Boolean({ description: 'Significant and a TVD of at least 0.05: the joint is off although marginals may be right.' }),
  }), { description: 'Every pair of attributes, worst first.' }),
});
export type FidelityT = Static<typeof Fidelity>;

export const ValidationQuery = Type.Object({
  bucket: Type.Optional(Type.Integer({ minimum: 1, maximum: 31 * 86_400, description: 'Bucket width in seconds. Default: the narrowest of 1 s, 10 s, 1 min, 5 min, 15 min, 1 h, 6 h, 1 d, 7 d giving at most 60 buckets.' })),
}, { additionalProperties: false });

export const ValidationSeries = Type.Object({
  since: Type.Integer({ description: 'Epoch ms from which the observer counts (0: from the beginning of the topics).' }),
  bucketSeconds: Type.Integer(),
  reasons: Type.Array(Type.String(), { description: 'Rejection reasons seen, most frequent first.' }),
  buckets: Type.Array(Type.Object({
    start: Millis,
    passed: Type.Integer({ description: 'Validated as written.' }),
    repaired: Type.Integer({ description: 'Validated after the validator repaired a field.' }),
    rejected: CountMap,
  })),
  totals: Type.Object({ passed: Type.Integer(), repaired: Type.Integer(), rejected: CountMap }),
}, { description: 'Counts the pipeline observer of this API process has seen since `since`: each persona once, at its latest validation; a rejected one under its first reason.' });
export type ValidationSeriesT = Static<typeof ValidationSeries>;

const SeedText = Type.String({ minLength: 1, maxLength: 100_000 });

export const JobBody = Type.Object({
  seeds: Type.Array(SeedText, { minItems: 1, maxItems: 10_000, description: 'Seed texts, one persona source each.' }),
  source: Type.Optional(Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9._:-]+$', description: 'Recorded as each seed\'s source (part of its id). Default: api.' })),
}, { additionalProperties: false });
export type JobBodyT = Static<typeof JobBody>;

export const SampleJobBody = Type.Object({
  sample: Type.Object({
    count: Type.Integer({ minimum: 1, maximum: 10_000, description: 'Personas to draw.' }),
    profile: Type.Optional(Type.String({ pattern: '^[a-z0-9_-]{1,64}$', description: 'Sampler profile (config/profiles/<name>.yaml). Default: PERSONAHUB_PROFILE.' })),
    where: Type.Optional(Type.String({ maxLength: 2000, description: 'What every drawn persona must satisfy, in the filter language. Default: nothing, the whole profile.' })),
    text: Type.Optional(Type.String({ minLength: 1, maxLength: 4000, description: `The text every seed of the job carries; each persona relates to it. Default: "${DEFAULT_GENERATION_TEXT}"` })),
  }, { additionalProperties: false }),
}, { additionalProperties: false, description: 'A sampled-attributes job, as `personahub generate`: the draft stage draws each persona from the profile conditioned on the filter.' });

const Refusal = Type.Object({ line: Type.Integer(), reason: Type.String(), detail: Type.String() });

const StageProgress = Type.Object({
  hop: Type.String({ description: 'seed→draft, draft→enriched, enriched→validated|rejected, validated→indexed.' }),
  in: Type.Integer({ description: 'Events of this job that entered the hop.' }),
  out: Type.Integer({ description: 'Of those, the ones with an output or a dead letter.' }),
  pending: Type.Integer(),
});

export const Job = Type.Object({
  id: Type.String(),
  status: Type.Union([Type.Literal('sending'), Type.Literal('sent'), Type.Literal('cancelled'), Type.Literal('failed')]),
  seeds: Type.Integer({ description: 'Seeds accepted for the job.' }),
  sent: Type.Integer({ description: 'Seeds sent to the seed topic so far.' }),
  duplicates: Type.Optional(Type.Integer({ description: 'Seeds repeated within the request (sent once).' })),
  refused: Type.Optional(Type.Array(Refusal)),
  error: Type.Union([Type.String(), Type.Null()]),
  createdAt: Millis,
  updatedAt: Millis,
  progress: Type.Optional(Type.Object({
    stages: Type.Array(StageProgress),
    indexed: Type.Integer({ description: 'The job\'s personas indexed: those whose lineage roots in its seeds, lattice-derived ones included, as in `stages`.' }),
    rejected: Type.Integer({ description: 'The job\'s personas rejected by validation, counted as `indexed` is.' }),
    deadLettered: Type.Integer({ description: 'The job\'s seeds (expansion seeds included) and personas dead-lettered.' }),
    settled: Type.Boolean({ description: 'Every sent seed and all that came of it is accounted for at every hop.' }),
  })),
});

export const PreviewBody = Type.Object({
  seeds: Type.Array(SeedText, { minItems: 1, maxItems: 5 }),
}, { additionalProperties: false });
export type PreviewBodyT = Static<typeof PreviewBody>;

export const Preview = Type.Object({
  validated: Type.Array(Type.Object({
    id: Type.String(), name: Type.String(), age: Type.Integer(), occupation: Type.String(), locale: Type.String(),
    description: Type.String(), mode: Type.String(), model: Type.String(), repaired: Type.Array(Type.String()),
  })),
  rejected: Type.Array(Type.Object({ id: Type.String(), reasons: Type.Array(Type.Object({ code: Type.String(), message: Type.String() })) })),
  refused: Type.Array(Refusal),
});

export const Health = Type.Object({ status: Type.String(), reasons: Type.Array(Type.String()) });

import type { DeadLetter, Indexed, Persona, Rejected, Seed } from '../schemas/types.generated.ts';

/** Kafka's cleanup policies: `delete` drops old segments after the retention, `compact` keeps the last record per key. */
export type CleanupPolicy = 'delete' | 'compact' | 'compact,delete';

/**
 * What an event declares about its topic. Replication factor and `min.insync.replicas` are not per topic: every
 * topic carries the same exactly-once chain, which is only as durable as its weakest topic, so they are one
 * setting for all (PERSONAHUB_REPLICATION_FACTOR and PERSONAHUB_MIN_INSYNC_REPLICAS, else the cluster's own
 * defaults, which are 1 on a single broker). Partitions are one setting too (PERSONAHUB_PARTITIONS): a stage's
 * parallelism is bounded by its input's partitions, and every topic is some stage's input or output.
 */
export interface EventDef {
  schema: string;
  /** `retention.ms`; -1 keeps records forever. */
  retentionMs: number;
  cleanupPolicy: CleanupPolicy;
  doc: string;
}

const DAY_MS = 24 * 3600_000;

/**
 * The pipeline as data: every topic with its schema and settings, and every stage with its input,
 * outputs and consumer group. Topic creation, schema registration, the runner, the Helm chart
 * and the docs all read this; nothing else spells a topic name.
 */
export const events = {
  seed: { schema: 'seed.avsc', retentionMs: 7 * DAY_MS, cleanupPolicy: 'delete', doc: 'Seed texts to infer personas from.' },
  draft: { schema: 'persona.avsc', retentionMs: 7 * DAY_MS, cleanupPolicy: 'delete', doc: 'Personas as drafted (Text-to-Persona), before enrichment.' },
  enriched: { schema: 'persona.avsc', retentionMs: 7 * DAY_MS, cleanupPolicy: 'delete', doc: 'Personas with modalities and embedding.' },
  validated: { schema: 'persona.avsc', retentionMs: 30 * DAY_MS, cleanupPolicy: 'delete', doc: 'Coherent, deduplicated personas: the downstream contract.' },
  indexed: { schema: 'indexed.avsc', retentionMs: 30 * DAY_MS, cleanupPolicy: 'delete', doc: 'Personas stored and searchable.' },
  rejected: { schema: 'rejected.avsc', retentionMs: 30 * DAY_MS, cleanupPolicy: 'delete', doc: 'Personas that failed validation or were duplicates, with reasons.' },
  dlq: { schema: 'dead-letter.avsc', retentionMs: 30 * DAY_MS, cleanupPolicy: 'delete', doc: 'Events a stage could not process, with their bytes and why.' },
} as const satisfies Record<string, EventDef>;

export type EventName = keyof typeof events;

/** The TypeScript type of each event's value, generated from its Avro schema. */
export interface EventTypes {
  seed: Seed;
  draft: Persona;
  enriched: Persona;
  validated: Persona;
  indexed: Indexed;
  rejected: Rejected;
  dlq: DeadLetter;
}

export const KEY_SCHEMA = 'key.avsc';

/** What a stage is, before its name is attached: its input event, its output events and a line of docs. */
export interface StageDef {
  input: EventName;
  outputs: readonly EventName[];
  doc: string;
}

/** Ingest is a source (CLI or API producer), not a consumer stage, so it only appears as the seed producer. */
export const sources = [{ name: 'ingest', outputs: ['seed'] }] as const;

/**
 * The stages, keyed by name in pipeline order. Keyed rather than listed so that `stageTable[name]`
 * keeps each stage's own input and output types when `name` is a type parameter (the runner's wiring).
 */
export const stageTable = {
  draft: { input: 'seed', outputs: ['draft'], doc: 'Text-to-Persona: seed text to persona drafts grounded on sampled attributes.' },
  enrich: { input: 'draft', outputs: ['enriched'], doc: 'Behavioral, visual and contextual modalities and the embedding.' },
  validate: { input: 'enriched', outputs: ['validated', 'rejected'], doc: 'Invariants, cross-field coherence, exact-duplicate removal.' },
  index: { input: 'validated', outputs: ['indexed'], doc: 'Upsert into the store (pgvector), then announce.' },
} as const satisfies Record<string, StageDef>;

type StageTable = typeof stageTable;
export type StageName = keyof StageTable;
export type StageInput<N extends StageName> = StageTable[N]['input'];
export type StageOutput<N extends StageName> = StageTable[N]['outputs'][number];

/** The stage named N with its name attached; its event types stay exact even when N is generic. */
export type StageOf<N extends StageName> = { name: N } & StageTable[N];

/** Any stage with its name, for code that goes over every stage. */
export type Stage = StageOf<StageName>;

export function stage<N extends StageName>(name: N): StageOf<N> {
  return { name, ...stageTable[name] };
}

function isStageName(name: string): name is StageName {
  return Object.hasOwn(stageTable, name);
}

/** Every stage in pipeline order. */
export const stages: readonly Stage[] = Object.keys(stageTable).filter(isStageName).map((name) => stage(name));

export function topicName(prefix: string, event: EventName): string {
  return `${prefix}.${event}.v1`;
}

export function groupId(prefix: string, stage: StageName): string {
  return `${prefix}.${stage}`;
}

/**
 * Refuses a topology where a stage consumes an event nobody produces, or where an event is produced
 * by two owners' different schemas (checked at start-up and in the unit tests).
 */
export function checkTopology(): string[] {
  const produced = new Set<string>([...sources.flatMap((s) => s.outputs), ...stages.flatMap((s) => s.outputs)]);
  const problems: string[] = [];
  for (const stage of stages) {
    if (!produced.has(stage.input)) problems.push(`stage ${stage.name} consumes ${stage.input}, which no stage or source produces`);
    for (const out of stage.outputs) if (!(out in events)) problems.push(`stage ${stage.name} produces unknown event ${out}`);
  }
  return problems;
}

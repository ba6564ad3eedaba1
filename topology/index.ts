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
  /**
   * A stage whose outputs flow back to its own input (a loop) must say what bounds it: the setting
   * that caps how many times an event can go round. checkTopology refuses a loop without one.
   */
  loopBound?: string;
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
  relate: {
    input: 'validated', outputs: ['seed'], loopBound: 'PERSONAHUB_LATTICE_DEPTH',
    doc: 'Persona-to-Persona: expansion seeds for people related to each validated persona, bounded by depth and a per-root budget.',
  },
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
 * Refuses a topology where a stage consumes an event nobody produces, a stage produces an unknown
 * event, or events can go round a loop of stages none of which declares what bounds it (checked at
 * start-up and in the unit tests).
 */
export function checkTopology(all: readonly Stage[] = stages): string[] {
  const produced = new Set<string>([...sources.flatMap((s) => s.outputs), ...all.flatMap((s) => s.outputs)]);
  const problems: string[] = [];
  for (const stage of all) {
    if (!produced.has(stage.input)) problems.push(`stage ${stage.name} consumes ${stage.input}, which no stage or source produces`);
    for (const out of stage.outputs) if (!(out in events)) problems.push(`stage ${stage.name} produces unknown event ${out}`);
  }
  for (const loop of loops(all)) {
    if (!loop.some((s) => 'loopBound' in s && typeof s.loopBound === 'string')) problems.push(`stages ${loop.map((s) => s.name).join(' → ')} form a loop and none declares its loopBound`);
  }
  return problems;
}

/** Every simple loop of stages (a stage's output feeding, through others, its own input), each once, from its first stage in `all`'s order. */
export function loops(all: readonly Stage[] = stages): Stage[][] {
  const found: Stage[][] = [];
  const next = (s: Stage) => all.filter((t) => (s.outputs as readonly string[]).includes(t.input));
  const walk = (start: Stage, path: Stage[]) => {
    const last = path[path.length - 1] as Stage;
    for (const n of next(last)) {
      if (n === start) found.push([...path]);
      else if (!path.includes(n) && all.indexOf(n) > all.indexOf(start)) walk(start, [...path, n]);
    }
  };
  for (const s of all) walk(s, [s]);
  return found;
}

/**
 * Whether a persona descends from one of `seedIds` (all, without them): drafted from one, or derived in
 * a lattice rooted in one, since the relate stage's loop feeds expansion seeds back into the pipeline.
 */
export function descendsFrom(seedIds: ReadonlySet<string> | undefined, p: Pick<Persona, 'seedId' | 'lineage'>): boolean {
  return !seedIds || seedIds.has(p.seedId) || (p.lineage !== null && seedIds.has(p.lineage.rootSeedId));
}

/** Whether the seed `id` is one of `seedIds` or an expansion seed of a lattice rooted in one. */
export function seedDescendsFrom(seedIds: ReadonlySet<string> | undefined, id: string, seed: Pick<Seed, 'rootSeedId'>): boolean {
  return !seedIds || seedIds.has(id) || (seed.rootSeedId !== null && seedIds.has(seed.rootSeedId));
}

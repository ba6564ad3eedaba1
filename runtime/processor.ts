import type { Logger } from '../core/logger.ts';
import type { Config } from '../config/index.ts';
import type { EventName, EventTypes, StageInput, StageName, StageOutput } from '../topology/index.ts';
import type { Store } from '../store/index.ts';
import type { LlmClient } from '../llm/client.ts';
import type { Embedder } from '../llm/embedder.ts';

/** One event a processor emits: the runner encodes it for the event's topic and produces it keyed. */
export type Output<O extends EventName> = { [E in O]: { event: E; key: string; value: EventTypes[E] } }[O];

/**
 * A deletion: a record with the key and no value (a Kafka tombstone) on the event's topic, so every
 * consumer of the topic sees that the keyed entity is gone.
 */
export type Tombstone<O extends EventName> = { [E in O]: { event: E; key: string; value: null } }[O];

/** What a processor may use: external clients come in here so unit tests can pass fakes. */
export interface SharedContext {
  config: Config;
  logger: Logger;
  /** Absent in sampler mode, unless the LLM judge (PERSONAHUB_LLM_JUDGE) is on. */
  llm: LlmClient | undefined;
  embedder: Embedder;
  store: Store;
  /** Time source, injectable so outputs are reproducible in tests. */
  now(): number;
}

/** The shared clients plus what the runner knows of the one input being processed. */
export interface ProcessorContext extends SharedContext {
  /**
   * Opaque id of the input record being processed: the same on every redelivery of that record (after
   * a crash or a rebalance), different for a copy of it ingested or replayed again. Sinks use it to tell
   * their own redo from somebody else's write.
   */
  delivery: string;
}

/**
 * The processor of stage N: it consumes N's input event and emits only N's output events, both read
 * off the topology, so a processor registered for the wrong stage does not compile. `process` is a
 * property, not a method, so its parameter is checked strictly (contravariantly), not bivariantly.
 */
export interface Processor<N extends StageName> {
  readonly stage: N;
  init?(ctx: SharedContext): Promise<void>;
  process: (event: EventTypes[StageInput<N>], ctx: ProcessorContext) => Promise<Output<StageOutput<N>>[]>;
  /**
   * What the stage does with a tombstone on its input (the keyed entity was deleted): its outputs, which
   * may be tombstones in turn. The runner passes a tombstone by, committed and unprocessed, for a stage
   * without it.
   */
  tombstone?: (key: string, ctx: ProcessorContext) => Promise<(Output<StageOutput<N>> | Tombstone<StageOutput<N>>)[]>;
  close?(): Promise<void>;
}

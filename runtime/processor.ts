import type { Logger } from 'pino';
import type { Config } from '../config/index.ts';
import type { EventName, EventTypes, StageName } from '../topology/index.ts';
import type { Store } from '../store/index.ts';
import type { LlmClient } from '../llm/client.ts';

/** One event a processor emits: the runner encodes it for the event's topic and produces it keyed. */
export type Output<O extends EventName> = { [E in O]: { event: E; key: string; value: EventTypes[E] } }[O];

export interface Embedder {
  readonly model: string;
  embed(texts: string[]): Promise<number[][]>;
}

/** What a processor may use: external clients come in here so unit tests can pass fakes. */
export interface ProcessorContext {
  config: Config;
  logger: Logger;
  /** Absent in sampler mode. */
  llm: LlmClient | undefined;
  embedder: Embedder;
  store: Store;
  /** Time source, injectable so outputs are reproducible in tests. */
  now(): number;
}

export interface Processor<I extends EventName, O extends EventName> {
  readonly stage: StageName;
  init?(ctx: ProcessorContext): Promise<void>;
  process(event: EventTypes[I], ctx: ProcessorContext): Promise<Output<O>[]>;
  close?(): Promise<void>;
}

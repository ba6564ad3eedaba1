import type { Processor } from '../runtime/processor.ts';
import type { StageName } from '../topology/index.ts';
import { draft } from './draft/index.ts';
import { enrich } from './enrich/index.ts';
import { index } from './index/index.ts';
import { relate } from './relate/index.ts';
import { validate } from './validate/index.ts';

/** One processor per stage of the topology, each typed by its stage's input and outputs. */
export type ProcessorRegistry = { readonly [N in StageName]: Processor<N> };

/**
 * Stage name → processor. `satisfies` makes the compiler reject a missing stage, an extra one, or a
 * processor under another stage's name; the annotation lets `processors[stage]` keep its pairing
 * when `stage` is generic (the runner's wiring).
 */
export const processors: ProcessorRegistry = { draft, enrich, validate, index, relate } satisfies ProcessorRegistry;

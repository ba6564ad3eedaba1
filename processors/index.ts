import type { StageName } from '../topology/index.ts';
import type { EventName } from '../topology/index.ts';
import type { Processor } from '../runtime/processor.ts';
import { draft } from './draft/index.ts';
import { enrich } from './enrich/index.ts';
import { index } from './index/index.ts';
import { validate } from './validate/index.ts';

/** Stage name → processor; the topology says what each consumes and emits. */
export const processors: Record<StageName, Processor<EventName, EventName>> = {
  draft: draft as unknown as Processor<EventName, EventName>,
  enrich: enrich as unknown as Processor<EventName, EventName>,
  validate: validate as unknown as Processor<EventName, EventName>,
  index: index as unknown as Processor<EventName, EventName>,
};

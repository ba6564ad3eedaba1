import { draft } from './draft/index.ts';
import { enrich } from './enrich/index.ts';
import { index } from './index/index.ts';
import { validate } from './validate/index.ts';

/** Stage name → processor; the topology says what each consumes and emits. */
export const processors = { draft, enrich, validate, index } as const;

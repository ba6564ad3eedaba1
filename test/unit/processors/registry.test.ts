import { describe, expect, it } from 'vitest';
import { draft } from '../../../processors/draft/index.ts';
import { enrich } from '../../../processors/enrich/index.ts';
import { index } from '../../../processors/index/index.ts';
import { processors, type ProcessorRegistry } from '../../../processors/registry.ts';
import { relate } from '../../../processors/relate/index.ts';
import { validate } from '../../../processors/validate/index.ts';
import type { Processor } from '../../../runtime/processor.ts';
import { stages } from '../../../topology/index.ts';

/**
 * The pairing of stages and processors is checked by the compiler: `./personahub test` runs tsc over
 * this file, and each `@ts-expect-error` below fails the build if the line it marks ever compiles.
 */
describe('processor registry', () => {
  it('has one processor per stage of the topology, each declaring its own stage', () => {
    expect(Object.keys(processors).sort()).toEqual(stages.map((s) => s.name).sort());
    for (const s of stages) expect(processors[s.name].stage).toBe(s.name);
  });

  it('rejects, at compile time, a processor registered under another stage', () => {
    // @ts-expect-error enrich consumes draft events, not seeds
    const swapped: ProcessorRegistry = { ...processors, draft: enrich };
    // @ts-expect-error validate emits validated and rejected events, which the index stage does not
    const wrongOutputs: ProcessorRegistry = { ...processors, index: validate };
    // @ts-expect-error a stage left without a processor
    const missing: ProcessorRegistry = { draft, enrich, validate };
    // @ts-expect-error a processor that emits an event its stage does not declare
    const stray: Processor<'enrich'> = { stage: 'enrich', process: async (persona) => [{ event: 'validated', key: persona.id, value: persona }] };
    // The same objects under their own names compile.
    const right: ProcessorRegistry = { draft, enrich, validate, index, relate };
    expect([swapped, wrongOutputs, missing, stray, right]).toHaveLength(5);
  });
});

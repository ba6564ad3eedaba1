import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkTopology, events, KEY_SCHEMA, loops, stages, topicName, type Stage } from '../../../topology/index.ts';

describe('topology', () => {
  it('is consistent: every stage input is produced by a stage or a source', () => {
    expect(checkTopology()).toEqual([]);
  });

  it('names topics <prefix>.<event>.v1 and points every event at an existing schema file', () => {
    expect(topicName('personahub', 'seed')).toBe('personahub.seed.v1');
    for (const e of Object.values(events)) expect(existsSync(join('schemas', e.schema))).toBe(true);
    expect(existsSync(join('schemas', KEY_SCHEMA))).toBe(true);
  });

  it('chains the stages seed → draft → enriched → validated → indexed, and relate feeds validated personas back as seeds', () => {
    expect(stages.map((s) => `${s.input}>${s.outputs.join('+')}`)).toEqual(['seed>draft', 'draft>enriched', 'enriched>validated+rejected', 'validated>indexed', 'validated>seed']);
  });

  it('finds the lattice loop once, and accepts it only because relate declares its bound', () => {
    expect(loops().map((l) => l.map((s) => s.name))).toEqual([['draft', 'enrich', 'validate', 'relate']]);
    const unbounded = stages.map((s): Stage => (s.name === 'relate' ? { ...s, loopBound: undefined } as unknown as Stage : s));
    expect(checkTopology(unbounded)).toEqual(['stages draft → enrich → validate → relate form a loop and none declares its loopBound']);
  });
});

import { describe, expect, it } from 'vitest';
import { conform, ConformError, recordSchema, type AvroRecord } from '../../../schemas/conform.ts';
import { samplePersona } from '../../helpers/samples.ts';

const schema: AvroRecord = {
  type: 'record', name: 'R', fields: [
    { name: 'id', type: 'string' },
    { name: 'at', type: { type: 'long', logicalType: 'timestamp-millis' } },
    { name: 'tags', type: { type: 'array', items: 'string' }, default: [] },
    { name: 'kind', type: { type: 'enum', name: 'Kind', symbols: ['A', 'B'] }, default: 'A' },
    { name: 'inner', type: ['null', { type: 'record', name: 'I', fields: [{ name: 'x', type: 'float' }] }], default: null },
  ],
};

describe('conform', () => {
  it('puts fields in the schema order, drops unknown ones, fills defaults and turns Dates, bigints and typed arrays into JSON values', () => {
    const out = conform({ inner: { x: 1.5, y: 2 }, extra: true, at: new Date(1_700_000_000_000), id: 'a' }, schema);
    expect(JSON.stringify(out)).toBe('{"id":"a","at":1700000000000,"tags":[],"kind":"A","inner":{"x":1.5}}');
    expect(conform({ id: 'b', at: 5n, inner: undefined }, schema)).toEqual({ id: 'b', at: 5, tags: [], kind: 'A', inner: null });
    expect(conform(Float32Array.from([0.5]), { type: 'array', items: 'float' })).toEqual([0.5]);
  });

  it('refuses what does not fit, naming the field', () => {
    const fails = (v: unknown) => {
      try {
        conform(v, schema);
      } catch (e) {
        return e instanceof ConformError ? e.message : 'other';
      }
      return 'passed';
    };
    expect(fails({ at: 1 })).toBe('id: missing');
    expect(fails({ id: 'a', at: 1, kind: 'C' })).toBe('kind: expected one of A, B, got "C"');
    expect(fails({ id: 'a', at: 1, tags: ['t', 3] })).toBe('tags[1]: expected a string, got 3');
    expect(fails({ id: 'a', at: 1.5 })).toBe('at: expected an integer, got 1.5');
    expect(fails({ id: 'a', at: 1, inner: { x: 'no' } })).toBe('inner.x: expected a number, got "no"');
  });

  it('reads persona.avsc, and a persona conforms to it unchanged', () => {
    const p = samplePersona();
    expect(conform(p, recordSchema('persona.avsc'))).toEqual(p);
  });
});

import { readFileSync } from 'node:fs';
import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { generateTypes } from '../../../schemas/codegen.ts';
import { readSchema } from '../../../runtime/serde.ts';
import { samplePersona } from '../../helpers/samples.ts';

describe('schemas', () => {
  it('generated TypeScript types are up to date with the .avsc files', () => {
    expect(readFileSync('schemas/types.generated.ts', 'utf8')).toBe(generateTypes());
  });

  it('a persona built by the processors round-trips through the Avro schema', () => {
    const type = avro.Type.forSchema(JSON.parse(readSchema('persona.avsc')));
    const persona = samplePersona();
    expect(type.isValid(persona)).toBe(true);
    const back = type.fromBuffer(type.toBuffer(persona)) as typeof persona;
    expect(back.id).toBe(persona.id);
    expect(back.enrichment?.embedding.length).toBe(persona.enrichment?.embedding.length);
  });

  it('adding the nullable sections is a backward-compatible change (a reader with them reads a writer without)', () => {
    const full = JSON.parse(readSchema('persona.avsc'));
    const writer = avro.Type.forSchema({ ...full, fields: full.fields.filter((f: { name: string }) => f.name !== 'validation') });
    const reader = avro.Type.forSchema(full);
    const resolver = reader.createResolver(writer);
    const { validation: _v, ...withoutValidation } = samplePersona();
    const decoded = reader.fromBuffer(writer.toBuffer(withoutValidation), resolver) as { validation: unknown };
    expect(decoded.validation).toBeNull();
  });
});

import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/index.ts';
import { readSchema, Serde } from '../../runtime/serde.ts';
import { samplePersona, sampleSeed } from '../helpers/samples.ts';
import { testPrefix } from '../helpers/pipeline.ts';

const config = loadConfig();

/** Schema registration and evolution against the real Apicurio registry (Confluent-compatible API). */
describe('schema registry', () => {
  const prefix = testPrefix('reg');
  const serde = new Serde(config.registryUrl, prefix);

  it('registers every key and value subject idempotently', async () => {
    const first = new Map(await serde.registerAll());
    const second = await new Serde(config.registryUrl, prefix).registerAll();
    expect(first.size).toBe(14);
    expect([...second]).toEqual([...first]);
  });

  it('round-trips events through the wire format', async () => {
    const persona = samplePersona();
    const bytes = await serde.encodeValue('enriched', persona);
    expect(bytes[0]).toBe(0);
    const back = await serde.decode('enriched', bytes);
    expect(back.id).toBe(persona.id);
    expect(back.enrichment?.embedding[0]).toBeCloseTo(persona.enrichment?.embedding[0] ?? NaN, 5);
    const key = await serde.encodeKey('seed', sampleSeed().id);
    expect(await serde.decodeKey(key)).toBe(sampleSeed().id);
  });

  it('refuses a value that does not match the schema', async () => {
    await expect(serde.encodeValue('seed', { id: 1 })).rejects.toMatchObject({ code: 'PH_SERDE_ENCODE' });
  });

  it('accepts a backward-compatible change and refuses an incompatible one (409)', async () => {
    const subject = `${prefix}.seed.v1-value`;
    const seed = JSON.parse(readSchema('seed.avsc'));
    const post = (schema: unknown) => fetch(`${config.registryUrl}/subjects/${subject}/versions`, {
      method: 'POST', headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' }, body: JSON.stringify({ schema: JSON.stringify(schema) }),
    });
    const compatible = { ...seed, fields: [...seed.fields, { name: 'lang', type: ['null', 'string'], default: null }] };
    expect((await post(compatible)).status).toBe(200);
    const incompatible = { ...seed, fields: [...seed.fields, { name: 'mandatory', type: 'string' }] };
    const refused = await post(incompatible);
    expect(refused.status).toBe(409);
  });

  it('decodes bytes of a newer writer schema as the event\'s own type (schema resolution)', async () => {
    const subject = `${prefix}.seed.v1-value`;
    const seed = JSON.parse(readSchema('seed.avsc'));
    const newer = { ...seed, fields: [...seed.fields, { name: 'region', type: ['null', 'string'], default: null }] };
    const response = await fetch(`${config.registryUrl}/subjects/${subject}/versions`, {
      method: 'POST', headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' }, body: JSON.stringify({ schema: JSON.stringify(newer) }),
    });
    expect(response.status).toBe(200);
    const { id } = (await response.json()) as { id: number };
    const header = Buffer.alloc(5);
    header.writeUInt32BE(id, 1);
    const bytes = Buffer.concat([header, avro.Type.forSchema(newer).toBuffer({ ...sampleSeed(), region: 'Lagos' })]);
    const decoded = await serde.decode('seed', bytes);
    expect(decoded).toEqual(sampleSeed());
    expect(decoded).not.toHaveProperty('region');
  });

  it('refuses bytes written with another event\'s schema instead of passing them on mistyped', async () => {
    const seedBytes = await serde.encodeValue('seed', sampleSeed());
    await expect(serde.decode('enriched', seedBytes)).rejects.toMatchObject({ code: 'PH_SERDE_DECODE', message: expect.stringContaining('cannot be read as enriched') });
  });

  it('tells an unreachable registry (transient, waited out) from an unknown schema id (permanent)', async () => {
    const bytes = await serde.encodeValue('seed', sampleSeed());
    const dead = new Serde('http://127.0.0.1:1/apis/ccompat/v7', prefix);
    await expect(dead.decode('seed', bytes)).rejects.toMatchObject({ code: 'PH_SERDE_REGISTRY_UNAVAILABLE', transient: true, dependency: 'registry' });
    await expect(dead.encodeValue('seed', sampleSeed())).rejects.toMatchObject({ code: 'PH_SERDE_REGISTRY_UNAVAILABLE', transient: true });
    const unknown = Buffer.from(bytes);
    unknown.writeUInt32BE(2_000_000_000, 1);
    await expect(serde.decode('seed', unknown)).rejects.toMatchObject({ code: 'PH_SERDE_DECODE', transient: false });
  });
});

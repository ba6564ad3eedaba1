import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_MAX_EVENT_BYTES, readSchema, replacementCharPath, Serde } from '../../../runtime/serde.ts';
import { samplePersona, sampleSeed } from '../../helpers/samples.ts';

/** A registry nobody answers on: any call to it is PH_SERDE_REGISTRY_UNAVAILABLE, so a test can tell whether decode got that far. */
const NOWHERE = 'http://127.0.0.1:1/apis/ccompat/v7';

const seedType = avro.Type.forSchema(JSON.parse(readSchema('seed.avsc')) as avro.Schema);
const personaType = avro.Type.forSchema(JSON.parse(readSchema('persona.avsc')) as avro.Schema);

/** Confluent wire format: magic 0, schema id, Avro payload. */
function framed(id: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(id, 1);
  return Buffer.concat([header, payload]);
}

/** Replaces the first occurrence of `marker`'s UTF-8 bytes with `bytes` of the same length (so Avro's length prefix still holds). */
function patch(buffer: Buffer, marker: string, bytes: number[]): Buffer {
  const at = buffer.indexOf(Buffer.from(marker, 'utf8'));
  expect(at, `marker ${marker} in the payload`).toBeGreaterThanOrEqual(0);
  expect(bytes).toHaveLength(Buffer.byteLength(marker));
  const out = Buffer.from(buffer);
  Buffer.from(bytes).copy(out, at);
  return out;
}

describe('Serde: event size bound (PERSONAHUB_MAX_EVENT_BYTES)', () => {
  it('refuses an event larger than the bound before decoding anything, permanently', async () => {
    const serde = new Serde(NOWHERE, 'p', { maxEventBytes: 100 });
    // Not even framed: the size is checked first, so the code says why the event is poison, and no registry call is made.
    await expect(serde.decode('seed', Buffer.alloc(101, 7))).rejects.toMatchObject({ code: 'PH_EVENT_TOO_LARGE', transient: false, message: expect.stringContaining('101 bytes') });
    await expect(serde.decode('draft', framed(1, Buffer.alloc(200)))).rejects.toMatchObject({ code: 'PH_EVENT_TOO_LARGE', transient: false });
  });

  it('counts the key with the value, and accepts an event exactly at the bound', async () => {
    const serde = new Serde(NOWHERE, 'p', { maxEventBytes: 100 });
    await expect(serde.decode('seed', framed(1, Buffer.alloc(55)), Buffer.alloc(41))).rejects.toMatchObject({ code: 'PH_EVENT_TOO_LARGE', message: expect.stringContaining('101 bytes') });
    // At the bound it is decoded: here that means asking the registry, which is not there (transient, not poison).
    await expect(serde.decode('seed', framed(1, Buffer.alloc(55)), Buffer.alloc(40))).rejects.toMatchObject({ code: 'PH_SERDE_REGISTRY_UNAVAILABLE', transient: true });
    await expect(serde.decode('seed', framed(1, Buffer.alloc(95)))).rejects.toMatchObject({ code: 'PH_SERDE_REGISTRY_UNAVAILABLE' });
  });

  it('does not apply the bound to DLQ records, which carry an oversize event whole so it can be replayed', async () => {
    const serde = new Serde(NOWHERE, 'p', { maxEventBytes: 100 });
    await expect(serde.decode('dlq', framed(1, Buffer.alloc(500)))).rejects.toMatchObject({ code: 'PH_SERDE_REGISTRY_UNAVAILABLE' });
  });

  it('defaults to 1,000,000 bytes when built without the setting', async () => {
    expect(DEFAULT_MAX_EVENT_BYTES).toBe(1_000_000);
    const serde = new Serde(NOWHERE, 'p');
    await expect(serde.decode('seed', framed(1, Buffer.alloc(DEFAULT_MAX_EVENT_BYTES - 5)))).rejects.toMatchObject({ code: 'PH_SERDE_REGISTRY_UNAVAILABLE' });
    await expect(serde.decode('seed', framed(1, Buffer.alloc(DEFAULT_MAX_EVENT_BYTES - 4)))).rejects.toMatchObject({ code: 'PH_EVENT_TOO_LARGE' });
  });
});

describe('Serde: invalid UTF-8 inside Avro strings', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  /** A Serde whose registry knows schema id 7 as `writer` (the registry client's lookup stubbed; nothing else is). */
  function serdeWithWriter(writer: avro.Type): Serde {
    vi.spyOn(SchemaRegistry.prototype, 'getSchema').mockImplementation(async (id: number) => {
      if (id !== 7) throw Object.assign(new Error(`no schema ${id}`), { status: 404 });
      return writer;
    });
    return new Serde(NOWHERE, 'p');
  }

  it.each([
    ['an invalid two-byte sequence', [0xc3, 0x28]],
    ['a lone continuation byte', [0x41, 0x80]],
    ['an overlong encoding of NUL', [0xc0, 0x80]],
    ['a UTF-16 surrogate encoded in UTF-8', [0xed, 0xa0, 0x80]],
    ['a four-byte sequence cut short', [0xf0, 0x9f, 0x98]],
  ])('refuses %s in a seed\'s text as PH_SERDE_INVALID_UTF8 (avsc alone would hand back U+FFFD)', async (_what, bytes) => {
    const serde = serdeWithWriter(seedType);
    const marker = 'Z'.repeat(bytes.length);
    const payload = patch(seedType.toBuffer(sampleSeed(`Opening hours ${marker} extended for exam season.`)), marker, bytes);
    // What the check is there for: avsc decodes these bytes without complaint.
    expect((seedType.fromBuffer(payload) as { text: string }).text).toContain('\uFFFD');
    await expect(serde.decode('seed', framed(7, payload))).rejects.toMatchObject({ code: 'PH_SERDE_INVALID_UTF8', transient: false, message: expect.stringContaining('at text') });
  });

  it('accepts a legitimate U+FFFD, which re-encodes to the same bytes', async () => {
    const serde = serdeWithWriter(seedType);
    const seed = sampleSeed('A scanned page where OCR left \uFFFD\uFFFD in place of a smudged word.');
    expect(await serde.decode('seed', framed(7, seedType.toBuffer(seed)))).toEqual(seed);
  });

  it('refuses bad bytes next to a legitimate U+FFFD', async () => {
    const serde = serdeWithWriter(seedType);
    const payload = patch(seedType.toBuffer(sampleSeed('Legit \uFFFD here, and ZZ there.')), 'ZZ', [0xc3, 0x28]);
    await expect(serde.decode('seed', framed(7, payload))).rejects.toMatchObject({ code: 'PH_SERDE_INVALID_UTF8' });
  });

  it('finds bad bytes in any string of a nested record, and names where', async () => {
    const serde = serdeWithWriter(personaType);
    const persona = samplePersona({ traits: ['warm', 'QQQQ', 'curious'] });
    const payload = patch(personaType.toBuffer(persona), 'QQQQ', [0x6f, 0xff, 0xfe, 0x6b]);
    await expect(serde.decode('enriched', framed(7, payload))).rejects.toMatchObject({ code: 'PH_SERDE_INVALID_UTF8', message: expect.stringContaining('traits[1]') });
    // The same persona with valid text decodes.
    expect((await serde.decode('enriched', framed(7, personaType.toBuffer(persona)))).traits).toEqual(['warm', 'QQQQ', 'curious']);
  });

  it('still calls truncated Avro PH_SERDE_DECODE, and an unknown schema id too', async () => {
    const serde = serdeWithWriter(seedType);
    const payload = seedType.toBuffer(sampleSeed());
    await expect(serde.decode('seed', framed(7, payload.subarray(0, payload.length - 3)))).rejects.toMatchObject({ code: 'PH_SERDE_DECODE', transient: false });
    await expect(serde.decode('seed', framed(8, payload))).rejects.toMatchObject({ code: 'PH_SERDE_DECODE', transient: false });
  });
});

describe('replacementCharPath', () => {
  it('walks records, arrays and map keys, skips bytes, and says where the first U+FFFD is', () => {
    expect(replacementCharPath({ a: 'x', b: [1, 'y'], c: { d: null } })).toBeUndefined();
    expect(replacementCharPath({ a: 'x', b: [1, 'y\uFFFD'] })).toBe('b[1]');
    expect(replacementCharPath({ m: { 'k\uFFFD': 1 } })).toBe('m.k\uFFFD');
    expect(replacementCharPath({ raw: Buffer.from('\uFFFD') })).toBeUndefined();
    expect(replacementCharPath('\uFFFD')).toBe('(value)');
  });
});

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSafetensorsHeader, SafetensorsFile } from '../../../../models/weights/safetensors.ts';

/** Builds a safetensors file: 8-byte LE header length, JSON header, then the raw data in the given order. */
function build(header: Record<string, unknown>, data: Buffer): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([prefix, json, data]);
}

const f32 = Buffer.alloc(6 * 4);
[1, 2, 3, -4, 0.5, 1e-3].forEach((v, i) => f32.writeFloatLE(v, i * 4));
const f16 = Buffer.from([0x00, 0x3c, 0x00, 0xc0]); // 1, -2
const bf16 = Buffer.from([0x80, 0x3f, 0x40, 0xc0]); // 1, -3
const i64 = Buffer.alloc(16);
const data = Buffer.concat([f32, f16, bf16, i64]);
const header = {
  __metadata__: { format: 'pt' },
  // Deliberately not in data order: the spec does not require JSON order to match.
  half: { dtype: 'F16', shape: [2], data_offsets: [24, 28] },
  weight: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] },
  brain: { dtype: 'BF16', shape: [1, 2], data_offsets: [28, 32] },
  ids: { dtype: 'I64', shape: [1, 2], data_offsets: [32, 48] },
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'safetensors-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('safetensors header parsing', () => {
  it('parses tensors (in data order) and metadata', () => {
    const file = build(header, data);
    const parsed = parseSafetensorsHeader(file, file.length);
    expect(parsed.metadata).toEqual({ format: 'pt' });
    expect([...parsed.tensors.keys()]).toEqual(['weight', 'half', 'brain', 'ids']);
    expect(parsed.tensors.get('weight')).toEqual({ dtype: 'F32', shape: [2, 3], begin: 0, end: 24 });
    expect(parsed.headerLength).toBe(file.readUInt32LE(0));
  });

  it('rejects a length prefix beyond the file or the format limit', () => {
    const file = build(header, data);
    expect(() => parseSafetensorsHeader(file.subarray(0, 20))).toThrow(/ends inside its JSON header/);
    const huge = Buffer.alloc(16);
    huge.writeBigUInt64LE(2n ** 40n);
    expect(() => parseSafetensorsHeader(huge)).toThrow(/header length .* out of range/);
    expect(() => parseSafetensorsHeader(Buffer.alloc(4))).toThrow(/8-byte length prefix/);
  });

  it('rejects malformed JSON and entries', () => {
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(5n);
    expect(() => parseSafetensorsHeader(Buffer.concat([prefix, Buffer.from('{oops')]))).toThrow(/not valid JSON/);
    expect(() => parseSafetensorsHeader(build({ t: { dtype: 'Q4', shape: [1], data_offsets: [0, 1] } }, Buffer.alloc(1)))).toThrow(/unknown dtype Q4/);
    expect(() => parseSafetensorsHeader(build({ t: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, Buffer.alloc(4)))).toThrow(/invalid shape/);
    expect(() => parseSafetensorsHeader(build({ t: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, Buffer.alloc(4)))).toThrow(/spans 4 bytes but F32\[2\] needs 8/);
  });

  it('rejects holes, overlaps and trailing bytes', () => {
    const hole = { a: { dtype: 'U8', shape: [1], data_offsets: [0, 1] }, b: { dtype: 'U8', shape: [1], data_offsets: [2, 3] } };
    expect(() => parseSafetensorsHeader(build(hole, Buffer.alloc(3)))).toThrow(/hole or overlap/);
    const overlap = { a: { dtype: 'U8', shape: [2], data_offsets: [0, 2] }, b: { dtype: 'U8', shape: [1], data_offsets: [1, 2] } };
    expect(() => parseSafetensorsHeader(build(overlap, Buffer.alloc(2)))).toThrow(/hole or overlap/);
    const file = build({ a: { dtype: 'U8', shape: [1], data_offsets: [0, 1] } }, Buffer.alloc(2));
    expect(() => parseSafetensorsHeader(file, file.length)).toThrow(/the file has/);
  });
});

describe('SafetensorsFile', () => {
  it('reads F32, F16 and BF16 tensors as float32', async () => {
    const path = join(dir, 'model.safetensors');
    await writeFile(path, build(header, data));
    const st = await SafetensorsFile.open(path);
    try {
      expect(Array.from(await st.readFloat32('weight'))).toEqual([1, 2, 3, -4, 0.5, Math.fround(1e-3)]);
      expect(Array.from(await st.readFloat32('half'))).toEqual([1, -2]);
      expect(Array.from(await st.readFloat32('brain'))).toEqual([1, -3]);
      await expect(st.readFloat32('ids')).rejects.toThrow(/I64 is not a floating-point type/);
      await expect(st.readFloat32('nope')).rejects.toThrow(/no tensor named nope/);
    } finally {
      await st.close();
    }
  });

  it('names the file when it is damaged', async () => {
    const path = join(dir, 'truncated.safetensors');
    await writeFile(path, build(header, data).subarray(0, 100));
    await expect(SafetensorsFile.open(path)).rejects.toThrow(new RegExp(`${path}: safetensors: `));
  });
});

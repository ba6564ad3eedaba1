import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  float16BitsToFloat32,
  float32ToFloat16Bits,
  gguf,
  readGgufHeader,
  readGgufTensor,
  writeGguf,
  type GgufValue,
} from '../../../../models/weights/gguf.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gguf-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const metadata: Array<readonly [string, GgufValue]> = [
  ['general.architecture', gguf.string('bert')],
  ['test.u8', gguf.uint8(255)],
  ['test.i8', gguf.int8(-128)],
  ['test.u16', gguf.uint16(65535)],
  ['test.i16', gguf.int16(-32768)],
  ['test.u32', gguf.uint32(4294967295)],
  ['test.i32', gguf.int32(-2147483648)],
  ['test.f32', gguf.float32(0.5)],
  ['test.f64', gguf.float64(Math.PI)],
  ['test.u64', gguf.uint64(2n ** 64n - 1n)],
  ['test.i64', gguf.int64(-(2n ** 63n))],
  ['test.bool', gguf.bool(true)],
  ['test.unicode', gguf.string('▁naïve 東京 🦙')],
  ['test.strings', gguf.strings(['[CLS]', '▁hello', 'ing', ''])],
  ['test.i32s', gguf.numbers('int32', [1, -2, 3])],
  ['test.f32s', gguf.numbers('float32', [0.25, -1.5])],
  ['test.bools', gguf.bools([true, false])],
  ['test.u64s', gguf.bigints('uint64', [0n, 2n ** 40n])],
];

const vector = Float32Array.from([1, -2, 3.5, 0]);
const matrix = Float32Array.from({ length: 3 * 5 }, (_, i) => i / 7 - 1);
const cube = Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => Math.sin(i));

describe('GGUF writer/reader round trip', () => {
  it('keeps every metadata type, tensor layout and tensor value', async () => {
    const path = join(dir, 'roundtrip.gguf');
    const bytes = await writeGguf(path, {
      metadata,
      tensors: [
        { name: 'v', shape: [4], type: 'F32', data: () => vector },
        { name: 'm', shape: [3, 5], type: 'F32', data: () => matrix },
        { name: 'c', shape: [2, 3, 4], type: 'F16', data: async () => cube },
      ],
    });
    expect((await stat(path)).size).toBe(bytes);

    const raw = await readFile(path);
    expect(raw.toString('latin1', 0, 4)).toBe('GGUF');
    expect(raw.readUInt32LE(4)).toBe(3);
    expect(raw.readBigUInt64LE(8)).toBe(3n);
    expect(raw.readBigUInt64LE(16)).toBe(BigInt(metadata.length));

    const file = await readGgufHeader(path);
    expect(file.version).toBe(3);
    expect(file.alignment).toBe(32);
    expect([...file.metadata.entries()]).toEqual(metadata);
    expect(file.dataOffset % 32).toBe(0);
    expect(file.tensors.map((t) => [t.name, t.ne, t.shape, t.type])).toEqual([
      ['v', [4], [4], 0],
      ['m', [5, 3], [3, 5], 0], // ne is the row-major shape reversed
      ['c', [4, 3, 2], [2, 3, 4], 1],
    ]);
    for (const t of file.tensors) expect(t.offset % 32).toBe(0);
    // The file ends at the last tensor's aligned end: 16 B (v) → 32, 60 B (m) → 64, 48 B (c) → 48 padded to 64.
    expect(file.tensors.map((t) => t.offset)).toEqual([0, 32, 96]);
    expect(bytes).toBe(file.dataOffset + 96 + 64);

    expect(await readGgufTensor(path, file, 'v')).toEqual(vector);
    expect(await readGgufTensor(path, file, 'm')).toEqual(matrix);
    const c = await readGgufTensor(path, file, 'c');
    for (const [i, x] of cube.entries()) expect(Math.abs((c[i] ?? NaN) - x)).toBeLessThanOrEqual(Math.abs(x) * 2 ** -11 + 1e-7);
  });

  it('writes general.alignment and aligns to it when it is not the default', async () => {
    const path = join(dir, 'align64.gguf');
    await writeGguf(path, {
      metadata: [['general.architecture', gguf.string('test')]],
      tensors: [
        { name: 'a', shape: [3], type: 'F32', data: () => Float32Array.from([1, 2, 3]) },
        { name: 'b', shape: [1], type: 'F32', data: () => Float32Array.from([4]) },
      ],
      alignment: 64,
    });
    const file = await readGgufHeader(path);
    expect(file.metadata.get('general.alignment')).toEqual(gguf.uint32(64));
    expect(file.alignment).toBe(64);
    expect(file.dataOffset % 64).toBe(0);
    expect(file.tensors.map((t) => t.offset)).toEqual([0, 64]);
    expect(await readGgufTensor(path, file, 'b')).toEqual(Float32Array.from([4]));
  });

  it('reads headers larger than its first read (large vocabularies)', async () => {
    const path = join(dir, 'bigheader.gguf');
    const tokens = Array.from({ length: 200_000 }, (_, i) => `▁token${i}`);
    await writeGguf(path, { metadata: [['tokenizer.ggml.tokens', gguf.strings(tokens)]], tensors: [] });
    const file = await readGgufHeader(path);
    const read = file.metadata.get('tokenizer.ggml.tokens');
    expect(read?.kind === 'array' && read.itemKind === 'string' ? read.values.length : 0).toBe(200_000);
  });
});

describe('GGUF writer validation', () => {
  const write = (input: Parameters<typeof writeGguf>[1]): Promise<number> => writeGguf(join(dir, 'bad.gguf'), input);
  const one = { name: 't', shape: [2], type: 'F32' as const, data: () => Float32Array.from([1, 2]) };

  it('rejects values outside their type', async () => {
    await expect(write({ metadata: [['k', gguf.uint8(256)]], tensors: [] })).rejects.toThrow(/k: 256 is not a valid uint8/);
    await expect(write({ metadata: [['k', gguf.uint32(-1)]], tensors: [] })).rejects.toThrow(/uint32/);
    await expect(write({ metadata: [['k', gguf.int32(1.5)]], tensors: [] })).rejects.toThrow(/int32/);
    await expect(write({ metadata: [['k', gguf.uint64(-1n)]], tensors: [] })).rejects.toThrow(/uint64/);
    await expect(write({ metadata: [['k', gguf.numbers('uint16', [1, 70000])]], tensors: [] })).rejects.toThrow(/uint16/);
  });

  it('rejects duplicate keys and tensor names', async () => {
    await expect(write({ metadata: [['k', gguf.bool(true)], ['k', gguf.bool(false)]], tensors: [] })).rejects.toThrow(/duplicate GGUF metadata key k/);
    await expect(write({ metadata: [], tensors: [one, one] })).rejects.toThrow(/duplicate tensor name t/);
  });

  it('rejects data that does not fit the shape, and unsupported shapes', async () => {
    await expect(write({ metadata: [], tensors: [{ ...one, shape: [3] }] })).rejects.toThrow(/needs 3 values, got 2/);
    await expect(write({ metadata: [], tensors: [{ ...one, shape: [] }] })).rejects.toThrow(/unsupported shape/);
    await expect(write({ metadata: [], tensors: [{ ...one, shape: [1, 1, 1, 1, 2] }] })).rejects.toThrow(/unsupported shape/);
    await expect(write({ metadata: [], tensors: [], alignment: 12 })).rejects.toThrow(/alignment/);
  });

  it('refuses to read a file that is not GGUF', async () => {
    const path = join(dir, 'not.gguf');
    await writeFile(path, 'GGML and more bytes here');
    await expect(readGgufHeader(path)).rejects.toThrow(/bad magic/);
  });
});

describe('float16 conversion', () => {
  it('encodes known values exactly, rounding half to even', () => {
    const cases: Array<[number, number]> = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [0.5, 0x3800],
      [65504, 0x7bff], // largest finite half
      [65520, 0x7c00], // rounds up to Inf
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // exactly half of it: ties to even (0)
      [3 * 2 ** -25, 0x0002], // 1.5 subnormal steps: ties to even (2)
      [1 + 2 ** -11, 0x3c00], // halfway between 1 and the next half: ties to even
      [1 + 3 * 2 ** -11, 0x3c02],
      [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above halfway rounds up
    ];
    for (const [value, bits] of cases) expect([value, float32ToFloat16Bits(value)]).toEqual([value, bits]);
    expect(Number.isNaN(float16BitsToFloat32(float32ToFloat16Bits(NaN)))).toBe(true);
  });

  it('decodes every finite half exactly back to the same bits', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      if ((bits & 0x7c00) === 0x7c00) continue; // Inf and NaN
      expect(float32ToFloat16Bits(float16BitsToFloat32(bits))).toBe(bits);
    }
  });
});

/**
 * GGUF v3 writer and reader (the file format of llama.cpp, which node-llama-cpp loads).
 *
 * Layout (all integers little-endian):
 *   magic "GGUF" | u32 version=3 | u64 tensor_count | u64 kv_count
 *   kv_count × (string key | u32 value_type | value)
 *   tensor_count × (string name | u32 n_dims | n_dims × u64 ne | u32 ggml_type | u64 offset)
 *   padding to `general.alignment` (default 32) | tensor data, each tensor starting at an aligned offset
 * A string is u64 byte length + UTF-8 bytes (no terminator); an array is u32 item type + u64 count + items.
 * `ne` lists dimensions innermost first, so it is the reverse of a row-major (PyTorch/safetensors) shape.
 *
 * This is the project's only GGUF code, so it stays general: every scalar type, arrays of any scalar type,
 * F32 and F16 tensors. Nested arrays are allowed by the spec but used by no model we write, so they are not.
 */
import { open } from 'node:fs/promises';
import { Buffer } from 'node:buffer';

const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** Value type ids from the GGUF spec (`gguf_type`). */
const VALUE_TYPE_IDS = {
  uint8: 0,
  int8: 1,
  uint16: 2,
  int16: 3,
  uint32: 4,
  int32: 5,
  float32: 6,
  bool: 7,
  string: 8,
  array: 9,
  uint64: 10,
  int64: 11,
  float64: 12,
} as const;

type NumberKind = 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64';
type BigIntKind = 'uint64' | 'int64';
export type GgufScalarKind = NumberKind | BigIntKind | 'bool' | 'string';

export type GgufScalar =
  | { kind: NumberKind; value: number }
  | { kind: BigIntKind; value: bigint }
  | { kind: 'bool'; value: boolean }
  | { kind: 'string'; value: string };

export type GgufArray =
  | { kind: 'array'; itemKind: NumberKind; values: readonly number[] }
  | { kind: 'array'; itemKind: BigIntKind; values: readonly bigint[] }
  | { kind: 'array'; itemKind: 'bool'; values: readonly boolean[] }
  | { kind: 'array'; itemKind: 'string'; values: readonly string[] };

export type GgufValue = GgufScalar | GgufArray;

/** Constructors, so metadata reads as `['bert.block_count', gguf.uint32(6)]`. */
export const gguf = {
  uint8: (value: number): GgufValue => ({ kind: 'uint8', value }),
  int8: (value: number): GgufValue => ({ kind: 'int8', value }),
  uint16: (value: number): GgufValue => ({ kind: 'uint16', value }),
  int16: (value: number): GgufValue => ({ kind: 'int16', value }),
  uint32: (value: number): GgufValue => ({ kind: 'uint32', value }),
  int32: (value: number): GgufValue => ({ kind: 'int32', value }),
  float32: (value: number): GgufValue => ({ kind: 'float32', value }),
  float64: (value: number): GgufValue => ({ kind: 'float64', value }),
  uint64: (value: bigint): GgufValue => ({ kind: 'uint64', value }),
  int64: (value: bigint): GgufValue => ({ kind: 'int64', value }),
  bool: (value: boolean): GgufValue => ({ kind: 'bool', value }),
  string: (value: string): GgufValue => ({ kind: 'string', value }),
  numbers: (itemKind: NumberKind, values: readonly number[]): GgufValue => ({ kind: 'array', itemKind, values }),
  bigints: (itemKind: BigIntKind, values: readonly bigint[]): GgufValue => ({ kind: 'array', itemKind, values }),
  bools: (values: readonly boolean[]): GgufValue => ({ kind: 'array', itemKind: 'bool', values }),
  strings: (values: readonly string[]): GgufValue => ({ kind: 'array', itemKind: 'string', values }),
};

/** ggml tensor types this module can write and decode. Other ids (quantized types) are only reported by the reader. */
export const GGML_TYPE = { F32: 0, F16: 1 } as const;
export type GgmlWritableType = keyof typeof GGML_TYPE;
const BYTES_PER_ELEMENT: Record<GgmlWritableType, number> = { F32: 4, F16: 2 };

export interface GgufTensor {
  name: string;
  /** Row-major shape, outermost dimension first (as PyTorch and safetensors give it); written reversed as `ne`. */
  shape: readonly number[];
  /** Storage type in the file; F16 data is rounded to nearest-even from the float32 values. */
  type: GgmlWritableType;
  /** Called once, when the tensor is written, so a large model never has to be in memory all at once. */
  data: () => Float32Array | Promise<Float32Array>;
}

export interface GgufWriteInput {
  /** Key order is kept; keys must be unique. `general.alignment` is added when alignment is not the default. */
  metadata: ReadonlyArray<readonly [string, GgufValue]>;
  tensors: readonly GgufTensor[];
  alignment?: number;
}

const INT_RANGES: Record<Exclude<NumberKind, 'float32' | 'float64'>, readonly [number, number]> = {
  uint8: [0, 0xff],
  int8: [-0x80, 0x7f],
  uint16: [0, 0xffff],
  int16: [-0x8000, 0x7fff],
  uint32: [0, 0xffffffff],
  int32: [-0x80000000, 0x7fffffff],
};
const BIGINT_RANGES: Record<BigIntKind, readonly [bigint, bigint]> = {
  uint64: [0n, 0xffffffffffffffffn],
  int64: [-0x8000000000000000n, 0x7fffffffffffffffn],
};

/** Growable little-endian byte sink for the header; the tensor data goes straight to the file instead. */
class ByteWriter {
  private buf = Buffer.alloc(1 << 16);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = Buffer.alloc(size);
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  u8(v: number): void { this.reserve(1); this.buf.writeUInt8(v, this.length); this.length += 1; }
  i8(v: number): void { this.reserve(1); this.buf.writeInt8(v, this.length); this.length += 1; }
  u16(v: number): void { this.reserve(2); this.buf.writeUInt16LE(v, this.length); this.length += 2; }
  i16(v: number): void { this.reserve(2); this.buf.writeInt16LE(v, this.length); this.length += 2; }
  u32(v: number): void { this.reserve(4); this.buf.writeUInt32LE(v, this.length); this.length += 4; }
  i32(v: number): void { this.reserve(4); this.buf.writeInt32LE(v, this.length); this.length += 4; }
  f32(v: number): void { this.reserve(4); this.buf.writeFloatLE(v, this.length); this.length += 4; }
  f64(v: number): void { this.reserve(8); this.buf.writeDoubleLE(v, this.length); this.length += 8; }
  u64(v: bigint): void { this.reserve(8); this.buf.writeBigUInt64LE(v, this.length); this.length += 8; }
  i64(v: bigint): void { this.reserve(8); this.buf.writeBigInt64LE(v, this.length); this.length += 8; }
  string(s: string): void {
    const bytes = Buffer.from(s, 'utf8');
    this.u64(BigInt(bytes.length));
    this.reserve(bytes.length);
    bytes.copy(this.buf, this.length);
    this.length += bytes.length;
  }
  zeros(n: number): void { this.reserve(n); this.buf.fill(0, this.length, this.length + n); this.length += n; }
  bytes(): Buffer { return this.buf.subarray(0, this.length); }
}

function checkNumber(kind: NumberKind, v: number, where: string): void {
  if (kind === 'float32' || kind === 'float64') {
    if (typeof v !== 'number') throw new TypeError(`${where}: ${kind} value must be a number`);
    return;
  }
  const [lo, hi] = INT_RANGES[kind];
  // The Buffer writers would throw too, but without saying which key was wrong.
  if (!Number.isInteger(v) || v < lo || v > hi) throw new RangeError(`${where}: ${v} is not a valid ${kind}`);
}

function checkBigInt(kind: BigIntKind, v: bigint, where: string): void {
  const [lo, hi] = BIGINT_RANGES[kind];
  if (typeof v !== 'bigint' || v < lo || v > hi) throw new RangeError(`${where}: ${String(v)} is not a valid ${kind}`);
}

function writeNumber(w: ByteWriter, kind: NumberKind, v: number): void {
  switch (kind) {
    case 'uint8': return w.u8(v);
    case 'int8': return w.i8(v);
    case 'uint16': return w.u16(v);
    case 'int16': return w.i16(v);
    case 'uint32': return w.u32(v);
    case 'int32': return w.i32(v);
    case 'float32': return w.f32(v);
    case 'float64': return w.f64(v);
  }
}

function writeValue(w: ByteWriter, value: GgufValue, where: string): void {
  w.u32(VALUE_TYPE_IDS[value.kind]);
  switch (value.kind) {
    case 'bool': w.u8(value.value ? 1 : 0); return;
    case 'string': w.string(value.value); return;
    case 'uint64': checkBigInt(value.kind, value.value, where); w.u64(value.value); return;
    case 'int64': checkBigInt(value.kind, value.value, where); w.i64(value.value); return;
    case 'array': writeArray(w, value, where); return;
    default: checkNumber(value.kind, value.value, where); writeNumber(w, value.kind, value.value);
  }
}

function writeArray(w: ByteWriter, arr: GgufArray, where: string): void {
  w.u32(VALUE_TYPE_IDS[arr.itemKind]);
  w.u64(BigInt(arr.values.length));
  switch (arr.itemKind) {
    case 'bool':
      for (const v of arr.values) w.u8(v ? 1 : 0);
      return;
    case 'string':
      for (const v of arr.values) w.string(v);
      return;
    case 'uint64':
    case 'int64': {
      const kind = arr.itemKind;
      for (const v of arr.values) {
        checkBigInt(kind, v, where);
        if (kind === 'uint64') w.u64(v); else w.i64(v);
      }
      return;
    }
    default: {
      const kind = arr.itemKind;
      for (const v of arr.values) {
        checkNumber(kind, v, where);
        writeNumber(w, kind, v);
      }
    }
  }
}

const alignUp = (n: number, alignment: number): number => Math.ceil(n / alignment) * alignment;

function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

const F32_SCRATCH = new Float32Array(1);
const F32_SCRATCH_BITS = new Uint32Array(F32_SCRATCH.buffer);

/** float32 → IEEE 754 binary16 bits, round to nearest even (what numpy's astype(float16) does). */
export function float32ToFloat16Bits(value: number): number {
  F32_SCRATCH[0] = value;
  const x = F32_SCRATCH_BITS[0] ?? 0;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0); // Inf, or a quiet NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // too large: Inf
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal: ±0
    mant |= 0x800000; // make the implicit leading 1 explicit, then shift into subnormal position
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let h = mant >>> shift;
    if (rest > half || (rest === half && (h & 1) === 1)) h += 1;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // Carry out of the mantissa correctly bumps the exponent (and reaches Inf at the top).
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h += 1;
  return sign | h;
}

/** IEEE 754 binary16 bits → number (exact). */
export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function encodeTensor(t: GgufTensor, data: Float32Array): Buffer {
  const expected = elementCount(t.shape);
  if (data.length !== expected) {
    throw new RangeError(`tensor ${t.name}: shape [${t.shape.join(', ')}] needs ${expected} values, got ${data.length}`);
  }
  if (t.type === 'F32') {
    const out = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    // GGUF is little-endian; copy and swap only on a big-endian host.
    return HOST_IS_LITTLE_ENDIAN ? out : Buffer.from(out).swap32();
  }
  const out = Buffer.alloc(data.length * 2);
  for (let i = 0; i < data.length; i++) out.writeUInt16LE(float32ToFloat16Bits(data[i] ?? 0), i * 2);
  return out;
}

/** Serialises everything before the tensor data; also returns each tensor's data offset. */
function encodeHeader(input: GgufWriteInput, alignment: number): { header: Buffer; offsets: number[]; dataBytes: number } {
  const metadata = [...input.metadata];
  const keys = new Set<string>();
  for (const [key] of metadata) {
    if (keys.has(key)) throw new Error(`duplicate GGUF metadata key ${key}`);
    keys.add(key);
  }
  if (alignment !== GGUF_DEFAULT_ALIGNMENT && !keys.has('general.alignment')) {
    metadata.push(['general.alignment', gguf.uint32(alignment)]);
  }
  const names = new Set<string>();
  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(GGUF_VERSION);
  w.u64(BigInt(input.tensors.length));
  w.u64(BigInt(metadata.length));
  for (const [key, value] of metadata) {
    w.string(key);
    writeValue(w, value, key);
  }
  const offsets: number[] = [];
  let offset = 0;
  for (const t of input.tensors) {
    if (names.has(t.name)) throw new Error(`duplicate tensor name ${t.name}`);
    names.add(t.name);
    if (t.shape.length === 0 || t.shape.length > 4 || t.shape.some((d) => !Number.isInteger(d) || d <= 0)) {
      // ggml tensors have 1 to 4 dimensions (GGML_MAX_DIMS) and no empty ones.
      throw new RangeError(`tensor ${t.name}: unsupported shape [${t.shape.join(', ')}]`);
    }
    w.string(t.name);
    w.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) w.u64(BigInt(d));
    w.u32(GGML_TYPE[t.type]);
    w.u64(BigInt(offset));
    offsets.push(offset);
    offset = alignUp(offset + elementCount(t.shape) * BYTES_PER_ELEMENT[t.type], alignment);
  }
  w.zeros(alignUp(w.length, alignment) - w.length);
  return { header: w.bytes(), offsets, dataBytes: offset };
}

/**
 * Writes a GGUF v3 file at `path` (created or truncated). Callers that need atomicity write to a temporary
 * name and rename. Returns the file size in bytes.
 */
export async function writeGguf(
  path: string,
  input: GgufWriteInput,
  onTensor?: (done: number, total: number) => void,
): Promise<number> {
  const alignment = input.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment <= 0 || alignment % 8 !== 0) {
    throw new RangeError(`GGUF alignment must be a positive multiple of 8, got ${alignment}`);
  }
  const { header, offsets, dataBytes } = encodeHeader(input, alignment);
  const fh = await open(path, 'w');
  try {
    await fh.write(header, 0, header.length, 0);
    for (const [i, t] of input.tensors.entries()) {
      const bytes = encodeTensor(t, await t.data());
      const position = header.length + (offsets[i] ?? 0);
      await fh.write(bytes, 0, bytes.length, position);
      onTensor?.(i + 1, input.tensors.length);
    }
    // Pad the last tensor so the file length is what the offsets promise, as llama.cpp's own writer does.
    await fh.truncate(header.length + dataBytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return header.length + dataBytes;
}

export interface GgufTensorInfo {
  name: string;
  /** Dimensions as stored, innermost first. */
  ne: number[];
  /** Row-major shape (ne reversed). */
  shape: number[];
  /** ggml type id; GGML_TYPE lists the ones `readGgufTensor` decodes. */
  type: number;
  /** Offset from the start of the data section. */
  offset: number;
}

export interface GgufFile {
  version: number;
  alignment: number;
  metadata: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
  /** Absolute file offset of the data section. */
  dataOffset: number;
}

/** Thrown internally when the header runs past the bytes read so far, so the file reader can read more. */
class NeedMoreBytes extends Error {}

class ByteReader {
  pos = 0;
  constructor(private readonly buf: Buffer) {}
  private need(n: number): number {
    if (this.pos + n > this.buf.length) throw new NeedMoreBytes();
    const at = this.pos;
    this.pos += n;
    return at;
  }
  u8(): number { return this.buf.readUInt8(this.need(1)); }
  i8(): number { return this.buf.readInt8(this.need(1)); }
  u16(): number { return this.buf.readUInt16LE(this.need(2)); }
  i16(): number { return this.buf.readInt16LE(this.need(2)); }
  u32(): number { return this.buf.readUInt32LE(this.need(4)); }
  i32(): number { return this.buf.readInt32LE(this.need(4)); }
  f32(): number { return this.buf.readFloatLE(this.need(4)); }
  f64(): number { return this.buf.readDoubleLE(this.need(8)); }
  u64(): bigint { return this.buf.readBigUInt64LE(this.need(8)); }
  i64(): bigint { return this.buf.readBigInt64LE(this.need(8)); }
  /** u64 that must fit a JS number (counts, lengths, offsets). */
  size(): number {
    const v = this.u64();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`GGUF size field ${v} is too large`);
    return Number(v);
  }
  string(): string {
    const n = this.size();
    const at = this.need(n);
    return this.buf.toString('utf8', at, at + n);
  }
}

const KIND_BY_ID = new Map<number, GgufScalarKind | 'array'>(
  Object.entries(VALUE_TYPE_IDS).map(([k, v]) => [v, k as GgufScalarKind | 'array']),
);

function readNumber(r: ByteReader, kind: NumberKind): number {
  switch (kind) {
    case 'uint8': return r.u8();
    case 'int8': return r.i8();
    case 'uint16': return r.u16();
    case 'int16': return r.i16();
    case 'uint32': return r.u32();
    case 'int32': return r.i32();
    case 'float32': return r.f32();
    case 'float64': return r.f64();
  }
}

function readValue(r: ByteReader, key: string): GgufValue {
  const kind = KIND_BY_ID.get(r.u32());
  if (kind === undefined) throw new Error(`GGUF key ${key}: unknown value type`);
  switch (kind) {
    case 'bool': return gguf.bool(r.u8() !== 0);
    case 'string': return gguf.string(r.string());
    case 'uint64': return gguf.uint64(r.u64());
    case 'int64': return gguf.int64(r.i64());
    case 'array': {
      const itemKind = KIND_BY_ID.get(r.u32());
      const count = r.size();
      if (itemKind === undefined || itemKind === 'array') throw new Error(`GGUF key ${key}: unsupported array item type`);
      switch (itemKind) {
        case 'bool': return gguf.bools(Array.from({ length: count }, () => r.u8() !== 0));
        case 'string': return gguf.strings(Array.from({ length: count }, () => r.string()));
        case 'uint64': return gguf.bigints(itemKind, Array.from({ length: count }, () => r.u64()));
        case 'int64': return gguf.bigints(itemKind, Array.from({ length: count }, () => r.i64()));
        default: return gguf.numbers(itemKind, Array.from({ length: count }, () => readNumber(r, itemKind)));
      }
    }
    default: return { kind, value: readNumber(r, kind) };
  }
}

/** Parses a GGUF header from the start of a file. Throws NeedMoreBytes (internal) when `buf` is too short. */
function parseHeader(buf: Buffer): GgufFile {
  const r = new ByteReader(buf);
  if (r.u32() !== GGUF_MAGIC) throw new Error('not a GGUF file (bad magic)');
  const version = r.u32();
  if (version !== 2 && version !== 3) throw new Error(`unsupported GGUF version ${version}`);
  const tensorCount = r.size();
  const kvCount = r.size();
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < kvCount; i++) {
    const key = r.string();
    metadata.set(key, readValue(r, key));
  }
  const alignValue = metadata.get('general.alignment');
  const alignment = alignValue?.kind === 'uint32' ? alignValue.value : GGUF_DEFAULT_ALIGNMENT;
  const tensors: GgufTensorInfo[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = r.string();
    const nDims = r.u32();
    const ne = Array.from({ length: nDims }, () => r.size());
    const type = r.u32();
    const offset = r.size();
    tensors.push({ name, ne, shape: [...ne].reverse(), type, offset });
  }
  return { version, alignment, metadata, tensors, dataOffset: alignUp(r.pos, alignment) };
}

/** Reads only as much of the file as the header needs (GGUF headers of large vocabularies run to megabytes). */
export async function readGgufHeader(path: string): Promise<GgufFile> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    let length = Math.min(size, 1 << 20);
    for (;;) {
      const buf = Buffer.alloc(length);
      await fh.read(buf, 0, length, 0);
      try {
        return parseHeader(buf);
      } catch (err) {
        if (!(err instanceof NeedMoreBytes)) throw err;
        if (length === size) throw new Error(`GGUF file ${path} is truncated inside its header`);
        length = Math.min(size, length * 2);
      }
    }
  } finally {
    await fh.close();
  }
}

/** Reads one F32 or F16 tensor's values as float32. */
export async function readGgufTensor(path: string, file: GgufFile, name: string): Promise<Float32Array> {
  const info = file.tensors.find((t) => t.name === name);
  if (info === undefined) throw new Error(`GGUF file ${path} has no tensor ${name}`);
  const count = elementCount(info.ne);
  const bytesPer = info.type === GGML_TYPE.F32 ? 4 : info.type === GGML_TYPE.F16 ? 2 : 0;
  if (bytesPer === 0) throw new Error(`tensor ${name} has ggml type ${info.type}; only F32 and F16 are decoded`);
  const buf = Buffer.alloc(count * bytesPer);
  const fh = await open(path, 'r');
  try {
    const { bytesRead } = await fh.read(buf, 0, buf.length, file.dataOffset + info.offset);
    if (bytesRead !== buf.length) throw new Error(`GGUF file ${path} is truncated inside tensor ${name}`);
  } finally {
    await fh.close();
  }
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    out[i] = bytesPer === 4 ? buf.readFloatLE(i * 4) : float16BitsToFloat32(buf.readUInt16LE(i * 2));
  }
  return out;
}

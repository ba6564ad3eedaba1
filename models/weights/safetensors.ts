/**
 * safetensors reader: u64 little-endian header length N | N bytes of UTF-8 JSON | raw tensor bytes.
 * The JSON maps each tensor name to { dtype, shape, data_offsets: [begin, end] } (offsets relative to the
 * byte after the header) plus an optional "__metadata__" string map. The spec forbids holes and overlaps:
 * the tensors must tile the data section exactly, which is checked here so a damaged file fails loudly.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { Buffer } from 'node:buffer';
import { float16BitsToFloat32 } from './gguf.ts';

/** Bytes per element of each safetensors dtype. */
const DTYPE_BYTES = {
  BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1,
  U16: 2, I16: 2, F16: 2, BF16: 2,
  U32: 4, I32: 4, F32: 4,
  U64: 8, I64: 8, F64: 8,
} as const;
export type SafetensorsDtype = keyof typeof DTYPE_BYTES;

export interface SafetensorsTensorInfo {
  dtype: SafetensorsDtype;
  shape: number[];
  /** Byte range within the data section (which starts at 8 + headerLength). */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  headerLength: number;
  /** In file order of their data. */
  tensors: Map<string, SafetensorsTensorInfo>;
  metadata: Record<string, string>;
}

/** The format's own cap; a larger length means a corrupt or hostile file, not a big model. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const isDtype = (s: unknown): s is SafetensorsDtype => typeof s === 'string' && Object.hasOwn(DTYPE_BYTES, s);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** Reads the header length from the first 8 bytes. */
export function readHeaderLength(first8: Uint8Array): number {
  if (first8.length < 8) throw new Error('safetensors: file is shorter than its 8-byte length prefix');
  const n = Buffer.from(first8.buffer, first8.byteOffset, 8).readBigUInt64LE(0);
  if (n === 0n || n > BigInt(MAX_HEADER_BYTES)) throw new Error(`safetensors: header length ${n} is out of range`);
  return Number(n);
}

/**
 * Validates and parses a header. `bytes` must hold at least the length prefix and the JSON; `fileSize`
 * (when known) lets the check confirm that the tensors end exactly at the end of the file.
 */
export function parseSafetensorsHeader(bytes: Uint8Array, fileSize?: number): SafetensorsHeader {
  const headerLength = readHeaderLength(bytes);
  if (bytes.length < 8 + headerLength) throw new Error('safetensors: file ends inside its JSON header');
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 8, headerLength).toString('utf8'));
  } catch (err) {
    throw new Error(`safetensors: header is not valid JSON (${(err as Error).message})`, { cause: err });
  }
  if (!isObject(json)) throw new Error('safetensors: header JSON is not an object');

  const metadata: Record<string, string> = {};
  const entries: Array<[string, SafetensorsTensorInfo]> = [];
  for (const [name, raw] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isObject(raw)) throw new Error('safetensors: __metadata__ is not an object');
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== 'string') throw new Error(`safetensors: __metadata__.${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    if (!isObject(raw)) throw new Error(`safetensors: entry ${name} is not an object`);
    const { dtype, shape, data_offsets: offsets } = raw;
    if (!isDtype(dtype)) throw new Error(`safetensors: tensor ${name} has unknown dtype ${String(dtype)}`);
    if (!Array.isArray(shape) || !shape.every(isCount)) throw new Error(`safetensors: tensor ${name} has an invalid shape`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
      throw new Error(`safetensors: tensor ${name} has invalid data_offsets`);
    }
    const [begin, end] = offsets as [number, number];
    const dims = shape as number[];
    const expected = dims.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
    if (end - begin !== expected) {
      throw new Error(`safetensors: tensor ${name} spans ${end - begin} bytes but ${dtype}[${dims.join(', ')}] needs ${expected}`);
    }
    entries.push([name, { dtype, shape: dims, begin, end }]);
  }

  entries.sort((a, b) => a[1].begin - b[1].begin);
  let cursor = 0;
  for (const [name, t] of entries) {
    if (t.begin !== cursor) {
      throw new Error(`safetensors: tensor ${name} starts at ${t.begin}, expected ${cursor} (hole or overlap in the data)`);
    }
    cursor = t.end;
  }
  if (fileSize !== undefined && 8 + headerLength + cursor !== fileSize) {
    throw new Error(`safetensors: tensors end at byte ${8 + headerLength + cursor} but the file has ${fileSize} bytes`);
  }
  return { headerLength, tensors: new Map(entries), metadata };
}

/** Decodes raw little-endian tensor bytes of a floating-point dtype to float32. */
export function decodeFloats(dtype: SafetensorsDtype, raw: Buffer): Float32Array {
  switch (dtype) {
    case 'F32': {
      const out = new Float32Array(raw.length / 4);
      for (let i = 0; i < out.length; i++) out[i] = raw.readFloatLE(i * 4);
      return out;
    }
    case 'F16': {
      const out = new Float32Array(raw.length / 2);
      for (let i = 0; i < out.length; i++) out[i] = float16BitsToFloat32(raw.readUInt16LE(i * 2));
      return out;
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32.
      const out = new Float32Array(raw.length / 2);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < out.length; i++) bits[i] = raw.readUInt16LE(i * 2) << 16;
      return out;
    }
    case 'F64': {
      const out = new Float32Array(raw.length / 8);
      for (let i = 0; i < out.length; i++) out[i] = raw.readDoubleLE(i * 8);
      return out;
    }
    default:
      throw new Error(`safetensors: dtype ${dtype} is not a floating-point type`);
  }
}

/** An open safetensors file; tensors are read one at a time, so only one is in memory per call. */
export class SafetensorsFile {
  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly header: SafetensorsHeader,
  ) {}

  static async open(path: string): Promise<SafetensorsFile> {
    const fh = await open(path, 'r');
    try {
      const size = (await fh.stat()).size;
      const prefix = Buffer.alloc(8);
      await fh.read(prefix, 0, 8, 0);
      const headerLength = readHeaderLength(prefix);
      if (8 + headerLength > size) throw new Error('safetensors: file ends inside its JSON header');
      const head = Buffer.alloc(8 + headerLength);
      await fh.read(head, 0, head.length, 0);
      return new SafetensorsFile(path, fh, parseSafetensorsHeader(head, size));
    } catch (err) {
      await fh.close();
      throw new Error(`${path}: ${(err as Error).message}`, { cause: err });
    }
  }

  get tensors(): Map<string, SafetensorsTensorInfo> {
    return this.header.tensors;
  }

  /** Reads a floating-point tensor (F32, F16, BF16, F64) as float32 in row-major order. */
  async readFloat32(name: string): Promise<Float32Array> {
    const info = this.header.tensors.get(name);
    if (info === undefined) throw new Error(`${this.path}: no tensor named ${name}`);
    const raw = Buffer.alloc(info.end - info.begin);
    const { bytesRead } = await this.fh.read(raw, 0, raw.length, 8 + this.header.headerLength + info.begin);
    if (bytesRead !== raw.length) throw new Error(`${this.path}: file ends inside tensor ${name}`);
    return decodeFloats(info.dtype, raw);
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * An event's Avro schema walked as data, for the code that carries events outside Kafka (the store's rows,
 * corpus files): putting a value in the schema's shape, and deriving other formats' schemas from it. Reading
 * the .avsc rather than listing fields by hand means a field added to the schema reaches every such place,
 * and a value written before it existed reads with the field's default, as Avro's own resolution would.
 */

export type AvroType =
  | string
  | AvroType[]
  | { type: 'record'; name: string; fields: AvroField[]; doc?: string }
  | { type: 'enum'; name: string; symbols: string[] }
  | { type: 'array'; items: AvroType }
  | { type: 'long' | 'int'; logicalType?: string };

export interface AvroField {
  name: string;
  type: AvroType;
  default?: unknown;
  doc?: string;
}

export type AvroRecord = Extract<AvroType, { type: 'record' }>;

/** The record schema of `schemas/<file>`, with named types referenced by name replaced by their definitions. */
export function recordSchema(file: string): AvroRecord {
  const parsed = JSON.parse(readFileSync(join(import.meta.dirname, file), 'utf8')) as AvroType;
  const named = new Map<string, AvroType>();
  const resolve = (t: AvroType): AvroType => {
    if (typeof t === 'string') return named.get(t) ?? t;
    if (Array.isArray(t)) return t.map(resolve);
    if (t.type === 'record') {
      const record: AvroRecord = { ...t, fields: [] };
      named.set(t.name, record);
      record.fields.push(...t.fields.map((f) => ({ ...f, type: resolve(f.type) })));
      return record;
    }
    if (t.type === 'enum') named.set(t.name, t);
    if (t.type === 'array') return { ...t, items: resolve(t.items) };
    return t;
  };
  const root = resolve(parsed);
  if (typeof root === 'string' || Array.isArray(root) || root.type !== 'record') throw new Error(`schemas/${file} is not a record schema`);
  return root;
}

/** A nullable type `["null", T]`: T, else undefined. */
export function nullableOf(t: AvroType): AvroType | undefined {
  return Array.isArray(t) && t.length === 2 && t[0] === 'null' ? t[1] : undefined;
}

/** A value that does not fit the schema; `path` names the field (`enrichment.bigFive.openness`). */
export class ConformError extends Error {
  constructor(readonly path: string, readonly reason: string) {
    super(`${path || 'record'}: ${reason}`);
    this.name = 'ConformError';
  }
}

const INT32 = 2 ** 31;

/**
 * `value` in the shape of `type`: record fields in the schema's order (whatever order the value had), a
 * missing field given its default, fields the schema does not have dropped, and every leaf checked. Longs
 * may come as numbers, bigints or Dates (timestamps), arrays as any array-like (typed arrays); both come
 * out as plain numbers and arrays. Throws ConformError naming the first field that does not fit.
 */
export function conform(value: unknown, type: AvroType, path = ''): unknown {
  const nullable = nullableOf(type);
  if (nullable !== undefined) return value === null || value === undefined ? null : conform(value, nullable, path);
  if (Array.isArray(type)) throw new ConformError(path, 'unions other than ["null", T] are not supported');
  const kind = typeof type === 'string' ? type : type.type;
  switch (kind) {
    case 'string':
      if (typeof value !== 'string') throw new ConformError(path, `expected a string, got ${describe(value)}`);
      return value;
    case 'boolean':
      if (typeof value !== 'boolean') throw new ConformError(path, `expected true or false, got ${describe(value)}`);
      return value;
    case 'int':
      if (!Number.isInteger(value) || Math.abs(value as number) >= INT32) throw new ConformError(path, `expected a 32-bit integer, got ${describe(value)}`);
      return value;
    case 'long': {
      const n = value instanceof Date ? value.getTime() : typeof value === 'bigint' ? Number(value) : value;
      if (!Number.isSafeInteger(n)) throw new ConformError(path, `expected an integer, got ${describe(value)}`);
      return n;
    }
    case 'float':
    case 'double':
      if (typeof value !== 'number') throw new ConformError(path, `expected a number, got ${describe(value)}`);
      return value;
    case 'enum': {
      const symbols = (type as Extract<AvroType, { type: 'enum' }>).symbols;
      if (typeof value !== 'string' || !symbols.includes(value)) throw new ConformError(path, `expected one of ${symbols.join(', ')}, got ${describe(value)}`);
      return value;
    }
    case 'array': {
      const items = (type as Extract<AvroType, { type: 'array' }>).items;
      if (!isArrayLike(value)) throw new ConformError(path, `expected an array, got ${describe(value)}`);
      return Array.from(value, (v, i) => conform(v, items, `${path}[${i}]`));
    }
    case 'record': {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConformError(path, `expected an object, got ${describe(value)}`);
      const source = value as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      for (const f of (type as AvroRecord).fields) {
        const at = path ? `${path}.${f.name}` : f.name;
        const v = source[f.name];
        if (v === undefined && nullableOf(f.type) === undefined) {
          if (!('default' in f)) throw new ConformError(at, 'missing');
          out[f.name] = conform(f.default, f.type, at);
        } else {
          out[f.name] = conform(v, f.type, at);
        }
      }
      return out;
    }
    default:
      throw new ConformError(path, `Avro type ${kind} is not supported`);
  }
}

function isArrayLike(v: unknown): v is ArrayLike<unknown> {
  return Array.isArray(v) || ArrayBuffer.isView(v);
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

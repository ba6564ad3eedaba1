import { closeSync, fsyncSync, openSync, ftruncateSync, writeSync } from 'node:fs';
import { Bool, Field, FixedSizeList, Float32, Float64, Int32, Int64, List, Schema, Struct, TimeUnit, Timestamp, Utf8, RecordBatchStreamWriter, type DataType } from 'apache-arrow';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, type RowGroup, type SchemaElement } from 'hyparquet';
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import { nullableOf, type AvroField, type AvroType } from '../schemas/conform.ts';
import type { Persona } from '../schemas/types.generated.ts';
import { checkPersona, CorpusError, PERSONA_SCHEMA } from './persona-json.ts';

/**
 * Personas as Parquet, in the shape of the published persona datasets: one row per persona, scalar
 * attributes as columns, the nested sections (provenance, lineage, demographics, enrichment with its
 * modalities, validation) as structs, string arrays as lists, and the embedding as a fixed-size list of
 * float32. The columns are derived from schemas/persona.avsc, so a field added there is exported (and a
 * file written before it was added imports with the field's default).
 *
 * Parquet itself has no fixed-size list; Arrow writers store one as a list and record the Arrow type in
 * the footer's `ARROW:schema` entry, which pyarrow, polars and DuckDB read back as `fixed_size_list`.
 * This file writes the same entry (built with apache-arrow), plus Hugging Face's `huggingface` entry
 * (`Sequence(float32, length=d)`), so `datasets` sees the fixed length too.
 */

type Leaf = 'string' | 'int' | 'long' | 'timestamp' | 'float' | 'double' | 'boolean';
/** An Avro type as the three derivations need it: nullable or not, and a leaf, a list or a struct. */
type Shape =
  | { kind: 'leaf'; leaf: Leaf; nullable: boolean }
  | { kind: 'list'; item: Shape; nullable: boolean; fixed: boolean }
  | { kind: 'struct'; fields: { name: string; shape: Shape }[]; nullable: boolean };

/** The embedding is the one array of floats with a fixed length: the store's vector size. */
const isEmbedding = (name: string, items: AvroType) => name === 'embedding' && items === 'float';

function shapeOf(name: string, t: AvroType): Shape {
  const inner = nullableOf(t);
  const nullable = inner !== undefined;
  const base = inner ?? t;
  if (typeof base === 'string') {
    const leaf = ({ string: 'string', int: 'int', long: 'long', float: 'float', double: 'double', boolean: 'boolean' } as const)[base as 'string'];
    if (!leaf) throw new CorpusError('PH_CORPUS_SCHEMA', `field ${name}: Avro type ${base} has no Parquet column here`);
    return { kind: 'leaf', leaf, nullable };
  }
  if (Array.isArray(base)) throw new CorpusError('PH_CORPUS_SCHEMA', `field ${name}: unions other than ["null", T] have no Parquet column here`);
  switch (base.type) {
    case 'enum': return { kind: 'leaf', leaf: 'string', nullable };
    case 'long': return { kind: 'leaf', leaf: base.logicalType === 'timestamp-millis' ? 'timestamp' : 'long', nullable };
    case 'int': return { kind: 'leaf', leaf: 'int', nullable };
    case 'array': return { kind: 'list', item: shapeOf('element', base.items), nullable, fixed: isEmbedding(name, base.items) };
    case 'record': return { kind: 'struct', fields: base.fields.map((f: AvroField) => ({ name: f.name, shape: shapeOf(f.name, f.type) })), nullable };
  }
}

const PERSONA_SHAPE = shapeOf('persona', PERSONA_SCHEMA);
const COLUMNS = PERSONA_SHAPE.kind === 'struct' ? PERSONA_SHAPE.fields : [];

const PARQUET_LEAF: Record<Leaf, Omit<SchemaElement, 'name'>> = {
  string: { type: 'BYTE_ARRAY', converted_type: 'UTF8', logical_type: { type: 'STRING' } },
  int: { type: 'INT32' },
  long: { type: 'INT64' },
  timestamp: { type: 'INT64', converted_type: 'TIMESTAMP_MILLIS', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MILLIS' } },
  float: { type: 'FLOAT' },
  double: { type: 'DOUBLE' },
  boolean: { type: 'BOOLEAN' },
};

/** Schema elements in Parquet's depth-first order; lists as the spec's three levels (`<name>.list.element`). */
function parquetElements(name: string, s: Shape): SchemaElement[] {
  const repetition_type = s.nullable ? 'OPTIONAL' : 'REQUIRED';
  if (s.kind === 'leaf') return [{ name, ...PARQUET_LEAF[s.leaf], repetition_type }];
  if (s.kind === 'list') {
    return [
      { name, converted_type: 'LIST', logical_type: { type: 'LIST' }, repetition_type, num_children: 1 },
      { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
      ...parquetElements('element', s.item),
    ];
  }
  return [{ name, repetition_type, num_children: s.fields.length }, ...s.fields.flatMap((f) => parquetElements(f.name, f.shape))];
}

function parquetSchema(): SchemaElement[] {
  return [{ name: 'schema', num_children: COLUMNS.length }, ...COLUMNS.flatMap((c) => parquetElements(c.name, c.shape))];
}

function arrowType(s: Shape, dimensions: number): DataType {
  if (s.kind === 'leaf') {
    switch (s.leaf) {
      case 'string': return new Utf8();
      case 'int': return new Int32();
      case 'long': return new Int64();
      case 'timestamp': return new Timestamp(TimeUnit.MILLISECOND, 'UTC');
      case 'float': return new Float32();
      case 'double': return new Float64();
      case 'boolean': return new Bool();
    }
  }
  if (s.kind === 'list') {
    const element = new Field('element', arrowType(s.item, dimensions), s.item.nullable);
    return s.fixed ? new FixedSizeList(dimensions, element) : new List(element);
  }
  return new Struct(s.fields.map((f) => new Field(f.name, arrowType(f.shape, dimensions), f.shape.nullable)));
}

/** The IPC-serialized schema message, base64, as Arrow's own Parquet writers store it. */
function arrowSchemaEntry(dimensions: number): string {
  const writer = new RecordBatchStreamWriter();
  writer.reset(undefined, new Schema(COLUMNS.map((c) => new Field(c.name, arrowType(c.shape, dimensions), c.shape.nullable))));
  writer.finish();
  return Buffer.from(writer.toUint8Array(true)).toString('base64');
}

const HF_DTYPE: Record<Leaf, string> = { string: 'string', int: 'int32', long: 'int64', timestamp: 'timestamp[ms, tz=UTC]', float: 'float32', double: 'float64', boolean: 'bool' };

function hfFeature(s: Shape, dimensions: number): unknown {
  if (s.kind === 'leaf') return { dtype: HF_DTYPE[s.leaf], _type: 'Value' };
  if (s.kind === 'list') return { feature: hfFeature(s.item, dimensions), length: s.fixed ? dimensions : -1, _type: 'Sequence' };
  return Object.fromEntries(s.fields.map((f) => [f.name, hfFeature(f.shape, dimensions)]));
}

function huggingfaceEntry(dimensions: number): string {
  return JSON.stringify({ info: { features: Object.fromEntries(COLUMNS.map((c) => [c.name, hfFeature(c.shape, dimensions)])) } });
}

/** A value as the writer takes it: longs and timestamps as bigints, floats rounded to float32 (what the column holds). */
function toParquet(v: unknown, s: Shape): unknown {
  if (v === null || v === undefined) return null;
  if (s.kind === 'leaf') return s.leaf === 'long' || s.leaf === 'timestamp' ? BigInt(v as number) : s.leaf === 'float' ? Math.fround(v as number) : v;
  if (s.kind === 'list') return (v as unknown[]).map((x) => toParquet(x, s.item));
  const o = v as Record<string, unknown>;
  return Object.fromEntries(s.fields.map((f) => [f.name, toParquet(o[f.name], f.shape)]));
}

/** Column-major data for one row group. */
function columnsOf(personas: readonly Persona[], dimensions: number) {
  for (const p of personas) {
    const e = p.enrichment;
    if (!e) throw new CorpusError('PH_CORPUS_RECORD', `persona ${p.id} has no enrichment; only indexed personas are exported`);
    if (e.embedding.length !== dimensions) throw new CorpusError('PH_CORPUS_RECORD', `persona ${p.id} has a ${e.embedding.length}-dim embedding, the export ${dimensions}`);
  }
  const rows = personas as readonly object[] as readonly Record<string, unknown>[];
  // The offset index would be written after the last row group, from state kept per page: off, so the
  // writer holds nothing per row group beyond its footer entry and a resumed file needs only that.
  return COLUMNS.map((c) => ({ name: c.name, data: rows.map((r) => toParquet(r[c.name], c.shape)), offsetIndex: false }));
}

/**
 * What the footer will need of each row group (its metadata), one JSON line per row group, so an export
 * can log them as it goes and a resumed run can give them back. JSON cannot hold bigints, byte arrays,
 * dates, -0 or non-finite numbers, all of which statistics may carry, so those are tagged and restored
 * exactly: the footer a resumed run writes is the one an uninterrupted run writes.
 */

function tag(v: unknown): unknown {
  if (typeof v === 'bigint') return { $bigint: v.toString() };
  if (typeof v === 'number' && (Object.is(v, -0) || !Number.isFinite(v))) return { $number: Object.is(v, -0) ? '-0' : String(v) };
  if (v instanceof Uint8Array) return { $bytes: Buffer.from(v).toString('base64') };
  if (v instanceof Date) return { $date: v.getTime() };
  if (Array.isArray(v)) return v.map(tag);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, tag(x)]));
  return v;
}

function untag(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(untag);
  if (!v || typeof v !== 'object') return v;
  if ('$bigint' in v && typeof v.$bigint === 'string') return BigInt(v.$bigint);
  if ('$number' in v && typeof v.$number === 'string') return Number(v.$number);
  if ('$bytes' in v && typeof v.$bytes === 'string') return new Uint8Array(Buffer.from(v.$bytes, 'base64'));
  if ('$date' in v && typeof v.$date === 'number') return new Date(v.$date);
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, untag(x)]));
}

const encodeRowGroup = (value: RowGroup): string => JSON.stringify(tag(value));
const decodeRowGroup = (line: string): RowGroup => untag(JSON.parse(line)) as RowGroup;

/** The writer's buffer, written out at the file position it stands for on every flush (after each row group). */
class FileSink extends ByteWriter {
  constructor(private readonly fd: number, private position: number) {
    super(1 << 20);
  }

  flush(): void {
    writeSync(this.fd, new Uint8Array(this.buffer, 0, this.index), 0, this.index, this.position);
    this.position += this.index;
    this.index = 0;
  }

  override finish(): void {
    this.flush();
  }
}

/**
 * Writes row groups straight to the file, each made durable (fsync) before `append` returns, and the
 * footer at `finish`. `open` with a progress snapshot truncates whatever follows the last committed
 * row group (a torn row group, a torn footer) and carries on from there, so the finished file is the
 * one an uninterrupted run writes.
 */
export class ParquetFile {
  private readonly fd: number;
  private readonly out: FileSink;
  private readonly writer: ParquetWriter;

  private constructor(file: string, private readonly dimensions: number, resume: { bytes: number; rowGroups: readonly string[] } | undefined) {
    this.fd = openSync(file, resume ? 'r+' : 'w');
    this.out = new FileSink(this.fd, resume?.bytes ?? 0);
    const out = this.out;
    const kvMetadata = [{ key: 'ARROW:schema', value: arrowSchemaEntry(dimensions) }, { key: 'huggingface', value: huggingfaceEntry(dimensions) }];
    this.writer = new ParquetWriter({ writer: out, schema: parquetSchema(), kvMetadata, createdBy: 'personahub export (hyparquet-writer 0.17.0)' });
    if (resume) {
      ftruncateSync(this.fd, resume.bytes);
      // The constructor wrote the leading magic into the buffer; the file on disk has it already.
      out.index = 0;
      out.offset = resume.bytes;
      this.writer.row_groups = resume.rowGroups.map(decodeRowGroup);
      this.writer.num_rows = this.writer.row_groups.reduce((n, g) => n + g.num_rows, 0n);
    }
  }

  static create(file: string, dimensions: number): ParquetFile {
    return new ParquetFile(file, dimensions, undefined);
  }

  /** `rowGroups`: the lines `append` returned for every row group before `bytes`, in order. */
  static resume(file: string, dimensions: number, bytes: number, rowGroups: readonly string[]): ParquetFile {
    return new ParquetFile(file, dimensions, { bytes, rowGroups });
  }

  /** One row group, durable on return, with the line the caller keeps for a resume (none for no rows). */
  append(personas: readonly Persona[]): { bytes: number; rows: number; rowGroup: string | undefined } {
    const before = this.writer.row_groups.length;
    if (personas.length > 0) {
      this.writer.write({ columnData: columnsOf(personas, this.dimensions), rowGroupSize: personas.length });
      this.writer.pendingIndexes = [];
    }
    this.out.flush();
    fsyncSync(this.fd);
    const added = this.writer.row_groups[before];
    return { bytes: this.out.offset, rows: Number(this.writer.num_rows), rowGroup: added && encodeRowGroup(added) };
  }

  finish(): number {
    this.writer.finish();
    fsyncSync(this.fd);
    closeSync(this.fd);
    return this.out.offset;
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** The personas of a Parquet file, one row group in memory at a time. */
export async function* readParquetPersonas(file: string): AsyncGenerator<Persona[]> {
  const buffer = await asyncBufferFromFile(file);
  const metadata = await parquetMetadataAsync(buffer).catch((cause: unknown) => {
    throw new CorpusError('PH_CORPUS_PARQUET', `${file} is not a complete Parquet file (${(cause as Error).message}); an export still under way has no footer yet`, { cause });
  });
  let start = 0;
  for (const group of metadata.row_groups) {
    const end = start + Number(group.num_rows);
    const rows = await parquetReadObjects({ file: buffer, metadata, rowStart: start, rowEnd: end });
    // hyparquet gives timestamps as Dates, longs as bigints, a null struct as undefined: checkPersona puts them back in the persona's shape.
    yield rows.map((r, i) => checkPersona(r, `${file} row ${start + i + 1}`));
    start = end;
  }
}

import { closeSync, fsyncSync, openSync, ftruncateSync, writeSync } from 'node:fs';
import { Field, FixedSizeList, Float32, Int32, List, Schema, Struct, TimeUnit, Timestamp, Utf8, RecordBatchStreamWriter } from 'apache-arrow';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, type RowGroup, type SchemaElement } from 'hyparquet';
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import type { Persona } from '../schemas/types.generated.ts';
import { checkPersona, CorpusError } from './persona-json.ts';

/**
 * Personas as Parquet, in the shape of the published persona datasets: one row per persona, scalar
 * attributes as columns, the nested sections (provenance, lineage, enrichment with its modalities,
 * validation) as structs, string arrays as lists, and the embedding as a fixed-size list of float32.
 *
 * Parquet itself has no fixed-size list; Arrow writers store one as a list and record the Arrow type in
 * the footer's `ARROW:schema` entry, which pyarrow, polars and DuckDB read back as `fixed_size_list`.
 * This file writes the same entry (built with apache-arrow), plus Hugging Face's `huggingface` entry
 * (`Sequence(float32, length=d)`), so `datasets` sees the fixed length too.
 */

type Element = SchemaElement;

/** The demographics' string fields in schema order (the three lists come after the first twelve). */
const DEMOGRAPHIC_TEXTS = ['sex', 'maritalStatus', 'household', 'educationLevel', 'educationField', 'employmentStatus', 'occupationGroup', 'industry',
  'city', 'region', 'country', 'culturalBackground', 'careerGoal'] as const;

const text = (name: string, optional = false): Element[] => [{ name, type: 'BYTE_ARRAY', converted_type: 'UTF8', logical_type: { type: 'STRING' }, repetition_type: optional ? 'OPTIONAL' : 'REQUIRED' }];
const int32 = (name: string): Element[] => [{ name, type: 'INT32', repetition_type: 'REQUIRED' }];
const float32 = (name: string): Element[] => [{ name, type: 'FLOAT', repetition_type: 'REQUIRED' }];
const millis = (name: string): Element[] => [{ name, type: 'INT64', converted_type: 'TIMESTAMP_MILLIS', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MILLIS' }, repetition_type: 'REQUIRED' }];
/** The three-level LIST of the Parquet spec (`<name>.list.element`), which every reader maps to a list. */
const list = (name: string, element: Element[]): Element[] => [
  { name, converted_type: 'LIST', logical_type: { type: 'LIST' }, repetition_type: 'REQUIRED', num_children: 1 },
  { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
  ...element.map((e, i) => (i === 0 ? { ...e, name: 'element' } : e)),
];
const group = (name: string, optional: boolean, children: Element[][]): Element[] => [
  { name, repetition_type: optional ? 'OPTIONAL' : 'REQUIRED', num_children: children.length },
  ...children.flat(),
];
const texts = (name: string) => list(name, text('element'));

function parquetSchema(): Element[] {
  const columns = [
    text('id'), int32('version'), text('seedId'), int32('generationIndex'), text('name'), int32('age'), text('occupation'), text('locale'),
    texts('traits'), text('description'), text('seedRelation'),
    group('provenance', false, [text('mode'), text('model'), text('promptVersion'), millis('createdAt'), text('samplerProfile', true), text('samplerProfileVersion', true)]),
    group('lineage', true, [int32('depth'), text('rootSeedId'), text('parentPersonaId', true), text('relationKind', true)]),
    group('demographics', true, [...DEMOGRAPHIC_TEXTS.slice(0, 12).map((n) => text(n)), texts('languages'), texts('hobbies'), texts('skills'), text('careerGoal')]),
    group('enrichment', true, [
      text('lifeStage'),
      group('bigFive', false, [float32('openness'), float32('conscientiousness'), float32('extraversion'), float32('agreeableness'), float32('neuroticism')]),
      texts('habits'), texts('goals'), texts('mediaDiet'), text('appearance'), text('imagePrompt'), texts('settings'),
      list('embedding', float32('element')), text('embeddingModel'), millis('enrichedAt'),
    ]),
    group('validation', true, [text('textHash'), texts('checks'), texts('repaired'), millis('validatedAt')]),
  ];
  return [{ name: 'schema', num_children: columns.length }, ...columns.flat()];
}

/** The same columns as Arrow types, for the footer's ARROW:schema entry. */
function arrowSchema(dimensions: number): Schema {
  const utf8 = (name: string, nullable = false) => new Field(name, new Utf8(), nullable);
  const int = (name: string) => new Field(name, new Int32(), false);
  const f32 = (name: string) => new Field(name, new Float32(), false);
  const ts = (name: string) => new Field(name, new Timestamp(TimeUnit.MILLISECOND, 'UTC'), false);
  const strs = (name: string) => new Field(name, new List(new Field('element', new Utf8(), false)), false);
  const struct = (name: string, nullable: boolean, fields: Field[]) => new Field(name, new Struct(fields), nullable);
  return new Schema([
    utf8('id'), int('version'), utf8('seedId'), int('generationIndex'), utf8('name'), int('age'), utf8('occupation'), utf8('locale'),
    strs('traits'), utf8('description'), utf8('seedRelation'),
    struct('provenance', false, [utf8('mode'), utf8('model'), utf8('promptVersion'), ts('createdAt'), utf8('samplerProfile', true), utf8('samplerProfileVersion', true)]),
    struct('lineage', true, [int('depth'), utf8('rootSeedId'), utf8('parentPersonaId', true), utf8('relationKind', true)]),
    struct('demographics', true, [...DEMOGRAPHIC_TEXTS.slice(0, 12).map((n) => utf8(n)), strs('languages'), strs('hobbies'), strs('skills'), utf8('careerGoal')]),
    struct('enrichment', true, [
      utf8('lifeStage'),
      struct('bigFive', false, [f32('openness'), f32('conscientiousness'), f32('extraversion'), f32('agreeableness'), f32('neuroticism')]),
      strs('habits'), strs('goals'), strs('mediaDiet'), utf8('appearance'), utf8('imagePrompt'), strs('settings'),
      new Field('embedding', new FixedSizeList(dimensions, new Field('element', new Float32(), false)), false), utf8('embeddingModel'), ts('enrichedAt'),
    ]),
    struct('validation', true, [utf8('textHash'), strs('checks'), strs('repaired'), ts('validatedAt')]),
  ]);
}

/** The IPC-serialized schema message, base64, as Arrow's own Parquet writers store it. */
function arrowSchemaEntry(dimensions: number): string {
  const writer = new RecordBatchStreamWriter();
  writer.reset(undefined, arrowSchema(dimensions));
  writer.finish();
  return Buffer.from(writer.toUint8Array(true)).toString('base64');
}

function huggingfaceEntry(dimensions: number): string {
  const value = (dtype: string) => ({ dtype, _type: 'Value' });
  const seq = (feature: unknown, length = -1) => ({ feature, length, _type: 'Sequence' });
  const s = value('string');
  const ts = value('timestamp[ms, tz=UTC]');
  return JSON.stringify({
    info: {
      features: {
        id: s, version: value('int32'), seedId: s, generationIndex: value('int32'), name: s, age: value('int32'), occupation: s, locale: s,
        traits: seq(s), description: s, seedRelation: s,
        provenance: { mode: s, model: s, promptVersion: s, createdAt: ts, samplerProfile: s, samplerProfileVersion: s },
        lineage: { depth: value('int32'), rootSeedId: s, parentPersonaId: s, relationKind: s },
        demographics: { ...Object.fromEntries(DEMOGRAPHIC_TEXTS.slice(0, 12).map((n) => [n, s])), languages: seq(s), hobbies: seq(s), skills: seq(s), careerGoal: s },
        enrichment: {
          lifeStage: s, bigFive: { openness: value('float32'), conscientiousness: value('float32'), extraversion: value('float32'), agreeableness: value('float32'), neuroticism: value('float32') },
          habits: seq(s), goals: seq(s), mediaDiet: seq(s), appearance: s, imagePrompt: s, settings: seq(s),
          embedding: seq(value('float32'), dimensions), embeddingModel: s, enrichedAt: ts,
        },
        validation: { textHash: s, checks: seq(s), repaired: seq(s), validatedAt: ts },
      },
    },
  });
}

const COLUMN_NAMES = ['id', 'version', 'seedId', 'generationIndex', 'name', 'age', 'occupation', 'locale', 'traits', 'description', 'seedRelation',
  'provenance', 'lineage', 'demographics', 'enrichment', 'validation'] as const;

/** Column-major data for one row group; timestamps as bigint milliseconds, embeddings as float32. */
function columnsOf(personas: readonly Persona[], dimensions: number) {
  const rows = personas.map((p) => {
    const e = p.enrichment;
    if (!e) throw new CorpusError('PH_CORPUS_RECORD', `persona ${p.id} has no enrichment; only indexed personas are exported`);
    if (e.embedding.length !== dimensions) throw new CorpusError('PH_CORPUS_RECORD', `persona ${p.id} has a ${e.embedding.length}-dim embedding, the export ${dimensions}`);
    return {
      ...p,
      provenance: { ...p.provenance, createdAt: BigInt(p.provenance.createdAt) },
      enrichment: { ...e, embedding: e.embedding.map(Math.fround), enrichedAt: BigInt(e.enrichedAt) },
      validation: p.validation && { ...p.validation, validatedAt: BigInt(p.validation.validatedAt) },
    };
  });
  // The offset index would be written after the last row group, from state kept per page: off, so the
  // writer holds nothing per row group beyond its footer entry and a resumed file needs only that.
  return COLUMN_NAMES.map((name) => ({ name, data: rows.map((r) => r[name]), offsetIndex: false }));
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

const millisOf = (v: unknown): unknown => (v instanceof Date ? v.getTime() : typeof v === 'bigint' ? Number(v) : v);

/** Rows as hyparquet decodes them, back to the persona's JSON shape. */
function rowToPersona(row: Record<string, unknown>, where: string): Persona {
  const record = row as { provenance?: Record<string, unknown>; demographics?: Record<string, unknown> | null; lineage?: Record<string, unknown> | null; enrichment?: Record<string, unknown> | null; validation?: Record<string, unknown> | null };
  // hyparquet leaves a null struct or string undefined; the persona's JSON says null.
  const value = {
    ...row,
    lineage: record.lineage ? { ...record.lineage, parentPersonaId: record.lineage.parentPersonaId ?? null, relationKind: record.lineage.relationKind ?? null } : null,
    demographics: record.demographics ?? null,
    provenance: record.provenance && {
      ...record.provenance, createdAt: millisOf(record.provenance.createdAt),
      samplerProfile: record.provenance.samplerProfile ?? null, samplerProfileVersion: record.provenance.samplerProfileVersion ?? null,
    },
    enrichment: record.enrichment ? { ...record.enrichment, embedding: Array.from(record.enrichment.embedding as ArrayLike<number>), enrichedAt: millisOf(record.enrichment.enrichedAt) } : null,
    validation: record.validation ? { ...record.validation, validatedAt: millisOf(record.validation.validatedAt) } : null,
  };
  return checkPersona(value, where);
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
    yield rows.map((r, i) => rowToPersona(r, `${file} row ${start + i + 1}`));
    start = end;
  }
}

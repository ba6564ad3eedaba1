import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { getLlama, resolveChatWrapper, type LlamaModel } from 'node-llama-cpp';
import pg from 'pg';
import { buildPipeline, createRunner } from '../cli/wiring.ts';
import { loadConfig, type Config } from '../config/index.ts';
import type { ChatMessage } from '../core/chat.ts';
import { createLogger } from '../core/logger.ts';
import { exportCorpus } from '../corpus/export.ts';
import { toChatHistory } from '../models/server/prompt.ts';
import { buildJudgeMessages, JUDGE_CRITERION_NAMES, JUDGE_MAX_TOKENS } from '../persona/judge.ts';
import { buildModalitiesMessages, MODALITIES_MAX_TOKENS, type ModalitiesOutput } from '../persona/modalities-prompt.ts';
import { buildDraftMessages, DRAFT_MAX_TOKENS } from '../persona/prompt.ts';
import { buildRelationMessages, latticeCeiling, relationOf, sampleRelatedAttributes } from '../persona/relations.ts';
import { samplePersona, samplerFor } from '../persona/sampler.ts';
import type { RunningStage } from '../runtime/runner.ts';
import type { PipelineMetrics } from '../runtime/metrics.ts';
import type { Persona, Seed } from '../schemas/types.generated.ts';
import { openStore } from '../store/open.ts';
import { topicName, type EventName, type StageName } from '../topology/index.ts';
import { BenchError, gitCommit, machine, packageVersions, REPO_ROOT, segmentBytes, tableSizes } from './harness.ts';
import { benchDatabase, dropTopics, fill, freshTopics, type RunTopics } from './runner/kafka-bench.ts';
import { benchEnv } from './runner/runner.bench.ts';
import { benchSeeds } from './runner/seeds.ts';
import { round, scaled, spread, type Scaled, type Spread } from './scaling-model.ts';

/**
 * The sizes docs/SCALING.md extrapolates from (issue 19, Scaling model), measured on the local stack:
 * the whole pipeline in sampler mode (hash embeddings of the configured size, so every vector, and the HNSW
 * graphs over them, have their real byte size) with the lattice one level deep, then
 *  - every table the store wrote, with its indexes and TOAST (pg_total_relation_size), per persona;
 *  - every topic's records (key and Avro value as produced) and the broker's log segments, per event;
 *  - the Parquet and JSONL export of the indexed personas, per persona (Parquet again with dense vectors: see denseEmbeddings);
 *  - the prompts the draft, relate, modalities and judge calls would send for these same events, rendered
 *    through the local model's chat template and counted with its tokenizer (and the answers' size, from the
 *    prompts' own worked examples and the sampler's text in the answer's shape).
 * Nothing here is a speed: sizes and counts only, so the figures do not depend on how busy the machine is.
 *
 *   npx tsx bench/scaling.ts [--seeds 5000] [--sample 400] [--out bench/results/scaling.json]
 */

const STAGES: readonly StageName[] = ['draft', 'enrich', 'validate', 'index', 'relate'];
const TOPIC_EVENTS: readonly EventName[] = ['seed', 'draft', 'enriched', 'validated', 'rejected', 'indexed', 'dlq'];
const SETTLE_TIMEOUT_MS = 900_000;

const { values: args } = parseArgs({
  options: {
    seeds: { type: 'string', default: '5000' },
    sample: { type: 'string', default: '400' },
    'lattice-depth': { type: 'string', default: '1' },
    out: { type: 'string', default: join(REPO_ROOT, 'bench', 'results', 'scaling.json') },
  },
});
const seedCount = Number(args.seeds);
const sampleSize = Number(args.sample);

const logger = createLogger({ level: 'warn', name: 'bench-scaling' });

async function sum(metrics: PipelineMetrics, counter: 'produced' | 'consumed' | 'deadLettered', stageName: StageName, topic?: string): Promise<number> {
  return (await metrics[counter].get()).values.filter((v) => v.labels.stage === stageName && (topic === undefined || v.labels.topic === topic)).reduce((s, v) => s + v.value, 0);
}

/** Every source seed and every expansion seed drafted, enriched, validated, and every validated persona indexed and expanded. */
interface Counts { draftConsumed: number; relateProduced: number; draftProduced: number; validateProduced: number; validated: number; indexProduced: number; relateConsumed: number; deadLettered: number }

async function settled(m: PipelineMetrics, prefix: string): Promise<{ done: boolean; counts: Counts }> {
  const validated = await sum(m, 'produced', 'validate', topicName(prefix, 'validated'));
  const counts: Counts = {
    draftConsumed: await sum(m, 'consumed', 'draft'), relateProduced: await sum(m, 'produced', 'relate'), draftProduced: await sum(m, 'produced', 'draft'),
    validateProduced: await sum(m, 'produced', 'validate'), validated, indexProduced: await sum(m, 'produced', 'index'), relateConsumed: await sum(m, 'consumed', 'relate'),
    deadLettered: (await Promise.all(STAGES.map((s) => sum(m, 'deadLettered', s)))).reduce((a, b) => a + b, 0),
  };
  const done = counts.draftConsumed >= seedCount + counts.relateProduced && counts.validateProduced + counts.deadLettered >= counts.draftProduced
    && counts.indexProduced >= validated && counts.relateConsumed >= validated && validated > 0;
  return { done, counts };
}

async function runPipeline(t: RunTopics): Promise<Counts> {
  const records: { key: Buffer; value: Buffer }[] = [];
  for (const seed of benchSeeds(t.prefix, seedCount)) records.push({ key: await t.serde.encodeKey('seed', seed.id), value: await t.serde.encodeValue('seed', seed) });
  await fill(t.kafka, topicName(t.prefix, 'seed'), records);
  const pipeline = await buildPipeline(t.config, logger, t.prefix);
  const runners: RunningStage[] = [];
  try {
    for (const name of STAGES) {
      const r = createRunner(pipeline, name, logger);
      await r.start();
      runners.push(r);
    }
    const deadline = Date.now() + SETTLE_TIMEOUT_MS;
    for (;;) {
      const s = await settled(pipeline.metrics, t.prefix);
      if (s.done) return s.counts;
      if (Date.now() > deadline) throw new BenchError('PH_BENCH_TIMEOUT', `pipeline not settled after ${SETTLE_TIMEOUT_MS / 1000} s: ${JSON.stringify(s.counts)}`);
      await new Promise((r) => setTimeout(r, 1_000));
    }
  } finally {
    for (const r of runners) await r.stop();
    await pipeline.close();
  }
}

interface TopicRecords { records: number; keyBytes: Spread; valueBytes: Spread; values: Buffer[] }

/** Reads every committed record of the run's topics back, as a consumer downstream would (read_committed). */
async function readTopics(t: RunTopics, expected: Map<EventName, number>): Promise<Map<EventName, TopicRecords>> {
  const byTopic = new Map<string, EventName>(TOPIC_EVENTS.map((e) => [topicName(t.prefix, e), e]));
  const raw = new Map<EventName, { keys: number[]; values: Buffer[] }>(TOPIC_EVENTS.map((e) => [e, { keys: [], values: [] }]));
  const consumer = t.kafka.consumer({ groupId: `${t.prefix}.scaling-reader`, readUncommitted: false });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [...byTopic.keys()], fromBeginning: true });
    let last = Date.now();
    await consumer.run({
      eachMessage: async ({ topic, message }) => {
        const event = byTopic.get(topic);
        if (event === undefined || message.value === null) return;
        const r = raw.get(event);
        r?.keys.push(message.key?.length ?? 0);
        r?.values.push(message.value);
        last = Date.now();
      },
    });
    const complete = (): boolean => [...expected].every(([e, n]) => (raw.get(e)?.values.length ?? 0) >= n);
    // The expected counts come from the pipeline's own metrics; the quiet period covers topics it does not count (dlq).
    while (!complete() || Date.now() - last < 3_000) {
      if (Date.now() - last > 60_000) throw new BenchError('PH_BENCH_TIMEOUT', `topics read back incompletely: ${JSON.stringify([...raw].map(([e, r]) => [e, r.values.length]))}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    await consumer.disconnect();
  }
  return new Map([...raw].map(([e, r]) => [e, { records: r.values.length, keyBytes: spread(r.keys), valueBytes: spread(r.values.map((v) => v.length)), values: r.values }]));
}

interface Tokenizer { count(messages: readonly ChatMessage[]): number[]; text(s: string): number }

/** The local text model's tokenizer and chat template (vocabulary only, no weights), as the model server renders a chat. */
async function localTokenizer(config: Config): Promise<{ tokenizer: Tokenizer; model: string; close(): Promise<void> }> {
  const file = readdirSync(config.modelsDir).find((f) => f.startsWith(config.localLlm) && f.endsWith('.gguf'));
  if (file === undefined) throw new BenchError('PH_BENCH_MODEL', `no GGUF for ${config.localLlm} in ${config.modelsDir}: run personahub models fetch`);
  const llama = await getLlama({ gpu: false, build: 'never' });
  const model: LlamaModel = await llama.loadModel({ modelPath: join(config.modelsDir, file), vocabOnly: true });
  const wrapper = resolveChatWrapper(model);
  return {
    model: file,
    tokenizer: {
      count: (messages) => wrapper.generateContextState({ chatHistory: toChatHistory(messages) }).contextText.tokenize(model.tokenizer),
      text: (s) => model.tokenize(s).length,
    },
    close: async () => {
      await model.dispose();
      await llama.dispose();
    },
  };
}

interface CallTokens {
  requests: number;
  prompt: Spread;
  /** Tokens every prompt of the kind starts with (the system text and worked examples): what a server's prefix cache reuses. */
  sharedPrefix: number;
  promptChars: Spread;
  charsPerToken: number;
  completion: Record<string, Spread | number>;
  maxTokens: number;
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i += 1;
  return i;
}

function callTokens(tok: Tokenizer, prompts: ChatMessage[][], completion: Record<string, Spread | number>, maxTokens: number): CallTokens {
  const tokens = prompts.map((m) => tok.count(m));
  const chars = prompts.map((m) => m.reduce((s, x) => s + x.content.length, 0));
  let prefix = tokens[0]?.length ?? 0;
  for (let i = 1; i < tokens.length; i += 1) prefix = Math.min(prefix, commonPrefix(tokens[0] as number[], tokens[i] as number[]));
  const totalTokens = tokens.reduce((s, t) => s + t.length, 0);
  return {
    requests: prompts.length, prompt: spread(tokens.map((t) => t.length)), sharedPrefix: prefix, promptChars: spread(chars),
    charsPerToken: round(chars.reduce((s, c) => s + c, 0) / totalTokens, 2), completion, maxTokens,
  };
}

/** A draft answer in the JSON shape DRAFT_OUTPUT_SCHEMA asks for, from a persona's text. */
function draftAnswer(p: Persona): string {
  const f = p.facets;
  return JSON.stringify({ description: p.description, shortPersona: f?.shortPersona ?? '', professional: f?.professional ?? '', family: f?.family ?? '', leisure: f?.leisure ?? '', relation: f?.seedRelation ?? '' });
}

async function measureTokens(config: Config, seeds: Seed[], drafts: Persona[], enriched: Persona[]): Promise<{ model: string; calls: Record<string, CallTokens> }> {
  const { tokenizer: tok, model, close } = await localTokenizer(config);
  try {
    const sampler = samplerFor(config.profile, '');
    const source = seeds.filter((s) => s.parentPersonaId === null).slice(0, sampleSize);
    const expansion = seeds.filter((s) => relationOf(s) !== undefined).slice(0, sampleSize);
    const draftPrompts = source.map((s) => {
      const { attributes, demographics } = samplePersona(sampler, s.id, 0);
      return buildDraftMessages(attributes, s.text, demographics);
    });
    const relatePrompts = expansion.map((s) => {
      const r = relationOf(s);
      if (!r) throw new BenchError('PH_BENCH_SEEDS', `seed ${s.id} is not an expansion seed`);
      return buildRelationMessages(sampleRelatedAttributes(r.parentId, r.parent, r.kind, 0), r.kind, r.parent, s.text);
    });
    const sourceDrafts = drafts.filter((d) => (d.lineage?.depth ?? 0) === 0).slice(0, sampleSize);
    const relatedDrafts = drafts.filter((d) => (d.lineage?.depth ?? 0) > 0).slice(0, sampleSize);
    const modalitiesPrompts = sourceDrafts.map((d) => buildModalitiesMessages(d));
    const judged = enriched.slice(0, sampleSize);
    // The prompts' worked examples are the answers' shape and register written out: the assistant turns.
    const examples = (messages: ChatMessage[] | undefined): number[] => (messages ?? []).filter((m) => m.role === 'assistant').map((m) => tok.text(m.content));
    const judgeAnswer = (p: Persona): string => {
      // One short line per criterion: the persona's own sentences cut to 80 characters, half the schema's bound.
      const lines = [p.facets?.shortPersona, p.facets?.professional, p.facets?.family, p.facets?.leisure, p.description].map((s) => (s ?? p.description).slice(0, 80));
      return JSON.stringify(Object.fromEntries(JUDGE_CRITERION_NAMES.map((c, i) => [c, { score: 4, reason: lines[i] ?? '' }])));
    };
    return {
      model,
      calls: {
        draft: callTokens(tok, draftPrompts, { workedExamples: spread(examples(draftPrompts[0])), samplerTextInAnswerShape: spread(sourceDrafts.map((d) => tok.text(draftAnswer(d)))) }, DRAFT_MAX_TOKENS),
        relate: callTokens(tok, relatePrompts, { samplerTextInAnswerShape: spread(relatedDrafts.map((d) => tok.text(draftAnswer(d)))) }, DRAFT_MAX_TOKENS),
        modalities: callTokens(tok, modalitiesPrompts, { workedExample: spread(examples(modalitiesPrompts[0])) }, MODALITIES_MAX_TOKENS),
        judge: callTokens(tok, judged.map((p) => buildJudgeMessages(p)), { eightyCharReasons: spread(judged.map((p) => tok.text(judgeAnswer(p)))) }, JUDGE_MAX_TOKENS),
      },
    };
  } finally {
    await close();
  }
}

/** Gives every stored persona a dense vector of uniform floats in place of its hash embedding (after the store's sizes are taken). */
async function denseEmbeddings(url: string): Promise<void> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    // The outer reference makes the subquery run per row, so each persona gets its own vector.
    await client.query(`UPDATE personas p SET embedding = ARRAY(SELECT random() - 0.5 + 0 * length(p.id) FROM generate_series(1, vector_dims(p.embedding)))::real[]::vector`);
  } finally {
    await client.end();
  }
}

function fileSize(path: string): number {
  return statSync(path).size;
}

async function main(): Promise<void> {
  if (!Number.isInteger(seedCount) || seedCount < 10) throw new BenchError('PH_BENCH_ARGS', `--seeds must be a whole number of at least 10, got ${args.seeds}`);
  const startedAt = new Date().toISOString();
  const mach = machine();
  const base = loadConfig();
  const db = await benchDatabase(base);
  const env = { ...benchEnv(db.url), PERSONAHUB_LATTICE_DEPTH: args['lattice-depth'] };
  const t = await freshTopics(env, logger);
  const work = mkdtempSync(join(tmpdir(), 'ph-scaling-'));
  try {
    const cfg = t.config;
    console.error(`scaling: ${seedCount} seeds through ${STAGES.join(', ')} (topics ${t.prefix}.*, lattice depth ${cfg.latticeDepth}, fan-out ${cfg.latticeFanout})`);
    const counts = await runPipeline(t);
    console.error(`scaling: settled ${JSON.stringify(counts)}`);
    const tables = await tableSizes(db.url);
    const personas = tables.find((x) => x.table === 'personas')?.rows ?? 0;
    if (personas === 0) throw new BenchError('PH_BENCH_EMPTY', 'no persona was stored');

    const expected = new Map<EventName, number>([
      ['seed', seedCount + counts.relateProduced], ['draft', counts.draftProduced], ['enriched', counts.draftProduced], ['validated', counts.validated], ['indexed', counts.indexProduced],
    ]);
    const topics = await readTopics(t, expected);
    const segments = segmentBytes(cfg, t.prefix);
    const decode = async <E extends 'seed' | 'draft' | 'enriched'>(e: E, n: number) => Promise.all((topics.get(e)?.values ?? []).slice(0, n).map((v) => t.serde.decode(e, v)));
    // Source seeds are first in the topic's partitions, expansion seeds after: take both kinds, whatever their order.
    const allSeeds = await decode('seed', Number.MAX_SAFE_INTEGER);
    const drafts = await decode('draft', Number.MAX_SAFE_INTEGER);
    const enriched = await decode('enriched', sampleSize);

    // Sampler mode leaves the model-written modalities (backstory, speaking style, values, routines) empty; the
    // same events with the modalities prompt's worked answer in their place are what LLM mode carries.
    const workedModalities = buildModalitiesMessages(drafts[0] as Persona).find((m) => m.role === 'assistant')?.content;
    if (workedModalities === undefined) throw new BenchError('PH_BENCH_PROMPT', 'the modalities prompt has no worked answer');
    const modalities = JSON.parse(workedModalities) as ModalitiesOutput;
    const llmShaped = await Promise.all(enriched.map(async (p) => (await t.serde.encodeValue('enriched', { ...p, enrichment: p.enrichment && { ...p.enrichment, ...modalities, modalitiesSource: 'LLM' } })).length));

    const store = await openStore(cfg);
    let parquet: number;
    let jsonl: number;
    let exported: number;
    let parquetDense: number;
    try {
      const pq = await exportCorpus({ source: store, format: 'parquet', out: join(work, 'corpus.parquet'), dimensions: cfg.embeddingDimensions, pageSize: 1000 });
      const jl = await exportCorpus({ source: store, format: 'jsonl', out: join(work, 'corpus.jsonl'), dimensions: cfg.embeddingDimensions, pageSize: 1000 });
      parquet = fileSize(join(work, 'corpus.parquet'));
      jsonl = fileSize(join(work, 'corpus.jsonl'));
      exported = pq.rows;
      if (jl.rows !== pq.rows) throw new BenchError('PH_BENCH_EXPORT', `parquet ${pq.rows} rows, jsonl ${jl.rows}`);
      // The hash embedder's vectors are sparse (a bag of hashed words), which Parquet's compression shrinks far
      // below a real model's dense floats; the same rows with dense vectors are the size to extrapolate from.
      // PostgreSQL's and Kafka's sizes need no such correction: pgvector stores vectors uncompressed, Avro
      // writes 4 bytes a float.
      await denseEmbeddings(db.url);
      await exportCorpus({ source: store, format: 'parquet', out: join(work, 'dense.parquet'), dimensions: cfg.embeddingDimensions, pageSize: 1000 });
      parquetDense = fileSize(join(work, 'dense.parquet'));
    } finally {
      await store.close();
    }
    const tokens = await measureTokens(cfg, allSeeds, drafts, enriched);

    const total = tables.reduce((s, x) => s + x.totalBytes, 0);
    const result = {
      command: `npx tsx bench/scaling.ts --seeds ${seedCount} --sample ${sampleSize} --lattice-depth ${args['lattice-depth']}`,
      startedAt, finishedAt: new Date().toISOString(), commit: gitCommit(), machine: { ...mach, loadAverageEnd: machine().loadAverageStart },
      versions: packageVersions(['pg', 'kafkajs', 'avsc', 'node-llama-cpp', 'hyparquet-writer']),
      params: {
        seeds: seedCount, mode: 'sampler', embedder: `hash, ${cfg.embeddingDimensions} dimensions (the size of ${cfg.embeddingModel})`, partitions: cfg.partitions,
        latticeDepth: cfg.latticeDepth, latticeFanout: cfg.latticeFanout, latticeBudget: cfg.latticeBudget,
        latticeCeilingPerRoot: latticeCeiling({ maxDepth: cfg.latticeDepth, perPersona: cfg.latticeFanout, perRoot: cfg.latticeBudget }),
        minhashPermutations: cfg.minhashPermutations, dedupJaccard: cfg.dedupJaccard, dedupNeighbours: cfg.dedupNeighbours, tokenSample: sampleSize,
      },
      pipeline: { ...counts, personasStored: personas },
      postgres: {
        personas, total: scaled(total, personas),
        tables: tables.map((x) => ({ ...x, perPersona: scaled(x.totalBytes, personas), rowsPerPersona: round(x.rows / personas, 3) })),
      },
      kafka: {
        topics: Object.fromEntries([...topics].map(([e, r]) => [e, {
          records: r.records, recordsPerPersona: round(r.records / personas, 3), keyBytes: r.keyBytes, valueBytes: r.valueBytes,
          segmentBytes: segments?.[topicName(t.prefix, e)] ?? null,
          segmentBytesPerRecord: segments?.[topicName(t.prefix, e)] !== undefined && r.records > 0 ? round((segments[topicName(t.prefix, e)] as number) / r.records, 1) : null,
        }])),
        enrichedWithModelModalities: { valueBytes: spread(llmShaped), note: 'enriched events of this run with the modalities prompt\'s worked answer in place of the sampler\'s (LLM mode\'s shape)' },
        segmentsNote: segments ? 'log segments of the local broker (uncompressed producers; batch headers and transaction markers included)' : 'broker data directory not readable here',
      },
      corpus: { rows: exported, parquet: scaled(parquet, exported), parquetDenseEmbeddings: scaled(parquetDense, exported), jsonl: scaled(jsonl, exported) },
      tokens,
    };
    writeFileSync(args.out, `${JSON.stringify(result, null, 2)}\n`);
    console.error(`scaling: wrote ${args.out}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
    await dropTopics(t);
    await db.drop();
  }
}

await main();

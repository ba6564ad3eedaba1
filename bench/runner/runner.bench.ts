import { hashEmbedder } from '../../llm/embedder.ts';
import { hashId } from '../../persona/text.ts';
import { PipelineMetrics } from '../../runtime/metrics.ts';
import type { Processor, SharedContext } from '../../runtime/processor.ts';
import { kafkaPort } from '../../runtime/kafka.ts';
import { StageRunner, type RunningStage } from '../../runtime/runner.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/index.ts';
import { groupId, stage, topicName, type EventName, type EventTypes, type StageInput, type StageName, type StageOutput } from '../../topology/index.ts';
import type { Output } from '../../runtime/processor.ts';
import { samplePersona, sampleSeed } from '../../test/helpers/samples.ts';
import { loadConfig, type Config } from '../../config/index.ts';
import { figure, takeTurns, type Benchmark, type BenchContext, type Figure } from '../harness.ts';
import { benchDatabase, dropTopics, fill, freshTopics, rateUntil, startRawPipe, type RunTopics } from './kafka-bench.ts';

/**
 * Runner overhead (issue 19, benchmark 1): each Kafka→Kafka stage run by the real runtime/runner.ts with an
 * identity processor (it emits a ready-made output per input, so what is timed is the runner: Avro decode and
 * encode through the registry, the input claims in the store, metrics, one transaction per chunk), against a
 * raw kafkajs pipe moving the same bytes between the same kind of topics with the same transaction size.
 */

interface StagePlan {
  name: StageName;
  /** The input records of one run: ids salted per run, so the store's input claims never see a repeat. */
  inputs(t: RunTopics, salt: string, n: number): Promise<{ key: Buffer; value: Buffer }[]>;
  /** The output record the raw pipe writes per input: the bytes the identity processor's output encodes to. */
  output(t: RunTopics): Promise<{ event: EventName; value: Buffer }>;
  runner(t: RunTopics, ctx: SharedContext, metrics: PipelineMetrics): RunningStage;
}

function plan<N extends StageName>(name: N, input: (salt: string, i: number) => { key: string; value: EventTypes[StageInput<N>] }, output: (e: EventTypes[StageInput<N>]) => Output<StageOutput<N>>): StagePlan {
  const spec = stage(name);
  const processor: Processor<N> = { stage: name, process: async (e) => [output(e)] };
  const sample = input('sample', 0);
  return {
    name,
    async inputs(t, salt, n) {
      const out: { key: Buffer; value: Buffer }[] = [];
      for (let i = 0; i < n; i += 1) {
        const e = input(salt, i);
        out.push({ key: await t.serde.encodeKey(spec.input, e.key), value: await t.serde.encodeValue(spec.input, e.value) });
      }
      return out;
    },
    async output(t) {
      const o = output(sample.value);
      return { event: o.event, value: await t.serde.encodeValue(o.event, o.value) };
    },
    runner(t, ctx, metrics) {
      return new StageRunner<N>({ config: t.config, spec, processor, kafka: kafkaPort(t.kafka), serde: t.serde, ctx: { ...ctx, config: t.config }, metrics, logger: ctx.logger });
    },
  };
}

const seedText = (i: number) => `Seed text number ${i}: the library will extend its opening hours during exam season for students.`;
const draft = samplePersona({ enrichment: null });
const enriched = samplePersona();
const persona = (base: typeof enriched, salt: string, i: number) => ({ ...base, id: hashId('bench', salt, i), seedId: hashId('bench-seed', salt, i) });

export const STAGE_PLANS: readonly StagePlan[] = [
  plan('draft', (salt, i) => {
    const s = { ...sampleSeed(seedText(i)), id: hashId('bench-seed', salt, i) };
    return { key: s.id, value: s };
  }, (e) => ({ event: 'draft', key: e.id, value: { ...draft, seedId: e.id, enrichment: null } })),
  plan('enrich', (salt, i) => {
    const p = { ...persona(draft, salt, i), enrichment: null };
    return { key: p.id, value: p };
  }, (e) => ({ event: 'enriched', key: e.id, value: { ...enriched, id: e.id, seedId: e.seedId } })),
  plan('validate', (salt, i) => {
    const p = persona(enriched, salt, i);
    return { key: p.id, value: p };
  }, (e) => ({ event: 'validated', key: e.id, value: e })),
  plan('index', (salt, i) => {
    const p = persona(enriched, salt, i);
    return { key: p.id, value: p };
  }, (e) => ({ event: 'indexed', key: e.id, value: { id: e.id, version: e.version, seedId: e.seedId, description: e.description, embeddingModel: 'hash-bow-384', store: 'postgres', outcome: 'INSERTED', indexedAt: 1_700_000_000_000 } })),
];

async function producedBy(metrics: PipelineMetrics, name: StageName): Promise<number> {
  return (await metrics.produced.get()).values.filter((v) => v.labels.stage === name).reduce((s, v) => s + v.value, 0);
}

const TIMEOUT_MS = 300_000;

/**
 * One side's pass over the four stages on one fresh set of topics: every stage's input filled with `n` events
 * first, then the stages run one at a time from the last to the first, so each has consumed its input before
 * the stage upstream of it writes more there. Returns each stage's rate.
 */
type Side = (p: StagePlan, t: RunTopics, n: number) => Promise<number>;

async function pass(side: Side, env: Record<string, string>, ctx: SharedContext, n: number): Promise<Map<StageName, number>> {
  const t = await freshTopics(env, ctx.logger);
  try {
    for (const p of STAGE_PLANS) await fill(t.kafka, topicName(t.prefix, stage(p.name).input), await p.inputs(t, t.prefix, n));
    const rates = new Map<StageName, number>();
    for (const p of [...STAGE_PLANS].reverse()) rates.set(p.name, await side(p, t, n));
    return rates;
  } finally {
    await dropTopics(t);
  }
}

function runnerSide(ctx: SharedContext): Side {
  return async (p, t, n) => {
    const metrics = new PipelineMetrics();
    const r = p.runner(t, ctx, metrics);
    await r.start();
    try {
      return await rateUntil(() => producedBy(metrics, p.name), n, TIMEOUT_MS, `runner ${p.name}`);
    } finally {
      await r.stop();
    }
  };
}

const rawSide: Side = async (p, t, n) => {
  const out = await p.output(t);
  const pipe = await startRawPipe(t.kafka, {
    group: `${groupId(t.prefix, p.name)}.raw`, input: topicName(t.prefix, stage(p.name).input), output: topicName(t.prefix, out.event), config: t.config,
    record: (key) => ({ key, value: out.value }),
  });
  try {
    return await rateUntil(() => pipe.committed, n, TIMEOUT_MS, `raw pipe ${p.name}`);
  } finally {
    await pipe.stop();
  }
};

/** The environment of every run: the surrounding settings, the bench's database, sampler mode, hash embeddings, quiet logs. */
export function benchEnv(databaseUrl: string): Record<string, string> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[0].startsWith('PERSONAHUB_') && e[1] !== undefined));
  return { ...inherited, PERSONAHUB_DATABASE_URL: databaseUrl, PERSONAHUB_MODE: 'sampler', PERSONAHUB_EMBEDDER: 'hash', PERSONAHUB_LOG_LEVEL: 'warn', PERSONAHUB_LLM_CACHE_DIR: '' };
}

export async function openBenchStore(config: Config): Promise<Store> {
  const store = await openStore(config);
  await store.migrate();
  return store;
}

export const runnerBenchmark: Benchmark = {
  name: 'runner',
  title: 'Runner overhead: each stage with an identity processor vs a raw kafkajs transactional pipe',
  async run(bctx: BenchContext) {
    const n = bctx.smoke ? 64 : 5_000;
    const repeats = bctx.smoke ? 2 : 3;
    const db = await benchDatabase(loadConfig());
    const env = benchEnv(db.url);
    const config = loadConfig(env);
    const store = await openBenchStore(config);
    const ctx: SharedContext = { config, logger: bctx.logger.child({ bench: 'runner' }), llm: undefined, embedder: hashEmbedder(config.embeddingDimensions), store, now: () => Date.now() };
    const figures: Figure[] = [];
    try {
      const { baseline: raw, candidate: ours } = await takeTurns(repeats, () => pass(rawSide, env, ctx, n), () => pass(runnerSide(ctx), env, ctx, n));
      for (const p of STAGE_PLANS) {
        const r = ours.map((m) => m.get(p.name) ?? 0);
        const b = raw.map((m) => m.get(p.name) ?? 0);
        figures.push(figure(`${p.name}_ratio`, `${p.name}: runner / raw pipe (events/s)`, 'x', r.map((x, i) => x / (b[i] ?? 1)), { op: '>=', value: 0.8 }));
        figures.push(figure(`${p.name}_runner`, `${p.name}: runner`, 'events/s', r));
        figures.push(figure(`${p.name}_raw`, `${p.name}: raw pipe`, 'events/s', b));
      }
    } finally {
      await store.close();
      await db.drop();
    }
    return {
      params: { events: n, repeats, 'transaction size': 16, partitions: config.partitions, 'partition concurrency': config.partitionConcurrency },
      figures,
      notes: [
        'Each pass (one side, all four stages) has its own topics (a fresh prefix, deleted after), every input filled before timing; the stages run one at a time, last first. A rate counts from the first committed output to the last, so group joins are outside it for both sides.',
        'The raw pipe sends each chunk\'s outputs in one request; the runner sends one message per request inside the transaction (kafkajs multi-broker resend defect, runtime/runner.ts), decodes and encodes Avro, claims the chunk\'s inputs in PostgreSQL and counts metrics.',
      ],
    };
  },
};

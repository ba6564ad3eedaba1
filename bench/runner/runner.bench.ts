import { createHash } from 'node:crypto';
import { hashEmbedder } from '../../llm/embedder.ts';
import { processors } from '../../processors/registry.ts';
import { PipelineMetrics } from '../../runtime/metrics.ts';
import type { Output, Processor, SharedContext } from '../../runtime/processor.ts';
import { kafkaPort } from '../../runtime/kafka.ts';
import { StageRunner, type RunningStage } from '../../runtime/runner.ts';
import { openStore } from '../../store/open.ts';
import type { Store } from '../../store/index.ts';
import { groupId, stage, topicName, type EventName, type EventTypes, type StageInput, type StageName, type StageOutput } from '../../topology/index.ts';
import type { Persona, Seed } from '../../schemas/types.generated.ts';
import { loadConfig, type Config } from '../../config/index.ts';
import { BenchError, figure, takeTurns, type Benchmark, type BenchContext, type Figure } from '../harness.ts';
import { benchDatabase, dropTopics, fill, freshTopics, rateUntil, startRawPipe, type RunTopics } from './kafka-bench.ts';
import { benchSeeds } from './seeds.ts';

/**
 * Runner overhead (issue 19, benchmark 1): each Kafka→Kafka stage three ways on the same inputs, taking turns:
 * - raw: a kafkajs consume → produce pipe with nothing of ours in it (kafka-bench.ts), the baseline;
 * - identity: the real runtime/runner.ts with a processor that emits a ready-made output per input, so what is
 *   timed is the runner (Avro decode and encode through the registry, input claims in the store, metrics, one
 *   transaction per chunk);
 * - processor: the runner with the stage's real processor (sampler mode, hash embeddings), which shows how much
 *   of the whole pipeline's gap is the stages' own work rather than the runner.
 * The inputs are real: seeds, their sampler drafts and enriched personas, made by the processors before timing.
 */

/** One pass's inputs for every stage, made once per pass (ids salted per pass). */
interface Corpus {
  seed: Seed[];
  draft: Persona[];
  enriched: Persona[];
  validated: Persona[];
}

async function corpus(ctx: SharedContext, salt: string, n: number): Promise<Corpus> {
  const seed = benchSeeds(salt, n);
  const c = (event: string) => ({ ...ctx, delivery: `bench:${salt}:${event}` });
  const draft: Persona[] = [];
  for (const s of seed) for (const o of await processors.draft.process(s, c(s.id))) draft.push(o.value);
  const enriched: Persona[] = [];
  for (const d of draft) for (const o of await processors.enrich.process(d, c(d.id))) enriched.push(o.value);
  // Validated as the validate stage marks them, without claiming anything in the store before timing.
  const validated = enriched.map((p) => ({ ...p, validation: { textHash: createHash('sha256').update(p.description).digest('hex'), checks: [], repaired: [], validatedAt: ctx.now() } }));
  return { seed, draft, enriched, validated };
}

type Flavour = 'identity' | 'processor';

interface StagePlan {
  name: StageName;
  inputs(t: RunTopics, c: Corpus): Promise<{ key: Buffer; value: Buffer }[]>;
  /** The record the raw pipe writes per input: the bytes the identity processor's output encodes to. */
  output(t: RunTopics, c: Corpus): Promise<{ event: EventName; value: Buffer }>;
  runner(flavour: Flavour, t: RunTopics, ctx: SharedContext, metrics: PipelineMetrics, c: Corpus): RunningStage;
}

function plan<N extends StageName>(name: N, input: (c: Corpus) => readonly { key: string; value: EventTypes[StageInput<N>] }[], output: (e: EventTypes[StageInput<N>], c: Corpus) => Output<StageOutput<N>>): StagePlan {
  const spec = stage(name);
  const first = (c: Corpus) => {
    const e = input(c)[0];
    if (!e) throw new BenchError('PH_BENCH_EMPTY', `no ${spec.input} input`);
    return e.value;
  };
  return {
    name,
    async inputs(t, c) {
      const out: { key: Buffer; value: Buffer }[] = [];
      for (const e of input(c)) out.push({ key: await t.serde.encodeKey(spec.input, e.key), value: await t.serde.encodeValue(spec.input, e.value) });
      return out;
    },
    async output(t, c) {
      const o = output(first(c), c);
      return { event: o.event, value: await t.serde.encodeValue(o.event, o.value) };
    },
    runner(flavour, t, ctx, metrics, c) {
      const sample = output(first(c), c);
      const identity: Processor<N> = { stage: name, process: async (e) => [{ ...sample, key: keyOf(e) }] };
      const processor: Processor<N> = flavour === 'identity' ? identity : processors[name];
      return new StageRunner<N>({ config: t.config, spec, processor, kafka: kafkaPort(t.kafka), serde: t.serde, ctx: { ...ctx, config: t.config }, metrics, logger: ctx.logger });
    },
  };
}

const keyOf = (e: Seed | Persona): string => e.id;
const keyed = <T extends Seed | Persona>(list: readonly T[]) => list.map((value) => ({ key: value.id, value }));

const STAGE_PLANS: readonly StagePlan[] = [
  plan('draft', (c) => keyed(c.seed), (_e, c) => ({ event: 'draft', key: '', value: c.draft[0] as Persona })),
  plan('enrich', (c) => keyed(c.draft), (_e, c) => ({ event: 'enriched', key: '', value: c.enriched[0] as Persona })),
  plan('validate', (c) => keyed(c.enriched), (_e, c) => ({ event: 'validated', key: '', value: c.validated[0] as Persona })),
  plan('index', (c) => keyed(c.validated), (_e, c) => {
    const p = c.validated[0] as Persona;
    return { event: 'indexed', key: '', value: { id: p.id, version: p.version, seedId: p.seedId, description: p.description, embeddingModel: 'hash-bow-384', store: 'postgres', outcome: 'INSERTED', indexedAt: 1_700_000_000_000 } };
  }),
];

async function producedBy(metrics: PipelineMetrics, name: StageName): Promise<number> {
  return (await metrics.produced.get()).values.filter((v) => v.labels.stage === name).reduce((s, v) => s + v.value, 0);
}

const TIMEOUT_MS = 300_000;

/** The environment of every run: the surrounding settings, the run's database, sampler mode, hash embeddings, quiet logs. */
export function benchEnv(databaseUrl: string): Record<string, string> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[0].startsWith('PERSONAHUB_') && e[1] !== undefined));
  return { ...inherited, PERSONAHUB_DATABASE_URL: databaseUrl, PERSONAHUB_MODE: 'sampler', PERSONAHUB_EMBEDDER: 'hash', PERSONAHUB_LOG_LEVEL: 'warn', PERSONAHUB_LLM_CACHE_DIR: '' };
}

async function openBenchStore(config: Config): Promise<Store> {
  const store = await openStore(config);
  await store.migrate();
  return store;
}

type Side = 'raw' | Flavour;

/**
 * One side's pass over the four stages, with its own topics and database: every stage's input filled with the
 * corpus first, then the stages run one at a time from the last to the first, so each has consumed its input
 * before the stage upstream of it writes more there. Returns each stage's rate.
 */
async function pass(side: Side, bctx: BenchContext, n: number): Promise<Map<StageName, number>> {
  const db = await benchDatabase(loadConfig());
  const env = benchEnv(db.url);
  const config = loadConfig(env);
  const store = await openBenchStore(config);
  const ctx: SharedContext = { config, logger: bctx.logger.child({ bench: 'runner', side }), llm: undefined, embedder: hashEmbedder(config.embeddingDimensions), store, now: () => Date.now() };
  const t = await freshTopics(env, ctx.logger);
  try {
    const c = await corpus(ctx, t.prefix, n);
    for (const p of STAGE_PLANS) await fill(t.kafka, topicName(t.prefix, stage(p.name).input), await p.inputs(t, c));
    const rates = new Map<StageName, number>();
    for (const p of [...STAGE_PLANS].reverse()) {
      if (side === 'raw') {
        const out = await p.output(t, c);
        const pipe = await startRawPipe(t.kafka, {
          group: `${groupId(t.prefix, p.name)}.raw`, input: topicName(t.prefix, stage(p.name).input), output: topicName(t.prefix, out.event), config: t.config,
          record: (key) => ({ key, value: out.value }),
        });
        try {
          rates.set(p.name, await rateUntil(() => pipe.committed, n, TIMEOUT_MS, `raw pipe ${p.name}`));
        } finally {
          await pipe.stop();
        }
      } else {
        const metrics = new PipelineMetrics();
        const r = p.runner(side, t, ctx, metrics, c);
        await r.start();
        try {
          rates.set(p.name, await rateUntil(() => producedBy(metrics, p.name), n, TIMEOUT_MS, `${side} ${p.name}`));
        } finally {
          await r.stop();
        }
      }
    }
    return rates;
  } finally {
    await dropTopics(t);
    await store.close();
    await db.drop();
  }
}

export const runnerBenchmark: Benchmark = {
  name: 'runner',
  title: 'Runner overhead: each stage through the runner (identity and real processor) vs a raw kafkajs transactional pipe',
  async run(bctx: BenchContext) {
    const n = bctx.smoke ? 64 : 1_500;
    const repeats = bctx.smoke ? 2 : 3;
    const [raw, identity, real] = await takeTurns(repeats, [() => pass('raw', bctx, n), () => pass('identity', bctx, n), () => pass('processor', bctx, n)]);
    if (!raw || !identity || !real) throw new BenchError('PH_BENCH_EMPTY', 'a side did not run');
    const figures: Figure[] = [];
    const ratio = (a: number[], b: number[]) => a.map((x, i) => x / (b[i] ?? Number.NaN));
    for (const p of STAGE_PLANS) {
      const r = raw.map((m) => m.get(p.name) ?? 0);
      const i = identity.map((m) => m.get(p.name) ?? 0);
      const x = real.map((m) => m.get(p.name) ?? 0);
      figures.push(figure(`${p.name}_ratio`, `${p.name}: runner with identity processor / raw pipe`, 'x', ratio(i, r), { op: '>=', value: 0.8 }));
      figures.push(figure(`${p.name}_processor_ratio`, `${p.name}: runner with the real processor / raw pipe`, 'x', ratio(x, r)));
      figures.push(figure(`${p.name}_raw`, `${p.name}: raw pipe`, 'events/s', r));
      figures.push(figure(`${p.name}_identity`, `${p.name}: runner, identity processor`, 'events/s', i));
      figures.push(figure(`${p.name}_processor`, `${p.name}: runner, real processor`, 'events/s', x));
    }
    const config = loadConfig();
    return {
      params: { events: n, repeats, 'transaction size': 16, partitions: config.partitions, 'partition concurrency': config.partitionConcurrency, mode: 'sampler', embedder: 'hash' },
      figures,
      notes: [
        'Each pass (one side, all four stages) has its own topics and database, created before timing and dropped after, every input filled first; the stages run one at a time, last first. A rate counts from the first committed output to the last, so group joins are outside it.',
        'The raw pipe sends each chunk\'s outputs in one request; the runner one request per output partition (the kafkajs multi-broker resend defect, runtime/runner.ts), and it decodes and encodes Avro, claims the chunk\'s inputs in PostgreSQL and counts metrics.',
      ],
    };
  },
};

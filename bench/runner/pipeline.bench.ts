import { buildPipeline, createRunner } from '../../cli/wiring.ts';
import { loadConfig } from '../../config/index.ts';
import type { RunningStage } from '../../runtime/runner.ts';
import type { PipelineMetrics } from '../../runtime/metrics.ts';
import { stage, groupId, topicName, type StageName } from '../../topology/index.ts';
import { samplePersona } from '../../test/helpers/samples.ts';
import { BenchError, figure, takeTurns, type Benchmark, type BenchContext } from '../harness.ts';
import { benchDatabase, dropTopics, fill, freshTopics, startRawPipe, type RawPipe, type RunTopics } from './kafka-bench.ts';
import { benchEnv } from './runner.bench.ts';
import { benchSeeds } from './seeds.ts';

/**
 * The whole pipeline (issue 19, benchmark 1, second half): the four stages in sampler mode with hash embeddings,
 * all in this process, against a raw kafkajs pipe of four transactional hops (chunks of 16, read_committed,
 * sendOffsets) writing bytes of the same sizes. The seeds are in the seed topic before either starts.
 */

const HOPS: readonly StageName[] = ['draft', 'enrich', 'validate', 'index'];
const TIMEOUT_MS = 600_000;

async function fillSeeds(t: RunTopics, n: number): Promise<void> {
  const records: { key: Buffer; value: Buffer }[] = [];
  for (const seed of benchSeeds(t.prefix, n)) records.push({ key: await t.serde.encodeKey('seed', seed.id), value: await t.serde.encodeValue('seed', seed) });
  await fill(t.kafka, topicName(t.prefix, 'seed'), records);
}

/**
 * Waits for the work to finish and returns its rate: from the first commit of the first hop to the moment
 * `done` holds, `n` events over that time (group joins before the first commit left out, for both sides).
 */
async function pipelineRate(firstHop: () => Promise<number> | number, done: () => Promise<boolean>, n: number, what: string): Promise<number> {
  const deadline = performance.now() + TIMEOUT_MS;
  let started: number | undefined;
  for (;;) {
    const at = performance.now();
    if (started === undefined && (await firstHop()) > 0) started = at;
    if (started !== undefined && (await done())) return n / (Math.max(performance.now() - started, 20) / 1000);
    if (at > deadline) throw new BenchError('PH_BENCH_TIMEOUT', `${what}: not done after ${TIMEOUT_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function produced(metrics: PipelineMetrics, name: StageName, topic?: string): Promise<number> {
  return (await metrics.produced.get()).values.filter((v) => v.labels.stage === name && (topic === undefined || v.labels.topic === topic)).reduce((s, v) => s + v.value, 0);
}

async function oursPass(ctx: BenchContext, n: number): Promise<number> {
  const db = await benchDatabase(loadConfig());
  const env = benchEnv(db.url);
  const t = await freshTopics(env, ctx.logger);
  try {
    await fillSeeds(t, n);
    const pipeline = await buildPipeline(t.config, ctx.logger.child({ bench: 'pipeline' }), t.prefix);
    const runners: RunningStage[] = [];
    try {
      for (const name of HOPS) {
        const r = createRunner(pipeline, name, ctx.logger);
        await r.start();
        runners.push(r);
      }
      const m = pipeline.metrics;
      // Every seed is settled when validate has emitted one outcome per persona and index has stored every validated one.
      return await pipelineRate(() => produced(m, 'draft'), async () => {
        const validated = await produced(m, 'validate', topicName(t.prefix, 'validated'));
        return (await produced(m, 'validate')) >= n && (await produced(m, 'index')) >= validated;
      }, n, 'pipeline');
    } finally {
      for (const r of runners) await r.stop();
      await pipeline.close();
    }
  } finally {
    await dropTopics(t);
    await db.drop();
  }
}

async function rawPass(ctx: BenchContext, n: number): Promise<number> {
  const t = await freshTopics(benchEnv(loadConfig().databaseUrl), ctx.logger);
  const pipes: RawPipe[] = [];
  try {
    await fillSeeds(t, n);
    const draft = await t.serde.encodeValue('draft', samplePersona({ enrichment: null }));
    const enriched = await t.serde.encodeValue('enriched', samplePersona());
    const p = samplePersona();
    const indexed = await t.serde.encodeValue('indexed', { id: p.id, version: p.version, seedId: p.seedId, description: p.description, embeddingModel: 'hash-bow-384', store: 'postgres', outcome: 'INSERTED', indexedAt: 1_700_000_000_000 });
    const bytes = { draft, enriched, validated: enriched, indexed } as const;
    for (const name of HOPS) {
      const s = stage(name);
      const out = s.outputs[0];
      if (out === undefined || !(out in bytes)) throw new BenchError('PH_BENCH_TOPOLOGY', `stage ${name} has no output the raw pipe knows`);
      const value = bytes[out as keyof typeof bytes];
      pipes.push(await startRawPipe(t.kafka, { group: `${groupId(t.prefix, name)}.raw`, input: topicName(t.prefix, s.input), output: topicName(t.prefix, out), config: t.config, record: (key) => ({ key, value }) }));
    }
    const [first] = pipes;
    const last = pipes[pipes.length - 1];
    if (!first || !last) throw new BenchError('PH_BENCH_TOPOLOGY', 'no hops');
    return await pipelineRate(() => first.committed, async () => last.committed >= n, n, 'raw four-hop pipe');
  } finally {
    for (const pipe of pipes) await pipe.stop();
    await dropTopics(t);
  }
}

export const pipelineBenchmark: Benchmark = {
  name: 'pipeline',
  title: 'Whole pipeline in sampler mode vs a raw four-hop kafkajs pipe',
  async run(ctx: BenchContext) {
    const n = ctx.smoke ? 60 : 2_000;
    const repeats = ctx.smoke ? 2 : 3;
    const [raw = [], ours = []] = await takeTurns(repeats, [() => rawPass(ctx, n), () => oursPass(ctx, n)]);
    const config = loadConfig();
    return {
      params: { seeds: n, repeats, 'transaction size': 16, partitions: config.partitions, 'partition concurrency': config.partitionConcurrency, embedder: 'hash', mode: 'sampler' },
      figures: [
        figure('pipeline_ratio', 'pipeline / raw four-hop pipe (seeds/s)', 'x', ours.map((c, i) => c / (raw[i] ?? Number.NaN)), { op: '>=', value: 0.8 }),
        figure('pipeline', 'pipeline, all four stages in one process', 'seeds/s', ours),
        figure('raw', 'raw four-hop pipe', 'seeds/s', raw),
      ],
      notes: [
        'Each pass has its own topics and (for the pipeline) its own database, created before timing and dropped after; the seeds are in the seed topic before the stages start.',
        'The rate runs from the first commit of the first hop until every seed is settled (validated or rejected, and every validated persona indexed); the raw pipe\'s hops write bytes of the real outputs\' sizes.',
      ],
    };
  },
};

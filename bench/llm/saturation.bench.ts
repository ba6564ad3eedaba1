import { buildPipeline, createRunner } from '../../cli/wiring.ts';
import { loadConfig } from '../../config/index.ts';
import { processors } from '../../processors/registry.ts';
import type { PipelineMetrics } from '../../runtime/metrics.ts';
import { topicName } from '../../topology/index.ts';
import { FIXTURE_CHAT_MODEL, FIXTURE_EMBEDDING_MODEL, startFixtureLlm, type FixtureLlm } from '../../test/helpers/fixture-llm.ts';
import { BenchError, figure, takeTurns, type Benchmark, type BenchContext, type Figure } from '../harness.ts';
import { benchDatabase, dropTopics, fill, freshTopics, rateUntil } from '../runner/kafka-bench.ts';
import { benchEnv } from '../runner/runner.bench.ts';
import { benchSeeds } from '../runner/seeds.ts';

/**
 * LLM-bound saturation (issue 19, benchmark 2): the draft stage in LLM mode against the fixture LLM answering
 * every request after a fixed latency, at a given concurrency. Two baselines: the ideal (concurrency / latency,
 * what a perfect client would get), and the draft processor called directly by as many workers, with no Kafka
 * and no runner, measured in the same run, taking turns. RSS is sampled while the stage runs.
 *
 * How the stage is set to a concurrency C: the runner works on chunks of 16 events per partition, each chunk's
 * events at most PERSONAHUB_MAX_IN_FLIGHT at a time, PERSONAHUB_PARTITION_CONCURRENCY partitions at a time; so C
 * requests in flight need C/16 partitions processed at once with 16 in flight each, and an LLM client allowing C.
 */

const LATENCY_MS = 200;
/** Rounds of requests per run: the rate is taken from the first commit on, so the first round is partly outside it. */
const ROUNDS = 8;

function env(databaseUrl: string, llm: FixtureLlm, concurrency: number): Record<string, string> {
  const partitions = String(Math.max(1, Math.ceil(concurrency / 16)));
  return {
    ...benchEnv(databaseUrl), PERSONAHUB_MODE: 'llm', PERSONAHUB_LLM_BASE_URL: llm.baseURL, PERSONAHUB_LLM_MODEL: FIXTURE_CHAT_MODEL,
    PERSONAHUB_EMBEDDING_MODEL: FIXTURE_EMBEDDING_MODEL, PERSONAHUB_LLM_CONCURRENCY: String(concurrency), PERSONAHUB_PARTITIONS: partitions,
    PERSONAHUB_PARTITION_CONCURRENCY: partitions, PERSONAHUB_MAX_IN_FLIGHT: '16', PERSONAHUB_LLM_CACHE_DIR: '',
  };
}

async function producedBy(metrics: PipelineMetrics): Promise<number> {
  return (await metrics.produced.get()).values.filter((v) => v.labels.stage === 'draft').reduce((s, v) => s + v.value, 0);
}

interface StageRun {
  rate: number;
  peakRssMiB: number;
  startRssMiB: number;
  endRssMiB: number;
}

const mib = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10;

/** The draft stage through the runner, on its own topics and database, with RSS sampled every 100 ms. */
async function stageRun(ctx: BenchContext, llm: FixtureLlm, concurrency: number, n: number): Promise<StageRun> {
  const db = await benchDatabase(loadConfig());
  const e = env(db.url, llm, concurrency);
  const t = await freshTopics(e, ctx.logger);
  try {
    const seeds = benchSeeds(t.prefix, n);
    const records: { key: Buffer; value: Buffer }[] = [];
    for (const s of seeds) records.push({ key: await t.serde.encodeKey('seed', s.id), value: await t.serde.encodeValue('seed', s) });
    await fill(t.kafka, topicName(t.prefix, 'seed'), records);
    const pipeline = await buildPipeline(t.config, ctx.logger.child({ bench: 'llm' }), t.prefix);
    const runner = createRunner(pipeline, 'draft', ctx.logger);
    const startRss = process.memoryUsage().rss;
    let peak = startRss;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 100);
    try {
      await runner.start();
      const rate = await rateUntil(() => producedBy(pipeline.metrics), n, 600_000, `draft stage at concurrency ${concurrency}`);
      return { rate, peakRssMiB: mib(peak), startRssMiB: mib(startRss), endRssMiB: mib(process.memoryUsage().rss) };
    } finally {
      clearInterval(sampler);
      await runner.stop();
      await pipeline.close();
    }
  } finally {
    await dropTopics(t);
    await db.drop();
  }
}

/** The draft processor alone: `concurrency` workers calling it back to back on the same seeds, no Kafka, no runner. */
async function bareRun(ctx: BenchContext, llm: FixtureLlm, concurrency: number, n: number): Promise<number> {
  const db = await benchDatabase(loadConfig());
  try {
    const config = loadConfig(env(db.url, llm, concurrency));
    const pipeline = await buildPipeline(config, ctx.logger.child({ bench: 'llm' }), `bare${concurrency}`);
    try {
      const seeds = benchSeeds(`bare-${Date.now()}`, n);
      let next = 0;
      const start = performance.now();
      await Promise.all(Array.from({ length: concurrency }, async () => {
        for (let i = next++; i < seeds.length; i = next++) {
          const seed = seeds[i];
          if (seed) await processors.draft.process(seed, { ...pipeline.ctx, delivery: `bare:${seed.id}` });
        }
      }));
      return n / ((performance.now() - start) / 1000);
    } finally {
      await pipeline.close();
    }
  } finally {
    await db.drop();
  }
}

export const llmSaturationBenchmark: Benchmark = {
  name: 'llm',
  title: `LLM-bound saturation: the draft stage against the fixture LLM at ${LATENCY_MS} ms latency`,
  async run(ctx: BenchContext) {
    const levels = ctx.smoke ? [16] : [16, 64, 256];
    const repeats = ctx.smoke ? 2 : 3;
    const llm = await startFixtureLlm({ latencyMs: LATENCY_MS });
    const figures: Figure[] = [];
    const params: Record<string, number | string> = { 'latency (ms)': LATENCY_MS, repeats, 'requests per run': `${ROUNDS} × concurrency` };
    try {
      for (const c of levels) {
        const n = c * ROUNDS;
        const ideal = c / (LATENCY_MS / 1000);
        const [bare = [], stage = []] = await takeTurns<number | StageRun>(repeats, [() => bareRun(ctx, llm, c, n), () => stageRun(ctx, llm, c, n)]);
        const stageRuns = stage.filter((s): s is StageRun => typeof s !== 'number');
        const bareRates = bare.filter((s): s is number => typeof s === 'number');
        if (stageRuns.length !== repeats || bareRates.length !== repeats) throw new BenchError('PH_BENCH_EMPTY', `concurrency ${c}: a side did not run`);
        const rates = stageRuns.map((s) => s.rate);
        ctx.logger.info({ bench: 'llm', concurrency: c, rates: rates.map(Math.round), ideal }, 'level done');
        figures.push(figure(`c${c}_ideal_ratio`, `concurrency ${c}: draft stage / ideal (${ideal} events/s)`, 'x', rates.map((r) => r / ideal), { op: '>=', value: 0.95 }));
        figures.push(figure(`c${c}_bare_ratio`, `concurrency ${c}: draft stage / the processor called directly`, 'x', rates.map((r, i) => r / (bareRates[i] ?? Number.NaN))));
        figures.push(figure(`c${c}_stage`, `concurrency ${c}: draft stage`, 'events/s', rates));
        figures.push(figure(`c${c}_bare`, `concurrency ${c}: processor called directly`, 'events/s', bareRates));
        figures.push(figure(`c${c}_peak_rss`, `concurrency ${c}: peak RSS of the bench process (stage and fixture)`, 'MiB', stageRuns.map((s) => s.peakRssMiB)));
        figures.push(figure(`c${c}_rss_growth`, `concurrency ${c}: RSS at the end minus at the start of a stage run`, 'MiB', stageRuns.map((s) => Math.max(0, s.endRssMiB - s.startRssMiB))));
      }
    } finally {
      await llm.close();
    }
    return {
      params,
      figures,
      notes: [
        'The fixture LLM runs in the bench process (fastify, answers generated from the request\'s JSON schema): at high concurrency it shares the 2 cores with the stage, as a model server on the same machine would.',
        'Concurrency C is set as the runner allows it: C/16 partitions, all processed at once, 16 events of each chunk in flight, an LLM client allowing C. A chunk commits only when its slowest event is done, so each round costs the latency plus one transaction.',
      ],
    };
  },
};

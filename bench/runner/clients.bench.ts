import { createHash } from 'node:crypto';
import { loadConfig } from '../../config/index.ts';
import { hashEmbedder } from '../../llm/embedder.ts';
import { PipelineMetrics } from '../../runtime/metrics.ts';
import { kafkaPort } from '../../runtime/kafka.ts';
import type { Processor, SharedContext } from '../../runtime/processor.ts';
import { StageRunner } from '../../runtime/runner.ts';
import { openStore } from '../../store/open.ts';
import { groupId, stage, topicName } from '../../topology/index.ts';
import { samplePersona } from '../../test/helpers/samples.ts';
import { BenchError, figure, packageVersions, type Benchmark, type BenchContext, type Figure } from '../harness.ts';
import { confluentClient, startConfluentPipe, type ConfluentClient } from './confluent-pipe.ts';
import { benchDatabase, dropTopics, fill, freshTopics, rateUntil, startRawPipe, type RawPipe, type RawPipeOptions, type RunTopics } from './kafka-bench.ts';
import { startPlatformaticPipe } from './platformatic-pipe.ts';
import { benchEnv } from './runner.bench.ts';

/**
 * Kafka clients (issue 19, benchmark 1, the clients half): the raw transactional consume → produce pipe of
 * kafka-bench.ts written with kafkajs, with @platformatic/kafka and with @confluentinc/kafka-javascript, and the
 * runner (identity processor, kafkajs) on the same hop, in one run. The hop is enrich's (draft → enriched), whose
 * records are the size of the pipeline's largest (about 2.6 KB), so bytes moved weigh as they do in the stages.
 *
 * All sides of a repeat read the same filled input topic, each as its own consumer group, and write to the same
 * output topic: a repeat's topics, database and input are made once, before timing, and the sides take turns
 * on them in an order that rotates every repeat (takeTurns' rotation, with the set-up shared within a repeat).
 */

const HOP = 'enrich';
const TIMEOUT_MS = 300_000;

type Side = 'kafkajs' | 'platformatic' | 'confluent' | 'runner';

interface Repeat {
  t: RunTopics;
  ctx: SharedContext;
  output: Buffer;
  close(): Promise<void>;
}

async function prepare(bctx: BenchContext, n: number): Promise<Repeat> {
  const db = await benchDatabase(loadConfig());
  const env = benchEnv(db.url);
  const config = loadConfig(env);
  const store = await openStore(config);
  const t = await freshTopics(env, bctx.logger).catch(async (error: unknown) => {
    await store.close();
    await db.drop();
    throw error;
  });
  const ctx: SharedContext = { config: t.config, logger: bctx.logger.child({ bench: 'clients' }), llm: undefined, embedder: hashEmbedder(config.embeddingDimensions), store, now: () => Date.now() };
  const close = async () => {
    await dropTopics(t);
    await store.close();
    await db.drop();
  };
  try {
    await store.migrate();
    const inputs: { key: Buffer; value: Buffer }[] = [];
    for (let i = 0; i < n; i += 1) {
      // Distinct ids, so the runner's input claims see n inputs and the records spread over the partitions.
      const id = createHash('sha256').update(`${t.prefix}:${i}`).digest('hex').slice(0, 32);
      inputs.push({ key: await t.serde.encodeKey('draft', id), value: await t.serde.encodeValue('draft', samplePersona({ id, enrichment: null })) });
    }
    await fill(t.kafka, topicName(t.prefix, stage(HOP).input), inputs);
    return { t, ctx, output: await t.serde.encodeValue('enriched', samplePersona()), close };
  } catch (error) {
    await close();
    throw error;
  }
}

async function rawSide(side: Exclude<Side, 'runner'>, r: Repeat, rep: number, n: number, confluent: ConfluentClient | undefined): Promise<number> {
  const o: RawPipeOptions = {
    // A group per side and repeat, so a repeat may read input that an earlier one read (the smoke run's).
    group: `${groupId(r.t.prefix, HOP)}.${side}.${rep}`, input: topicName(r.t.prefix, stage(HOP).input), output: topicName(r.t.prefix, 'enriched'), config: r.t.config,
    record: (key) => ({ key, value: r.output }),
  };
  let pipe: RawPipe;
  if (side === 'kafkajs') pipe = await startRawPipe(r.t.kafka, o);
  else if (side === 'platformatic') pipe = await startPlatformaticPipe(o);
  else if (confluent) pipe = await startConfluentPipe(confluent, o);
  else throw new BenchError('PH_BENCH_CONFLUENT', 'the confluent side ran without the client');
  try {
    return await rateUntil(() => pipe.committed, n, TIMEOUT_MS, `${side} pipe`);
  } finally {
    await pipe.stop();
  }
}

async function runnerSide(r: Repeat, n: number): Promise<number> {
  const metrics = new PipelineMetrics();
  const value = samplePersona();
  const identity: Processor<typeof HOP> = { stage: HOP, process: async (e) => [{ event: 'enriched', key: e.id, value }] };
  const runner = new StageRunner<typeof HOP>({ config: r.t.config, spec: stage(HOP), processor: identity, kafka: kafkaPort(r.t.kafka), serde: r.t.serde, ctx: r.ctx, metrics, logger: r.ctx.logger });
  await runner.start();
  try {
    const produced = async () => (await metrics.produced.get()).values.filter((v) => v.labels.stage === HOP).reduce((s, v) => s + v.value, 0);
    return await rateUntil(produced, n, TIMEOUT_MS, 'runner');
  } finally {
    await runner.stop();
  }
}

export const clientsBenchmark: Benchmark = {
  name: 'clients',
  title: 'Kafka clients: the raw transactional pipe with kafkajs, @platformatic/kafka and @confluentinc/kafka-javascript, and the runner, on one hop',
  async run(bctx: BenchContext) {
    const n = bctx.smoke ? 64 : 2_000;
    // Five full repeats: a load spike of the shared machine then moves one sample per side, not the median.
    const repeats = bctx.smoke ? 2 : 5;
    // The smoke run (inside the suite, about 15 s) keeps the two pure-JavaScript clients on one set-up: it never
    // spends the confluent build's minutes, and the runner is smoked by the runner benchmark. The runner claims
    // its inputs in the store, so where it runs every repeat needs inputs (and a database) of its own.
    const confluent = bctx.smoke ? undefined : await confluentClient(bctx.cacheDir, true, bctx.logger);
    const sides: Side[] = bctx.smoke ? ['kafkajs', 'platformatic'] : ['kafkajs', 'platformatic', ...(confluent ? (['confluent'] as const) : []), 'runner'];
    const rates = new Map<Side, number[]>(sides.map((s) => [s, []]));
    const cpu = new Map<Side, number[]>(sides.map((s) => [s, []]));
    let r: Repeat | undefined;
    try {
      for (let rep = 0; rep < repeats; rep += 1) {
        if (r === undefined || sides.includes('runner')) {
          await r?.close();
          r = undefined;
          r = await prepare(bctx, n);
        }
        for (let k = 0; k < sides.length; k += 1) {
          const side = sides[(rep + k) % sides.length] as Side;
          // The process's CPU time over the whole side (connect to stop, librdkafka's threads included): what each
          // client costs per event, a figure the machine's load moves far less than a rate.
          const before = process.cpuUsage();
          rates.get(side)?.push(side === 'runner' ? await runnerSide(r, n) : await rawSide(side, r, rep, n, confluent));
          const used = process.cpuUsage(before);
          cpu.get(side)?.push((used.user + used.system) / 1000 / (n / 1000));
        }
      }
    } finally {
      await r?.close();
    }
    const of = (side: Side) => rates.get(side) ?? [];
    const vsKafkajs = (side: Side) => of(side).map((x, i) => x / (of('kafkajs')[i] ?? Number.NaN));
    const cpuOf = (side: Side) => cpu.get(side) ?? [];
    const figures: Figure[] = [];
    const labels: Record<Side, string> = { kafkajs: 'raw pipe, kafkajs', platformatic: 'raw pipe, @platformatic/kafka', confluent: 'raw pipe, @confluentinc/kafka-javascript', runner: 'runner (kafkajs), identity processor' };
    for (const side of sides.filter((s) => s !== 'kafkajs')) figures.push(figure(`${side}_ratio`, `${labels[side]} / raw pipe, kafkajs`, 'x', vsKafkajs(side)));
    for (const side of sides) figures.push(figure(side, labels[side], 'events/s', of(side)));
    for (const side of sides.filter((s) => s !== 'kafkajs')) figures.push(figure(`${side}_cpu_ratio`, `${labels[side]}: CPU per event / kafkajs's`, 'x', cpuOf(side).map((x, i) => x / (cpuOf('kafkajs')[i] ?? Number.NaN))));
    for (const side of sides) figures.push(figure(`${side}_cpu`, `${labels[side]}: CPU per 1,000 events`, 'ms', cpuOf(side)));
    const config = loadConfig();
    const versions = packageVersions(['kafkajs', '@platformatic/kafka']);
    return {
      params: {
        events: n, repeats, hop: `${HOP} (draft → enriched)`, 'transaction size': 16, partitions: config.partitions, 'partition concurrency': config.partitionConcurrency,
        kafkajs: versions.kafkajs ?? '?', '@platformatic/kafka': versions['@platformatic/kafka'] ?? '?', '@confluentinc/kafka-javascript': confluent ? confluent.version : 'not run (smoke run)',
      },
      figures,
      notes: [
        'Every side: read_committed, one transactional producer per input partition, one transaction per chunk of 16 inputs of one partition (one send of the outputs, the offsets sent in the transaction, commit), at most the configured partitions at a time; outputs are the same bytes, keyed by the input key, partitioned by murmur2.',
        'A repeat\'s topics, database and 2.6 KB inputs are made before timing and shared by the sides (each its own consumer group); a rate counts from the first committed output to the last, so group joins are outside it. CPU is this process\'s (user and system, all threads) from connecting to stopping, group joins included, so it also counts what a client spends waiting in its poll loops.',
        '@platformatic/kafka delivers one stream of all partitions, so its pipe cuts chunks per partition itself; @confluentinc/kafka-javascript is driven through its kafkajs-compatible API, built from source into the cache dir by the first full run (bench/runner/confluent-pipe.ts says why it is no dependency).',
      ],
    };
  },
};

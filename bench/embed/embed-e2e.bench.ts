import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { LlamaEmbeddingContext } from 'node-llama-cpp';
import pg from 'pg';
import { buildEmbedder, buildLlm } from '../../cli/wiring.ts';
import { loadConfig } from '../../config/index.ts';
import { loadLlama } from '../../models/server/engine.ts';
import { EMBEDDING_MODEL } from '../../models/weights/fetch.ts';
import { topicName, type StageName } from '../../topology/index.ts';
import {
  BenchError, figure, freePort, httpGet, metricSum, migrateStore, processCpuSeconds, rate, spawnChild, startModelServer, stopChild, takeTurns, timed, waitFor,
  type Benchmark, type BenchContext, type Child, type Figure,
} from '../harness.ts';
import { benchDatabase, dropTopics, fill, freshTopics, type RunTopics } from '../runner/kafka-bench.ts';
import { benchEnv } from '../runner/runner.bench.ts';
import { benchSeeds } from '../runner/seeds.ts';
import { describeSummary, flameGraph, summarizeProfile, trimProfile } from './flamegraph.ts';

/**
 * End to end in sampler mode with the real embedder (issue 19, benchmark 4). Each pass runs the four stages as
 * separate `personahub processor` processes (as a deployment does), each under `node --cpu-prof` and with its
 * Prometheus endpoint, on topics and a database of its own; the seeds go in once every stage reports ready.
 * The candidate embeds through a local model server (`personahub llm serve`, all-MiniLM-L6-v2, started once
 * for the run); the baseline is the same pipeline with the hash embedder, the two taking turns. A third side
 * embeds the texts the last candidate pass indexed straight through the embedder, in batches: the bare loop
 * the enrich stage is held against. The per-stage breakdown comes from each stage process's /metrics
 * (time in process() per event, CPU per event), and the hottest stage process's profile becomes a flame graph.
 */

const HOPS: readonly StageName[] = ['draft', 'enrich', 'validate', 'index'];
const TIMEOUT_MS = 600_000;
/** Each scrape costs the stage processes a /metrics render, which shows in their profiles: four a second is enough. */
const POLL_MS = 250;
/** The bare loop's batch: what one embeddings request of a batching caller would carry. */
const BARE_BATCH = 32;
/** Texts the bare loop embeds (the first of those indexed): at one or two a second on a loaded machine, more only adds minutes. */
const BARE_TEXTS = 24;

type Side = 'hash' | 'llm';

interface StageTotals {
  consumed: number;
  produced: number;
  /** Sum and count of personahub_processing_duration_seconds. */
  processSeconds: number;
  processCount: number;
  /** personahub_process_cpu_seconds_total of the stage's process, from the seeds' arrival to the end (start-up left out). */
  cpuSeconds: number;
  /** Outputs per second from the stage's first input decoded to its last output. */
  rate: number;
}

interface PassResult {
  seedsPerSecond: number;
  stages: Map<StageName, StageTotals>;
  /** CPU the model server spent during the pass, seconds (0 for the hash side, which never calls it). */
  serverCpuSeconds: number;
  /** The descriptions the pass indexed (the texts the enrich stage embedded, less the personas rejected). */
  texts: string[];
  /** The stage whose process used the most CPU, and its profile trimmed to the pass (start-up and shutdown left out). */
  hottest: { stage: StageName; profile: string };
}

async function pass(ctx: BenchContext, side: Side, n: number, server: { url: string; pid: number }, passNo: number): Promise<PassResult> {
  const db = await benchDatabase(loadConfig());
  const env = { ...benchEnv(db.url), PERSONAHUB_EMBEDDER: side, PERSONAHUB_LLM_BASE_URL: server.url };
  let t: RunTopics | undefined;
  const children: Child[] = [];
  try {
    // Migrated before the stages start, so four processes never race to create the same tables.
    await migrateStore(loadConfig(benchEnv(db.url)));
    t = await freshTopics(env, ctx.logger);
    const profileDir = join(ctx.workDir, `profiles-${passNo}-${side}`);
    mkdirSync(profileDir, { recursive: true });
    const ports = new Map<StageName, number>();
    for (const name of HOPS) {
      const port = await freePort();
      ports.set(name, port);
      children.push(spawnChild(ctx, `${side}-${passNo}-${name}`, ['--cpu-prof', '--cpu-prof-dir', profileDir, '--import', 'tsx', 'cli/main.ts', 'processor', name], {
        ...env, PERSONAHUB_TOPIC_PREFIX: t.prefix, PERSONAHUB_METRICS_PORT: String(port),
      }));
    }
    const url = (name: StageName, path: string) => `http://127.0.0.1:${ports.get(name) ?? 0}${path}`;
    await waitFor(`${side} stages ready`, children, async () => (await Promise.all(HOPS.map(async (name) => (await httpGet(url(name, '/health/ready'))).ok))).every(Boolean), TIMEOUT_MS, POLL_MS);

    const records: { key: Buffer; value: Buffer }[] = [];
    for (const seed of benchSeeds(t.prefix, n)) records.push({ key: await t.serde.encodeKey('seed', seed.id), value: await t.serde.encodeValue('seed', seed) });
    const cpuAtFill = new Map(await Promise.all(HOPS.map(async (name) => [name, metricSum((await httpGet(url(name, '/metrics'))).text, 'personahub_process_cpu_seconds_total')] as const)));
    const serverCpuBefore = processCpuSeconds(server.pid);
    const fromUs = Number(process.hrtime.bigint() / 1000n);
    await fill(t.kafka, topicName(t.prefix, 'seed'), records);

    // Polled every POLL_MS: when each stage first decoded an input and last produced, and the pipeline's time from
    // the first draft to the moment every seed is settled (validated or rejected, and every validated persona indexed).
    const first = new Map<StageName, number>();
    const firstOut = new Map<StageName, number>();
    const last = new Map<StageName, { at: number; produced: number }>();
    const texts = new Map<StageName, string>();
    const validatedTopic = `topic="${topicName(t.prefix, 'validated')}"`;
    let started: number | undefined;
    let ended = 0;
    await waitFor(`${side} pipeline`, children, async () => {
      const at = performance.now();
      await Promise.all(HOPS.map(async (name) => texts.set(name, (await httpGet(url(name, '/metrics'))).text)));
      for (const name of HOPS) {
        const produced = metricSum(texts.get(name) ?? '', 'personahub_events_produced_total');
        if (metricSum(texts.get(name) ?? '', 'personahub_events_consumed_total') > 0 && !first.has(name)) first.set(name, at);
        if (produced > 0 && !firstOut.has(name)) firstOut.set(name, at);
        if (produced > (last.get(name)?.produced ?? 0)) last.set(name, { at, produced });
      }
      started ??= firstOut.get('draft');
      const validate = texts.get('validate') ?? '';
      const done = metricSum(validate, 'personahub_events_produced_total') >= n
        && metricSum(texts.get('index') ?? '', 'personahub_events_produced_total') >= metricSum(validate, 'personahub_events_produced_total', validatedTopic);
      if (done) ended = at;
      return done;
    }, TIMEOUT_MS, POLL_MS);
    const serverCpuSeconds = processCpuSeconds(server.pid) - serverCpuBefore;
    const toUs = Number(process.hrtime.bigint() / 1000n);
    const seedsPerSecond = n / (Math.max(ended - (started ?? ended), POLL_MS) / 1000);
    const stages = new Map<StageName, StageTotals>();
    for (const name of HOPS) {
      const text = texts.get(name) ?? '';
      const produced = metricSum(text, 'personahub_events_produced_total');
      const span = (last.get(name)?.at ?? 0) - (first.get(name) ?? 0);
      stages.set(name, {
        consumed: metricSum(text, 'personahub_events_consumed_total'), produced,
        processSeconds: metricSum(text, 'personahub_processing_duration_seconds_sum'), processCount: metricSum(text, 'personahub_processing_duration_seconds_count'),
        cpuSeconds: metricSum(text, 'personahub_process_cpu_seconds_total') - (cpuAtFill.get(name) ?? 0), rate: produced / (Math.max(span, POLL_MS) / 1000),
      });
    }
    const client = new pg.Client(db.url);
    await client.connect();
    const indexed = await client.query<{ description: string }>('SELECT description FROM personas ORDER BY id').finally(() => client.end());

    const pids = new Map(children.map((c, i) => [c.child.pid, HOPS[i] as StageName]));
    await Promise.all(children.map((c) => stopChild(c)));
    const hottestStage = [...stages.entries()].sort((a, b) => b[1].cpuSeconds - a[1].cpuSeconds)[0]?.[0] ?? 'enrich';
    const profile = readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile') && pids.get(Number(f.split('.')[3])) === hottestStage);
    if (profile === undefined) throw new BenchError('PH_BENCH_PROFILE', `no CPU profile of the ${hottestStage} process in ${profileDir}`);
    const trimmed = join(profileDir, `${hottestStage}.pass.cpuprofile`);
    trimProfile(join(profileDir, profile), trimmed, fromUs, toUs);
    return { seedsPerSecond, stages, serverCpuSeconds, texts: indexed.rows.map((r) => r.description), hottest: { stage: hottestStage, profile: trimmed } };
  } finally {
    await Promise.all(children.map((c) => stopChild(c)));
    if (t) await dropTopics(t);
    await db.drop();
  }
}

/** The bare loop: the same texts through the same embedder and server, in batches, nothing else. */
async function barePass(ctx: BenchContext, texts: readonly string[], serverUrl: string): Promise<number> {
  if (texts.length === 0) throw new BenchError('PH_BENCH_EMPTY', 'no texts to embed: the candidate pass indexed nothing');
  const config = loadConfig({ ...benchEnv(loadConfig().databaseUrl), PERSONAHUB_EMBEDDER: 'llm', PERSONAHUB_LLM_BASE_URL: serverUrl });
  const llm = buildLlm(config, ctx.logger);
  const embedder = buildEmbedder(config, llm);
  try {
    const { ms } = await timed(async () => {
      for (let i = 0; i < texts.length; i += BARE_BATCH) await embedder.embed(texts.slice(i, i + BARE_BATCH));
    });
    return rate(texts.length, ms);
  } finally {
    await llm?.close();
  }
}

/**
 * The model server's embedding context runs on `cpuMathCores` threads. On a loaded 2-core machine llama.cpp's
 * spinning barriers may make that slower than one thread: the same texts through two contexts of the same model
 * in this process, one thread against the server's count, taking turns.
 */
async function threadTurns(ctx: BenchContext, texts: readonly string[], repeats: number): Promise<{ one: number[]; server: number[]; serverThreads: number }> {
  const llama = await loadLlama();
  const model = await llama.loadModel({ modelPath: join(loadConfig().modelsDir, EMBEDDING_MODEL.file) });
  const contexts: LlamaEmbeddingContext[] = [];
  try {
    const one = await model.createEmbeddingContext({ threads: 1 });
    contexts.push(one);
    const server = await model.createEmbeddingContext({ threads: llama.cpuMathCores });
    contexts.push(server);
    const loop = (c: LlamaEmbeddingContext) => async () => rate(texts.length, (await timed(async () => {
      for (const text of texts) await c.getEmbeddingFor(text);
    })).ms);
    const [a = [], b = []] = await takeTurns(repeats, [loop(one), loop(server)]);
    ctx.logger.debug({ one: a, server: b }, 'embedding threads');
    return { one: a, server: b, serverThreads: llama.cpuMathCores };
  } finally {
    for (const c of contexts) await c.dispose();
    await model.dispose();
    await llama.dispose();
  }
}

const ms = (seconds: number, events: number) => (events > 0 ? (seconds * 1000) / events : Number.NaN);

export const embedE2eBenchmark: Benchmark = {
  name: 'embed-e2e',
  title: 'End to end in sampler mode with the real embedder vs the hash embedder, stage by stage',
  async run(ctx: BenchContext) {
    const n = ctx.smoke ? 8 : 60;
    const repeats = 2;
    const threadTexts = ctx.smoke ? 4 : BARE_TEXTS;
    const server = await startModelServer(ctx, benchEnv(loadConfig().databaseUrl));
    const results: Record<Side, PassResult[]> = { hash: [], llm: [] };
    let bare: number[] = [];
    let passNo = 0;
    try {
      let texts: string[] = [];
      const sides = await takeTurns<number>(repeats, [
        async () => {
          const r = await pass(ctx, 'hash', n, server, (passNo += 1));
          results.hash.push(r);
          return r.seedsPerSecond;
        },
        async () => {
          const r = await pass(ctx, 'llm', n, server, (passNo += 1));
          results.llm.push(r);
          texts = r.texts;
          return r.seedsPerSecond;
        },
        // Runs after a candidate pass in both turns of two repeats (the turn order rotates: hash, llm, bare; then llm, bare, hash).
        async () => barePass(ctx, texts.slice(0, BARE_TEXTS), server.url),
      ]);
      bare = sides[2] ?? [];
    } finally {
      await server.stop();
    }
    const lastLlm = results.llm[results.llm.length - 1];
    if (!lastLlm) throw new BenchError('PH_BENCH_EMPTY', 'no candidate pass ran');
    const threads = await threadTurns(ctx, lastLlm.texts.slice(0, threadTexts), repeats);

    const flameFile = `embed-e2e-${lastLlm.hottest.stage}-flame.html`;
    const flameBytes = await flameGraph(lastLlm.hottest.profile, join(ctx.outDir, flameFile), `personahub processor ${lastLlm.hottest.stage}, sampler mode, real embedder (${n} seeds)`);
    const profileSummary = describeSummary(summarizeProfile(lastLlm.hottest.profile));

    const of = (side: Side, stageName: StageName, f: (s: StageTotals) => number) => results[side].map((r) => f(r.stages.get(stageName) as StageTotals));
    const perStage: Figure[] = HOPS.flatMap((name) => [
      figure(`${name}_process_ms_llm`, `${name}: ms in process() per event, real embedder`, 'ms', of('llm', name, (s) => ms(s.processSeconds, s.processCount))),
      figure(`${name}_process_ms_hash`, `${name}: ms in process() per event, hash embedder`, 'ms', of('hash', name, (s) => ms(s.processSeconds, s.processCount))),
      figure(`${name}_cpu_ms_llm`, `${name}: process CPU ms per event, real embedder`, 'ms', of('llm', name, (s) => ms(s.cpuSeconds, s.consumed))),
    ]);
    const enrichRates = of('llm', 'enrich', (s) => s.rate);
    const llmRates = results.llm.map((r) => r.seedsPerSecond);
    const hashRates = results.hash.map((r) => r.seedsPerSecond);
    const events = (r: PassResult) => HOPS.map((name) => `${name} ${r.stages.get(name)?.consumed ?? 0} in / ${r.stages.get(name)?.produced ?? 0} out`).join(', ');
    return {
      params: {
        seeds: n, repeats, mode: 'sampler', embedder: `${EMBEDDING_MODEL.name} via \`personahub llm serve\` vs hash`, 'stage processes': HOPS.length,
        'bare loop batch': BARE_BATCH, 'bare loop texts': BARE_TEXTS, 'threads test texts': threadTexts, 'server embedding threads': threads.serverThreads, partitions: loadConfig().partitions,
      },
      figures: [
        figure('embed_e2e_ratio', 'pipeline with the real embedder / with the hash embedder (seeds/s)', 'x', llmRates.map((v, i) => v / (hashRates[i] ?? Number.NaN))),
        figure('pipeline_llm', 'pipeline, real embedder', 'seeds/s', llmRates),
        figure('pipeline_hash', 'pipeline, hash embedder', 'seeds/s', hashRates),
        figure('enrich_vs_bare', 'enrich stage (real embedder) / bare embedder loop (events/s)', 'x', enrichRates.map((v, i) => v / (bare[i] ?? Number.NaN))),
        figure('enrich_llm', 'enrich stage, real embedder', 'events/s', enrichRates),
        figure('bare', `bare embedder loop, batches of ${BARE_BATCH}`, 'texts/s', bare),
        figure('server_cpu_ms', 'model server CPU ms per seed, real embedder', 'ms', results.llm.map((r) => ms(r.serverCpuSeconds, n))),
        ...perStage,
        figure('threads_ratio', `embedding context, 1 thread / ${threads.serverThreads} threads (texts/s)`, 'x', threads.one.map((v, i) => v / (threads.server[i] ?? Number.NaN))),
        figure('threads_one', 'embedding context, 1 thread', 'texts/s', threads.one),
        figure('threads_server', `embedding context, ${threads.serverThreads} threads (the server's)`, 'texts/s', threads.server),
      ],
      notes: [
        `Each pass: its own topics and database, the four stages as \`personahub processor <stage>\` processes under \`node --cpu-prof\` (both sides alike), the seeds written once all four report ready; the rate runs from the first draft output to the moment every seed is settled. CPU per event counts the stage process's CPU from the seeds' arrival to that moment; time in process() includes waiting on the store and the embedder.`,
        `Events per stage, last real-embedder pass: ${events(lastLlm)}.`,
        `The enrich stage embeds one description per event (one request each, up to PERSONAHUB_LLM_CONCURRENCY in flight); the bare loop sends the first ${Math.min(BARE_TEXTS, lastLlm.texts.length)} of the ${lastLlm.texts.length} descriptions the previous candidate pass indexed, in batches of ${BARE_BATCH}.`,
        `Hottest stage process by CPU in the last real-embedder pass: ${lastLlm.hottest.stage}; its profile from the seeds' arrival to the last output (start-up and shutdown trimmed off): ${profileSummary}. Flame graph: bench/results/${flameFile} (${Math.round(flameBytes / 1024)} KiB), made by bench/embed/flamegraph.ts with 0x.`,
      ],
    };
  },
};

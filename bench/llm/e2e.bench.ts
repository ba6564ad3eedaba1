import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { buildLlm, buildPipeline, createRunner } from '../../cli/wiring.ts';
import { loadConfig } from '../../config/index.ts';
import { personaId } from '../../persona/ids.ts';
import { draftPlans, draftRequest } from '../../processors/draft/index.ts';
import type { PipelineMetrics } from '../../runtime/metrics.ts';
import type { RunningStage } from '../../runtime/runner.ts';
import type { Seed } from '../../schemas/types.generated.ts';
import { topicName, type StageName } from '../../topology/index.ts';
import { FIXTURE_CHAT_MODEL, FIXTURE_EMBEDDING_MODEL, startFixtureLlm } from '../../test/helpers/fixture-llm.ts';
import { BenchError, figure, freePort, median, REPO_ROOT, takeTurns, type Benchmark, type BenchContext, type Figure } from '../harness.ts';
import { benchDatabase, dropTopics, fill, freshTopics } from '../runner/kafka-bench.ts';
import { benchEnv } from '../runner/runner.bench.ts';
import { benchSeeds } from '../runner/seeds.ts';

/**
 * The local model end to end (issue 19, benchmark 3): personas/min through the whole pipeline (draft, enrich,
 * validate, index in this process, LLM mode, the model's embeddings) against the bare model loop: the draft
 * stage's own requests (draftPlans and draftRequest, the functions the stage calls, so the same prompts with the
 * seed text, schema, token cap, temperature and sampling seed) sent one after the other through the project's
 * LLM client to the same model server. Both sides of a repeat draft the same seeds, so the model samples the same
 * tokens for both. The full run starts its own `personahub llm serve` with the default local model, so nobody
 * else's requests share the server; the smoke runs the same code against the fixture LLM.
 *
 * Besides the ratio, each pipeline pass records where its time went: the model server's generation and
 * embedding work (from the server's own metrics), the time after the last draft was committed (the stages
 * downstream of it), and each stage's time in process() (personahub_processing_duration_seconds).
 */

const HOPS: readonly StageName[] = ['draft', 'enrich', 'validate', 'index'];
const TIMEOUT_MS = 900_000;
const CHAT_ROUTE = '/v1/chat/completions';
/**
 * Both sides' LLM timeout, and the model server's. The default (120 s) covers the wait in the server's queue, and
 * the pipeline keeps up to PERSONAHUB_LLM_CONCURRENCY requests there behind the one generating: on a loaded 2-core
 * machine the last of them times out and is generated again, work the bare loop (one request at a time) never
 * redoes; with the machine busy enough, even one request alone takes longer than 120 s.
 */
const LLM_TIMEOUT_MS = '1800000';
const EMBED_ROUTE = '/v1/embeddings';

interface Endpoint {
  /** What configures a pipeline or client for it (base URL, model names). */
  env: Record<string, string>;
  /** The server's Prometheus text; absent for the fixture, which has none. */
  scrape?: () => Promise<string>;
  model: string;
  close(): Promise<void>;
}

/** `personahub llm serve` in a child process on a port of its own, as `stack up` runs it, ready when it lists its models. */
async function startModelServer(ctx: BenchContext): Promise<Endpoint> {
  const port = await freePort();
  // The server's own deadline (queue wait included) is the same setting: it must not cut a request the client still waits for.
  const env = { ...process.env, PERSONAHUB_LLM_PORT: String(port), PERSONAHUB_LOG_LEVEL: 'warn', PERSONAHUB_LLM_TIMEOUT_MS: LLM_TIMEOUT_MS };
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'cli', 'main.ts'), 'llm', 'serve'], { env, stdio: ['ignore', 'ignore', 'pipe'], cwd: REPO_ROOT });
  // A bench that fails exits through process.exit (bench/run.ts): the server must not outlive it.
  const killOnExit = () => child.kill('SIGTERM');
  process.once('exit', killOnExit);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-2_000);
  });
  let exitCode: number | null | undefined;
  const exited = new Promise<void>((resolve) => child.once('exit', (code) => {
    exitCode = code;
    resolve();
  }));
  const close = async () => {
    process.off('exit', killOnExit);
    if (exitCode === undefined) {
      child.kill('SIGTERM');
      await exited;
    }
  };
  const base = `http://127.0.0.1:${port}`;
  const deadline = performance.now() + 300_000;
  for (;;) {
    if (exitCode !== undefined) throw new BenchError('PH_BENCH_LLM_SERVER', `llm serve exited with ${exitCode}: ${stderr}`);
    if (performance.now() > deadline) {
      await close();
      throw new BenchError('PH_BENCH_TIMEOUT', 'llm serve did not list its models within 300 s');
    }
    const ok = await fetch(`${base}/v1/models`).then((r) => r.ok, () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const config = loadConfig();
  ctx.logger.info({ bench: 'llm-e2e', model: config.llmModel, port }, 'model server ready');
  return {
    env: { PERSONAHUB_LLM_BASE_URL: `${base}/v1`, PERSONAHUB_LLM_MODEL: config.llmModel, PERSONAHUB_EMBEDDING_MODEL: config.embeddingModel, PERSONAHUB_LLM_TIMEOUT_MS: LLM_TIMEOUT_MS },
    scrape: async () => (await fetch(`${base}/metrics`)).text(),
    model: config.llmModel,
    close,
  };
}

async function startFixture(): Promise<Endpoint> {
  const fixture = await startFixtureLlm({ embeddingDimensions: loadConfig().embeddingDimensions });
  return {
    env: { PERSONAHUB_LLM_BASE_URL: fixture.baseURL, PERSONAHUB_LLM_MODEL: FIXTURE_CHAT_MODEL, PERSONAHUB_EMBEDDING_MODEL: FIXTURE_EMBEDDING_MODEL },
    model: FIXTURE_CHAT_MODEL,
    close: () => fixture.close(),
  };
}

/** The model server's counters this benchmark reads, summed over label sets (a route filter for the request ones). */
interface ServerCounters {
  cpuSeconds: number;
  chatRequests: number;
  chatSeconds: number;
  embedRequests: number;
  embedSeconds: number;
  embedInputs: number;
  promptTokens: number;
  generatedTokens: number;
  firstTokenSeconds: number;
  decodeRateSum: number;
  decodeRateCount: number;
}

function sampleSum(text: string, name: string, route?: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (route !== undefined && !line.includes(`route="${route}"`)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

async function serverCounters(endpoint: Endpoint): Promise<ServerCounters | undefined> {
  if (!endpoint.scrape) return undefined;
  const t = await endpoint.scrape();
  const p = 'personahub_llm_';
  return {
    cpuSeconds: sampleSum(t, `${p}process_cpu_seconds_total`),
    chatRequests: sampleSum(t, `${p}request_duration_seconds_count`, CHAT_ROUTE),
    chatSeconds: sampleSum(t, `${p}request_duration_seconds_sum`, CHAT_ROUTE),
    embedRequests: sampleSum(t, `${p}request_duration_seconds_count`, EMBED_ROUTE),
    embedSeconds: sampleSum(t, `${p}request_duration_seconds_sum`, EMBED_ROUTE),
    embedInputs: sampleSum(t, `${p}embedding_inputs_total`),
    promptTokens: sampleSum(t, `${p}prompt_tokens_total`),
    generatedTokens: sampleSum(t, `${p}tokens_generated_total`),
    firstTokenSeconds: sampleSum(t, `${p}time_to_first_token_seconds_sum`),
    decodeRateSum: sampleSum(t, `${p}generation_tokens_per_second_sum`),
    decodeRateCount: sampleSum(t, `${p}generation_tokens_per_second_count`),
  };
}

function delta(after: ServerCounters | undefined, before: ServerCounters | undefined): ServerCounters | undefined {
  if (!after || !before) return undefined;
  const out = { ...after };
  for (const k of Object.keys(out) as (keyof ServerCounters)[]) out[k] = after[k] - before[k];
  return out;
}

interface Pass {
  personas: number;
  /** Personas per minute over the timed span. */
  rate: number;
  seconds: number;
  server: ServerCounters | undefined;
  /** This process's CPU seconds (user + system) over the timed span: the client, or the whole pipeline. */
  clientCpuSeconds: number;
}

interface PipelinePass extends Pass {
  /** Seconds from the moment every draft was committed until every persona was settled. */
  tailSeconds: number;
  /** Seconds in process() per stage, summed over events. */
  stageSeconds: Record<string, number>;
  chatCalls: number;
  embedCalls: number;
}

/** The bare model loop: the draft stage's requests for these seeds, one after the other, through the project's LLM client. */
async function barePass(ctx: BenchContext, endpoint: Endpoint, seeds: readonly Seed[]): Promise<Pass> {
  const config = loadConfig({ ...benchEnv(loadConfig().databaseUrl), ...endpoint.env, PERSONAHUB_MODE: 'llm' });
  const llm = buildLlm(config, ctx.logger.child({ bench: 'llm-e2e', side: 'bare' }));
  if (!llm) throw new BenchError('PH_BENCH_CONFIG', 'no LLM client for the bare loop');
  try {
    const requests = seeds.flatMap((seed) => draftPlans(seed, config).map((plan) => draftRequest(plan, personaId(seed.id, plan.index))));
    const before = await serverCounters(endpoint);
    const cpu = process.cpuUsage();
    const start = performance.now();
    for (const request of requests) await llm.chatJson(request);
    const seconds = (performance.now() - start) / 1000;
    const used = process.cpuUsage(cpu);
    return { personas: requests.length, rate: requests.length / (seconds / 60), seconds, server: delta(await serverCounters(endpoint), before), clientCpuSeconds: (used.user + used.system) / 1e6 };
  } finally {
    await llm.close();
  }
}

async function produced(metrics: PipelineMetrics, name: StageName, topic?: string): Promise<number> {
  return (await metrics.produced.get()).values.filter((v) => v.labels.stage === name && (topic === undefined || v.labels.topic === topic)).reduce((s, v) => s + v.value, 0);
}

interface LivePipeline {
  /** Produces the seeds into the seed topic and times them through every stage. */
  pass(seeds: readonly Seed[]): Promise<PipelinePass>;
  close(): Promise<void>;
}

/** The counters a pass reads, as they stand: a pass's figures are the differences over it. */
async function pipelineCounters(m: PipelineMetrics, validatedTopic: string) {
  const calls = (await m.llmRequests.get()).values;
  const count = (kind: string) => calls.filter((v) => v.labels.kind === kind && v.labels.status === 'ok').reduce((s, v) => s + v.value, 0);
  const stageSeconds: Record<string, number> = {};
  for (const v of (await m.duration.get()).values) {
    if (v.metricName === 'personahub_processing_duration_seconds_sum' && typeof v.labels.stage === 'string') stageSeconds[v.labels.stage] = (stageSeconds[v.labels.stage] ?? 0) + v.value;
  }
  return {
    drafted: await produced(m, 'draft'), settled: await produced(m, 'validate'), validated: await produced(m, 'validate', validatedTopic), indexed: await produced(m, 'index'),
    chatCalls: count('chat'), embedCalls: count('embed'), stageSeconds,
  };
}

/**
 * The whole pipeline, kept running across the repeats: its own topics and database, all four stages joined and
 * warmed by one seed before any pass, so a pass times the work and not the start-up (which a running pipeline
 * pays once). A pass's clock starts when its seeds are produced and stops when every persona is settled.
 */
async function startPipeline(ctx: BenchContext, endpoint: Endpoint, modalities: 'llm' | 'sampler', warmSeed: Seed): Promise<LivePipeline> {
  const db = await benchDatabase(loadConfig());
  const env = { ...benchEnv(db.url), ...endpoint.env, PERSONAHUB_MODE: 'llm', PERSONAHUB_EMBEDDER: 'llm', PERSONAHUB_MODALITIES: modalities };
  const t = await freshTopics(env, ctx.logger);
  const logger = ctx.logger.child({ bench: 'llm-e2e', side: `pipeline-${modalities}` });
  const runners: RunningStage[] = [];
  let pipeline: Awaited<ReturnType<typeof buildPipeline>> | undefined;
  const close = async () => {
    for (const r of runners) await r.stop();
    await pipeline?.close();
    await dropTopics(t);
    await db.drop();
  };
  const validatedTopic = topicName(t.prefix, 'validated');
  const pass = async (seeds: readonly Seed[]): Promise<PipelinePass> => {
    if (!pipeline) throw new BenchError('PH_BENCH_PIPELINE', 'the pipeline is not running');
    const m = pipeline.metrics;
    const records = [];
    for (const seed of seeds) records.push({ key: await t.serde.encodeKey('seed', seed.id), value: await t.serde.encodeValue('seed', seed) });
    const expected = seeds.length * t.config.personasPerSeed;
    const base = await pipelineCounters(m, validatedTopic);
    const before = await serverCounters(endpoint);
    const cpu = process.cpuUsage();
    const start = performance.now();
    const deadline = start + TIMEOUT_MS;
    await fill(t.kafka, topicName(t.prefix, 'seed'), records);
    let draftsDone: number | undefined;
    for (;;) {
      const at = performance.now();
      const c = await pipelineCounters(m, validatedTopic);
      if (draftsDone === undefined && c.drafted - base.drafted >= expected) draftsDone = at;
      if (draftsDone !== undefined && c.settled - base.settled >= expected && c.indexed - base.indexed >= c.validated - base.validated) break;
      if (at > deadline) throw new BenchError('PH_BENCH_TIMEOUT', `pipeline (modalities ${modalities}): not settled after ${TIMEOUT_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const end = performance.now();
    const used = process.cpuUsage(cpu);
    const server = delta(await serverCounters(endpoint), before);
    const after = await pipelineCounters(m, validatedTopic);
    const seconds = (end - start) / 1000;
    const stageSeconds = Object.fromEntries(HOPS.map((h) => [h, (after.stageSeconds[h] ?? 0) - (base.stageSeconds[h] ?? 0)]));
    return {
      personas: expected, rate: expected / (seconds / 60), seconds, server, clientCpuSeconds: (used.user + used.system) / 1e6,
      tailSeconds: (end - (draftsDone ?? end)) / 1000, stageSeconds, chatCalls: after.chatCalls - base.chatCalls, embedCalls: after.embedCalls - base.embedCalls,
    };
  };
  try {
    pipeline = await buildPipeline(t.config, logger, t.prefix);
    for (const name of HOPS) {
      const r = createRunner(pipeline, name, logger);
      await r.start();
      runners.push(r);
    }
    const deadline = performance.now() + TIMEOUT_MS;
    while (!runners.every((r) => r.ready().ok)) {
      if (performance.now() > deadline) throw new BenchError('PH_BENCH_TIMEOUT', `stages not ready: ${runners.flatMap((r) => r.ready().reasons).join('; ')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await pass([warmSeed]);
  } catch (error) {
    await close();
    throw error;
  }
  return { pass, close };
}

/**
 * The model's generation time in a pass, from the server's metrics: prompt evaluation (time to first token) plus
 * decoding (tokens after each first one at the pass's mean decode rate). The server generates one request at a
 * time, so this over the pass's span is how busy the model was.
 */
function generationSeconds(s: ServerCounters): number {
  const decodeRate = s.decodeRateCount > 0 ? s.decodeRateSum / s.decodeRateCount : Number.NaN;
  return s.firstTokenSeconds + (s.generatedTokens - s.chatRequests) / decodeRate;
}

const per = (value: number, n: number) => value / n;

export const llmE2eBenchmark: Benchmark = {
  name: 'llm-e2e',
  title: 'The local model end to end: the whole pipeline vs the bare model loop on the draft stage\'s own requests',
  async run(ctx: BenchContext) {
    const n = 4;
    const repeats = 2;
    const endpoint = ctx.smoke ? await startFixture() : await startModelServer(ctx);
    const runId = Date.now().toString(36);
    // Both sides of a repeat draft the same seeds; each repeat has its own, so no answer is ever a cached one.
    const seedsOf = (repeat: number) => benchSeeds(`llm-e2e-${runId}-${repeat}`, n);
    const warm = (name: string) => benchSeeds(`llm-e2e-${runId}-warm-${name}`, 1);
    let bare: Pass[] = [];
    let sampler: PipelinePass[] = [];
    let modelWritten: PipelinePass[] = [];
    const pipelines: LivePipeline[] = [];
    try {
      // A first request has the server load the weights and cache the few-shot prefix, outside any timing.
      await barePass(ctx, endpoint, warm('bare'));
      const withSampler = await startPipeline(ctx, endpoint, 'sampler', warm('sampler')[0] as Seed);
      pipelines.push(withSampler);
      // The smoke leaves out the second pipeline: the same code with one setting changed, and its start-up
      // would double the smoke's time.
      const withModel = ctx.smoke ? undefined : await startPipeline(ctx, endpoint, 'llm', warm('llm')[0] as Seed);
      if (withModel) pipelines.push(withModel);
      const isPipeline = (p: Pass | PipelinePass): p is PipelinePass => 'tailSeconds' in p;
      const sides = await takeTurns<Pass | PipelinePass>(repeats, [
        (r) => barePass(ctx, endpoint, seedsOf(r)),
        (r) => withSampler.pass(seedsOf(r)),
        // Half the seeds: each persona costs a second, longer call here, and the full run must stay within its budget.
        ...(withModel ? [(r: number) => withModel.pass(seedsOf(r).slice(0, Math.ceil(n / 2)))] : []),
      ]);
      bare = sides[0] ?? [];
      sampler = (sides[1] ?? []).filter(isPipeline);
      modelWritten = (sides[2] ?? []).filter(isPipeline);
    } finally {
      for (const p of pipelines) await p.close();
      await endpoint.close();
    }
    if (bare.length !== repeats || sampler.length !== repeats || (!ctx.smoke && modelWritten.length !== repeats)) throw new BenchError('PH_BENCH_EMPTY', 'a side did not run every repeat');
    const ratio = (side: readonly Pass[]) => side.map((p, i) => p.rate / (bare[i]?.rate ?? Number.NaN));
    const figures: Figure[] = [
      figure('e2e_ratio', 'pipeline (modalities from the sampler) / bare model loop, personas/min', 'x', ratio(sampler), { op: '>=', value: 0.9 }),
      figure('bare', 'bare model loop (draft requests one after the other)', 'personas/min', bare.map((p) => p.rate)),
      figure('pipeline', 'pipeline, modalities from the sampler', 'personas/min', sampler.map((p) => p.rate)),
      figure('tail_share', 'pipeline (sampler modalities): share of the span after the last draft was committed', 'share', sampler.map((p) => p.tailSeconds / p.seconds)),
    ];
    if (modelWritten.length > 0) {
      figures.push(
        figure('e2e_ratio_llm_modalities', 'pipeline (model-written modalities, the default) / bare model loop, personas/min', 'x', ratio(modelWritten)),
        figure('pipeline_llm_modalities', 'pipeline, model-written modalities', 'personas/min', modelWritten.map((p) => p.rate)),
        figure('chat_calls_per_persona_llm_modalities', 'pipeline, model-written modalities: chat calls per persona', 'calls', modelWritten.map((p) => per(p.chatCalls, p.personas))),
      );
    }
    for (const stageName of HOPS) {
      figures.push(figure(`process_s_${stageName}`, `pipeline (sampler modalities): ${stageName} stage, seconds in process() per persona`, 's', sampler.map((p) => per(p.stageSeconds[stageName] ?? 0, p.personas))));
    }
    const notes = [
      'Each pipeline (one per modalities setting) has its own topics and database and keeps running across the repeats, warmed by one seed; a pass\'s clock starts when its seeds are produced into the seed topic and stops when every persona is settled (validated or rejected, every validated one indexed). The bare loop\'s clock runs from its first request to its last answer; the server was warmed by one request before either.',
      'The bare loop sends the draft stage\'s own requests (processors/draft draftPlans and draftRequest: persona/prompt.ts\'s few-shot messages with the seed text, the JSON schema, max_tokens 480, temperature 0.7, the persona\'s sampling seed) through the project\'s LLM client, so both sides make the model sample the same tokens.',
    ];
    const servers = [...bare, ...sampler, ...modelWritten].map((p) => p.server);
    if (servers.every((s) => s !== undefined)) {
      const s = (p: Pass) => p.server as ServerCounters;
      figures.push(
        figure('model_busy_bare', 'bare loop: model generating, share of the span (estimated from the server\'s metrics)', 'share', bare.map((p) => generationSeconds(s(p)) / p.seconds)),
        figure('model_busy_pipeline', 'pipeline (sampler modalities): model generating, share of the span', 'share', sampler.map((p) => generationSeconds(s(p)) / p.seconds)),
        figure('decode_rate_bare', 'bare loop: decode speed', 'tokens/s', bare.map((p) => s(p).decodeRateSum / s(p).decodeRateCount)),
        figure('decode_rate_pipeline', 'pipeline (sampler modalities): decode speed', 'tokens/s', sampler.map((p) => s(p).decodeRateSum / s(p).decodeRateCount)),
        figure('first_token_bare', 'bare loop: prompt evaluation (time to first token) per request', 's', bare.map((p) => per(s(p).firstTokenSeconds, s(p).chatRequests))),
        figure('first_token_pipeline', 'pipeline (sampler modalities): time to first token per request', 's', sampler.map((p) => per(s(p).firstTokenSeconds, s(p).chatRequests))),
        figure('prompt_tokens', 'prompt tokens per draft request (bare loop)', 'tokens', bare.map((p) => per(s(p).promptTokens, s(p).chatRequests))),
        figure('generated_tokens', 'generated tokens per draft request (bare loop)', 'tokens', bare.map((p) => per(s(p).generatedTokens, s(p).chatRequests))),
        figure('chat_requests_pipeline', 'pipeline (sampler modalities): chat requests the server answered per persona (above 1: retries or repairs)', 'requests', sampler.map((p) => per(s(p).chatRequests, p.personas))),
        figure('embed_s_pipeline', 'pipeline (sampler modalities): embedding requests on the server, seconds per persona', 's', sampler.map((p) => per(s(p).embedSeconds, p.personas))),
        figure('server_cpu_bare', 'bare loop: model server CPU seconds per persona', 's', bare.map((p) => per(s(p).cpuSeconds, p.personas))),
        figure('server_cpu_pipeline', 'pipeline (sampler modalities): model server CPU seconds per persona', 's', sampler.map((p) => per(s(p).cpuSeconds, p.personas))),
        figure('pipeline_cpu', 'pipeline (sampler modalities): the four stages\' process, CPU seconds per persona', 's', sampler.map((p) => per(p.clientCpuSeconds, p.personas))),
      );
      if (modelWritten.length > 0) figures.push(figure('model_busy_llm_modalities', 'pipeline (model-written modalities): model generating, share of the span', 'share', modelWritten.map((p) => generationSeconds(s(p)) / p.seconds)));
    } else {
      notes.push('The fixture LLM has no metrics endpoint: the model server\'s figures (model busy share, decode speed, tokens, embedding and CPU seconds) are measured in the full run only, and so is the pipeline with model-written modalities.');
    }
    return {
      params: {
        model: endpoint.model, 'seeds per side': ctx.smoke ? n : `${n} (${Math.ceil(n / 2)} with model-written modalities)`, repeats, 'personas per seed': loadConfig().personasPerSeed,
        'LLM concurrency': loadConfig().llmConcurrency, partitions: loadConfig().partitions, 'median bare span (s)': Math.round(median(bare.map((p) => p.seconds))),
      },
      figures,
      notes,
    };
  },
};

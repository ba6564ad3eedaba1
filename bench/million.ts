import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { buildEmbedder, buildLlm } from '../cli/wiring.ts';
import { loadConfig, type Config } from '../config/index.ts';
import { createLogger } from '../core/logger.ts';
import { EMBEDDING_MODEL } from '../models/weights/fetch.ts';
import { kafkaPaths } from '../stack/kafka.ts';
import { isAlive, readPidFile } from '../stack/process.ts';
import { pidFileOf, stackPaths } from '../stack/service.ts';
import { openStore } from '../store/open.ts';
import { events, groupId, stages, topicName, type EventName, type StageName } from '../topology/index.ts';
import {
  BenchError, exitedEarly, freePort, gitCommit, httpGet, machine, median, metricSum, migrateStore, packageVersions, processCpuSeconds, REPO_ROOT,
  rssMiB, segmentBytes, spawnChild, startModelServer, stopChild, tableSizes, waitFor, type Child, type TableSize,
} from './harness.ts';
import { benchPython, runPythonScript } from './python.ts';
import { benchDatabase, dropTopics, fillSeeds, freshTopics, sumCommitted, type RunTopics } from './runner/kafka-bench.ts';
import { benchEnv } from './runner/runner.bench.ts';
import { benchSeeds } from './runner/seeds.ts';
import { round, spread, type Spread } from './scaling-model.ts';

/**
 * A million personas on this machine (issue 19, benchmark 8): N personas (a million by default) through the whole
 * pipeline in sampler mode with real embeddings (all-MiniLM-L6-v2 from a `personahub llm serve` of the run's own),
 * each stage a separate `personahub processor <stage>` process, on the local stack, with topics and a database of
 * the run's own (dropped at the end unless --keep). The seeds are written in slices while the stages run, never
 * more than LEAD_SEEDS ahead of validation, so neither this script nor a stage ever holds the run in memory.
 * Every --sample-ms: the personas indexed so far, each stage's outputs, and the RSS of every process (the stages,
 * the model server, this script, the broker). At the end: every table of the store with its indexes and the
 * database's size, the broker's log segments of the run's topics, and the latency of the store's own HNSW search
 * at that size. Writes a JSON file and a PNG beside it (throughput and RSS over time), and prints a Markdown summary.
 *
 *   npx tsx bench/million.ts [--personas 1000000] [--minutes M] [--embedder llm|hash] [--sample-ms 5000] [--out FILE] [--keep]
 *
 * With --minutes the run stops at that time and reports how far it got, and how long N would take at the rate
 * measured. Unlike `npm run bench` this is one run against no baseline, so its figures are absolute: read them
 * with the load averages recorded beside them.
 */

/** Seeds written per producer round trip batch: small enough to hold, large enough that writing never starves the draft stage. */
const SLICE_SEEDS = 2_000;
/** Seeds written but not yet through validation, at most: a few minutes of work for the stages, whatever N is. */
const LEAD_SEEDS = 10_000;
const READY_TIMEOUT_MS = 600_000;
/** A run of hours has no deadline; one where no stage has produced anything for this long has stalled. */
const STALL_MS = 600_000;
const SEARCH_QUERIES = 200;
/** Queries run first and not timed: the first few read the index's pages from disk into shared buffers. */
const SEARCH_WARMUP = 10;
const SEARCH_K = 10;
/** The texts embedded per request for the search queries, as the enrich stage batches a chunk. */
const EMBED_BATCH = 16;
/** The plot's smoothed throughput: a sample interval's rate swings with what else the machine runs. */
const RATE_WINDOW_S = 60;

/**
 * The stages run. The lattice stays off (PERSONAHUB_LATTICE_DEPTH 0, its default), so the relate stage, the only
 * one that expands, would consume the validated topic and emit nothing: it is left out.
 */
const STAGES: readonly StageName[] = stages.map((s) => s.name).filter((name) => name !== 'relate');

const EMBEDDERS = ['llm', 'hash'] as const;
type EmbedderKind = (typeof EMBEDDERS)[number];
const isEmbedder = (v: string): v is EmbedderKind => (EMBEDDERS as readonly string[]).includes(v);

interface Options { personas: number; minutes: number | undefined; embedder: EmbedderKind; out: string; sampleMs: number; keep: boolean }

function options(): Options {
  const { values } = parseArgs({
    options: {
      personas: { type: 'string', default: '1000000' },
      minutes: { type: 'string' },
      embedder: { type: 'string', default: 'llm' },
      out: { type: 'string', default: join(REPO_ROOT, 'bench', 'results', 'million.json') },
      'sample-ms': { type: 'string', default: '5000' },
      keep: { type: 'boolean', default: false },
    },
  });
  const personas = Number(values.personas);
  const minutes = values.minutes === undefined ? undefined : Number(values.minutes);
  const sampleMs = Number(values['sample-ms']);
  if (!Number.isInteger(personas) || personas < 1) throw new BenchError('PH_BENCH_ARGS', `--personas must be a whole number of at least 1, got ${values.personas}`);
  if (minutes !== undefined && !(minutes > 0)) throw new BenchError('PH_BENCH_ARGS', `--minutes must be a positive number, got ${values.minutes}`);
  if (!Number.isInteger(sampleMs) || sampleMs < 100) throw new BenchError('PH_BENCH_ARGS', `--sample-ms must be a whole number of at least 100, got ${values['sample-ms']}`);
  if (!isEmbedder(values.embedder)) throw new BenchError('PH_BENCH_ARGS', `--embedder must be one of ${EMBEDDERS.join(', ')}, got ${values.embedder}`);
  return { personas, minutes, embedder: values.embedder, out: values.out, sampleMs, keep: values.keep };
}

const logger = createLogger({ level: 'warn', name: 'bench-million' });

/** What one stage process's /metrics says it has done so far. */
interface StageCounters {
  consumed: number;
  produced: number;
  deadLettered: number;
  /** Outputs to the validated topic (the validate stage's; its other outputs are rejections). */
  validated: number;
  /** Rejections by reason code (the validate stage's; a persona may have several reasons). */
  rejections: Record<string, number>;
}

const NOTHING: StageCounters = { consumed: 0, produced: 0, deadLettered: 0, validated: 0, rejections: {} };

/** The series of a counter in a Prometheus text, summed by the value of one of their labels. */
function sumsBy(text: string, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  const value = new RegExp(`${label}="([^"]*)"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const key = value.exec(line)?.[1];
    if (key !== undefined) out[key] = (out[key] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return out;
}

async function scrape(port: number, validatedTopic: string): Promise<StageCounters | undefined> {
  const r = await httpGet(`http://127.0.0.1:${port}/metrics`);
  if (!r.ok) return undefined;
  return {
    consumed: metricSum(r.text, 'personahub_events_consumed_total'),
    produced: metricSum(r.text, 'personahub_events_produced_total'),
    deadLettered: metricSum(r.text, 'personahub_events_dead_lettered_total'),
    validated: metricSum(r.text, 'personahub_events_produced_total', `topic="${validatedTopic}"`),
    rejections: sumsBy(r.text, 'personahub_validation_rejections_total', 'reason'),
  };
}

const counterOf = (c: ReadonlyMap<StageName, StageCounters>, name: StageName): StageCounters => c.get(name) ?? NOTHING;

/**
 * Every seed written has been consumed by the draft stage (its committed offsets: the seed topic is written without
 * transactions, so offsets and records agree), and every event since has reached its stage's output or the DLQ.
 * Produced counts rise only after a stage's transaction commits.
 */
function drained(c: ReadonlyMap<StageName, StageCounters>, written: number, draftCommitted: number): boolean {
  const draft = counterOf(c, 'draft');
  const enrich = counterOf(c, 'enrich');
  const validate = counterOf(c, 'validate');
  const index = counterOf(c, 'index');
  return draftCommitted >= written && enrich.produced + enrich.deadLettered >= draft.produced
    && validate.produced + validate.deadLettered >= enrich.produced && index.produced + index.deadLettered >= validate.validated;
}

interface Watched { name: string; role: string; pid: number }

interface Sample {
  /** Seconds since the first seeds were written. */
  t: number;
  seedsWritten: number;
  /** Personas the index stage had stored and announced (its committed outputs). */
  indexed: number;
  /** Each stage's committed outputs so far. */
  produced: Record<string, number>;
  /** Each watched process's resident set, MiB (absent once it has gone). */
  rssMiB: Record<string, number>;
}

interface Run {
  stoppedBy: 'done' | 'time cap';
  seeds: number;
  seedsWritten: number;
  samples: Sample[];
  counters: Map<StageName, StageCounters>;
  /** CPU seconds each watched process used from the first seeds written to the end of sampling. */
  cpuSeconds: Map<string, number>;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Writes the seeds in slices, samples, and stops when everything written has drained (twice in a row) or at the cap. */
async function drive(t: RunTopics, o: Options, seeds: number, children: readonly Child[], ports: ReadonlyMap<StageName, number>, watched: readonly Watched[]): Promise<Run> {
  const seedTopic = topicName(t.prefix, 'seed');
  const validatedTopic = topicName(t.prefix, 'validated');
  const personasPerSeed = t.config.personasPerSeed;
  const counters = new Map<StageName, StageCounters>();
  const samples: Sample[] = [];
  const cpu = (w: Watched): number => {
    try {
      return processCpuSeconds(w.pid);
    } catch {
      return Number.NaN;
    }
  };
  const cpuStart = new Map(watched.map((w) => [w.name, cpu(w)]));
  const admin = t.kafka.admin();
  await admin.connect();
  try {
    const start = performance.now();
    const cap = o.minutes === undefined ? Number.POSITIVE_INFINITY : o.minutes * 60_000;
    let written = 0;
    let drainedBefore = false;
    let progress = { at: start, key: '' };
    let stoppedBy: Run['stoppedBy'] | undefined;
    for (let tick = 1; stoppedBy === undefined; tick += 1) {
      for (const c of children) {
        const early = exitedEarly(c);
        if (early) throw early;
      }
      // Offsets first, then the counters, which rise only once a stage's transaction has committed: read second, they have caught up.
      const draftCommitted = await sumCommitted(admin, groupId(t.prefix, 'draft'), seedTopic);
      for (const [name, port] of ports) {
        // A scrape a busy process did not answer in time keeps the last counts; the next sample catches up.
        const s = await scrape(port, validatedTopic);
        if (s) counters.set(name, s);
      }
      const now = performance.now();
      const rss: Record<string, number> = {};
      for (const w of watched) {
        const v = rssMiB(w.pid);
        if (v !== undefined) rss[w.name] = round(v, 1);
      }
      samples.push({
        t: round((now - start) / 1000, 2), seedsWritten: written, indexed: counterOf(counters, 'index').produced,
        produced: Object.fromEntries(STAGES.map((n) => [n, counterOf(counters, n).produced])), rssMiB: rss,
      });

      // Twice in a row: the counters of different stages are read one after the other, not at one instant.
      const isDrained = written === seeds && drained(counters, written, draftCommitted);
      if (isDrained && drainedBefore) stoppedBy = 'done';
      else if (now - start >= cap) stoppedBy = 'time cap';
      drainedBefore = isDrained;
      if (stoppedBy !== undefined) break;

      const key = JSON.stringify([...counters.values()]);
      if (key !== progress.key) progress = { at: now, key };
      else if (now - progress.at > STALL_MS) throw new BenchError('PH_BENCH_STALLED', `no stage produced anything for ${STALL_MS / 1000} s: ${JSON.stringify(Object.fromEntries(counters))}`);

      const validate = counterOf(counters, 'validate');
      const dead = STAGES.reduce((s, n) => s + counterOf(counters, n).deadLettered, 0);
      const settledSeeds = Math.floor((validate.produced + dead) / personasPerSeed);
      while (written < seeds && written - settledSeeds < LEAD_SEEDS) {
        const n = Math.min(SLICE_SEEDS, seeds - written);
        // One salt for the run and the running index as the first text: every seed's text, so its id, is distinct.
        await fillSeeds(t, benchSeeds(t.prefix, n, written));
        written += n;
      }
      await sleep(Math.max(0, start + tick * o.sampleMs - performance.now()));
    }
    const cpuSeconds = new Map(watched.map((w) => [w.name, round(cpu(w) - (cpuStart.get(w.name) ?? Number.NaN), 1)]));
    return { stoppedBy, seeds, seedsWritten: written, samples, counters, cpuSeconds };
  } finally {
    await admin.disconnect();
  }
}

/** Personas indexed at `t` seconds, read off the samples by linear interpolation. */
function indexedAt(samples: readonly Sample[], t: number): number {
  let prev = samples[0];
  for (const s of samples) {
    if (s.t >= t) {
      if (!prev || s.t === prev.t) return s.indexed;
      return prev.indexed + ((s.indexed - prev.indexed) * (t - prev.t)) / (s.t - prev.t);
    }
    prev = s;
  }
  return prev?.indexed ?? 0;
}

interface Throughput {
  /** Seconds from the first seeds written to the first sample that saw the final count. */
  seconds: number;
  /** Personas indexed per second over those seconds (start-up of the flow included). */
  overall: number;
  /** From the first persona indexed to the end: the rate a longer run tends to. */
  steady: number;
  /** The personas per second of each tenth of those seconds, in order. */
  byTenth: number[];
  /** How long the N asked for would take at the overall rate. */
  projectedSecondsForTarget: number;
}

function throughput(samples: readonly Sample[], target: number): Throughput {
  const final = samples[samples.length - 1]?.indexed ?? 0;
  // The end is where the count last rose, so the idle samples confirming the end are not counted as time spent.
  const end = samples.find((s) => s.indexed === final)?.t ?? 0;
  const firstOut = samples.find((s) => s.indexed > 0);
  const overall = end > 0 ? final / end : 0;
  const steady = firstOut && end > firstOut.t ? (final - firstOut.indexed) / (end - firstOut.t) : overall;
  const byTenth = end > 0 ? Array.from({ length: 10 }, (_, i) => round((indexedAt(samples, (end * (i + 1)) / 10) - indexedAt(samples, (end * i) / 10)) / (end / 10), 2)) : [];
  return { seconds: round(end, 1), overall: round(overall, 2), steady: round(steady, 2), byTenth, projectedSecondsForTarget: overall > 0 ? Math.round(target / overall) : Number.NaN };
}

interface SearchFigures { queries: number; warmup: number; k: number; plan: string; hits: { min: number; max: number }; ms: Spread }

/**
 * The store's own search (store.search, what `personahub search` runs) for SEARCH_QUERIES texts embedded by the
 * run's embedder first, so only the search is timed, one query at a time, after the stages have stopped.
 */
async function searchLatency(config: Config): Promise<SearchFigures> {
  const texts = benchSeeds('million-queries', SEARCH_QUERIES + SEARCH_WARMUP).map((s) => s.text);
  const llm = buildLlm(config, logger);
  const store = await openStore(config);
  try {
    const embedder = buildEmbedder(config, llm);
    const vectors: number[][] = [];
    for (let i = 0; i < texts.length; i += EMBED_BATCH) vectors.push(...(await embedder.embed(texts.slice(i, i + EMBED_BATCH))));
    const ms: number[] = [];
    const hits: number[] = [];
    for (const [i, v] of vectors.entries()) {
      const start = performance.now();
      const found = await store.search(v, SEARCH_K);
      if (i < SEARCH_WARMUP) continue;
      ms.push(performance.now() - start);
      hits.push(found.length);
    }
    const s = spread(ms);
    return {
      queries: ms.length, warmup: SEARCH_WARMUP, k: SEARCH_K, plan: await searchPlan(config.databaseUrl, vectors[0] ?? []), hits: { min: Math.min(...hits), max: Math.max(...hits) },
      ms: { n: s.n, mean: round(s.mean, 2), p50: round(s.p50, 2), p95: round(s.p95, 2), max: round(s.max, 2) },
    };
  } finally {
    await store.close();
    await llm?.close();
  }
}

/** Whether the planner serves store.search's ORDER BY distance LIMIT k from the HNSW index (at small sizes it may scan instead). */
async function searchPlan(url: string, vector: readonly number[]): Promise<string> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    const r = await client.query('EXPLAIN (FORMAT JSON) SELECT id FROM personas ORDER BY embedding <=> $1::vector LIMIT $2', [`[${vector.join(',')}]`, SEARCH_K]);
    return JSON.stringify(r.rows).includes('personas_embedding_hnsw') ? 'HNSW index scan' : 'scan and sort (no index)';
  } finally {
    await client.end();
  }
}

async function databaseBytes(url: string): Promise<number> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    return Number((await client.query<{ n: string }>('SELECT pg_database_size(current_database()) AS n')).rows[0]?.n ?? 0);
  } finally {
    await client.end();
  }
}

const mib = (bytes: number): number => round(bytes / 2 ** 20, 1);
const n0 = (v: number): string => v.toLocaleString('en-US', { maximumFractionDigits: 0 });
const n2 = (v: number): string => v.toLocaleString('en-US', { maximumFractionDigits: 2 });

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return 'n/a';
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return h > 0 ? `${h} h ${m} min` : `${m} min ${Math.round(seconds % 60)} s`;
}

interface ProcessFigures { name: string; role: string; pid: number; samples: number; rssMiB: { first: number; median: number; peak: number; last: number }; cpuSeconds: number }

interface Results {
  command: string;
  startedAt: string;
  finishedAt: string;
  commit: string;
  machine: ReturnType<typeof machine>;
  versions: Record<string, string>;
  params: Record<string, string | number | boolean | null | readonly string[]>;
  /** Where the run wrote: its topics and database, removed at the end unless kept. */
  run: { topicPrefix: string; database: string; kept: boolean };
  outcome: {
    stoppedBy: Run['stoppedBy'];
    seeds: number;
    seedsWritten: number;
    /** The store's personas table, counted after the stages stopped. */
    personasIndexed: number;
    /** Each stage's counts at the last sample (a run stopped at its cap may commit a little more as it stops). */
    stages: Record<string, Pick<StageCounters, 'consumed' | 'produced' | 'deadLettered'>>;
    validated: number;
    rejected: number;
    rejectionReasons: Record<string, number>;
    deadLettered: number;
  };
  throughput: Throughput;
  processes: ProcessFigures[];
  store: { databaseBytes: number; tablesBytes: number; tables: TableSize[] };
  kafka: { logDir: string; readable: boolean; topics: Record<string, number>; totalBytes: number; note: string };
  search: SearchFigures;
  plot: string;
  series: Sample[];
}

function processFigures(watched: readonly Watched[], run: Run): ProcessFigures[] {
  return watched.map((w) => {
    const values = run.samples.flatMap((s) => (s.rssMiB[w.name] === undefined ? [] : [s.rssMiB[w.name] as number]));
    return {
      name: w.name, role: w.role, pid: w.pid, samples: values.length,
      rssMiB: { first: values[0] ?? Number.NaN, median: round(median(values), 1), peak: Math.max(...values), last: values[values.length - 1] ?? Number.NaN },
      cpuSeconds: run.cpuSeconds.get(w.name) ?? Number.NaN,
    };
  });
}

function markdown(r: Results): string {
  const o = r.outcome;
  const tp = r.throughput;
  const personas = o.personasIndexed;
  const lines = [
    `### A million personas on this machine: ${n0(personas)} personas indexed (${o.stoppedBy === 'done' ? 'run to the end' : `stopped at the ${r.params['minutes cap']} min cap`})`,
    '',
    `Command: \`${r.command}\`; commit ${r.commit}; ${r.startedAt} to ${r.finishedAt}.`,
    `Machine: ${r.machine.cores} cores (${r.machine.cpu}), ${r.machine.memoryGiB} GiB, Node ${r.machine.node}; load average (1 min) ${r.machine.loadAverageStart} at the start, ${r.machine.loadAverageEnd ?? '?'} at the end.`,
    `Parameters: ${Object.entries(r.params).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : String(v)}`).join('; ')}.`,
    '',
    '| figure | value |',
    '|---|---|',
    `| seeds written / asked | ${n0(o.seedsWritten)} / ${n0(o.seeds)} |`,
    `| personas indexed (store count) | ${n0(personas)} |`,
    `| rejected by validation / dead-lettered | ${n0(o.rejected)} / ${n0(o.deadLettered)} |`,
    `| rejection reasons (a persona may have several) | ${Object.entries(o.rejectionReasons).map(([k, v]) => `${k} ${n0(v)}`).join(', ') || 'none'} |`,
    `| time, first seeds written to last persona indexed | ${duration(tp.seconds)} |`,
    `| throughput, overall / from the first persona indexed | ${n2(tp.overall)} / ${n2(tp.steady)} personas/s |`,
    `| throughput by tenth of the run | ${tp.byTenth.map(n2).join(', ')} personas/s |`,
    `| projected time for ${n0(Number(r.params['personas asked']))} personas at the overall rate | ${duration(tp.projectedSecondsForTarget)} |`,
    `| store: database / tables with indexes | ${n2(mib(r.store.databaseBytes))} / ${n2(mib(r.store.tablesBytes))} MiB |`,
    ...r.store.tables.filter((x) => x.totalBytes > 0 && x.rows > 0).map((x) => `| store: ${x.table} (${n0(x.rows)} rows): heap / indexes / TOAST | ${n2(mib(x.heapBytes))} / ${n2(mib(x.indexBytes))} / ${n2(mib(x.toastBytes))} MiB${personas > 0 && x.rows >= personas ? ` (${n0(x.totalBytes / personas)} bytes per persona)` : ''} |`),
    `| Kafka log segments, the run's topics | ${r.kafka.readable ? `${n2(mib(r.kafka.totalBytes))} MiB (${Object.entries(r.kafka.topics).map(([e, b]) => `${e} ${n2(mib(b))}`).join(', ')})` : 'not readable here'} |`,
    `| HNSW search (store.search, k ${r.search.k}, ${r.search.queries} queries, ${r.search.plan}): median / p95 / max | ${r.search.ms.p50} / ${r.search.ms.p95} / ${r.search.ms.max} ms |`,
    ...r.processes.map((p) => `| RSS ${p.name} (${p.role}): first / median / peak / last; CPU | ${p.rssMiB.first} / ${p.rssMiB.median} / ${p.rssMiB.peak} / ${p.rssMiB.last} MiB; ${n2(p.cpuSeconds)} s |`),
    '',
    `${r.series.length} samples, every ${r.params['sample every (ms)']} ms, in the results file; plot: ${r.plot}.`,
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  const o = options();
  const startedAt = new Date().toISOString();
  const mach = machine();
  const base = loadConfig();
  const seeds = Math.ceil(o.personas / base.personasPerSeed);
  const work = mkdtempSync(join(tmpdir(), 'ph-million-'));
  const db = await benchDatabase(base);
  const env: Record<string, string> = { ...benchEnv(db.url), PERSONAHUB_EMBEDDER: o.embedder, PERSONAHUB_LATTICE_DEPTH: '0' };
  const children: Child[] = [];
  let server: Awaited<ReturnType<typeof startModelServer>> | undefined;
  let t: RunTopics | undefined;
  let failed = true;
  try {
    if (o.embedder === 'llm') {
      server = await startModelServer({ workDir: work }, env);
      env.PERSONAHUB_LLM_BASE_URL = server.url;
    }
    await migrateStore(loadConfig(env));
    t = await freshTopics(env, logger);
    const cfg = t.config;
    const prefix = t.prefix;
    const ports = new Map<StageName, number>();
    for (const name of STAGES) {
      const port = await freePort();
      ports.set(name, port);
      children.push(spawnChild({ workDir: work }, name, ['--disable-warning=TimeoutNegativeWarning', '--import', 'tsx', 'cli/main.ts', 'processor', name], {
        ...env, PERSONAHUB_TOPIC_PREFIX: t.prefix, PERSONAHUB_METRICS_PORT: String(port),
      }));
    }
    console.error(`million: ${n0(seeds)} seeds (${cfg.personasPerSeed} persona${cfg.personasPerSeed === 1 ? '' : 's'} each) through ${STAGES.join(', ')} as processes; topics ${t.prefix}.*, embedder ${o.embedder}; logs in ${work}`);
    await waitFor('stages ready', children, async () => (await Promise.all(STAGES.map(async (name) => (await httpGet(`http://127.0.0.1:${ports.get(name) ?? 0}/health/ready`)).ok))).every(Boolean), READY_TIMEOUT_MS, 500);

    const broker = await readPidFile(pidFileOf(stackPaths(cfg.home), 'kafka'));
    const watched: Watched[] = [
      ...children.map((c) => ({ name: c.name, role: 'stage process', pid: c.child.pid ?? 0 })),
      ...(server ? [{ name: 'llm-serve', role: 'model server (embeddings)', pid: server.pid }] : []),
      { name: 'bench', role: 'this script: writes the seeds, samples', pid: process.pid },
      ...(broker && (await isAlive(broker)) ? [{ name: 'kafka', role: 'the stack\'s broker, shared', pid: broker.pid }] : []),
    ];
    const run = await drive(t, o, seeds, children, ports, watched);
    console.error(`million: ${run.stoppedBy === 'done' ? 'drained' : 'time cap reached'} after ${run.samples[run.samples.length - 1]?.t ?? 0} s; stopping the stages`);
    await Promise.all(children.map((c) => stopChild(c)));

    const tables = await tableSizes(db.url);
    const dbBytes = await databaseBytes(db.url);
    const segments = segmentBytes(cfg, t.prefix);
    const search = await searchLatency(cfg);
    const personasIndexed = tables.find((x) => x.table === 'personas')?.rows ?? 0;
    const validate = counterOf(run.counters, 'validate');
    const eventNames = Object.keys(events) as EventName[];
    const png = `${o.out.replace(/\.json$/, '')}.png`;
    const results: Results = {
      command: `npx tsx bench/million.ts --personas ${o.personas} --embedder ${o.embedder}${o.minutes === undefined ? '' : ` --minutes ${o.minutes}`} --sample-ms ${o.sampleMs}`,
      startedAt, finishedAt: new Date().toISOString(), commit: gitCommit(), machine: { ...mach, loadAverageEnd: machine().loadAverageStart },
      versions: packageVersions(['kafkajs', 'pg', 'node-llama-cpp', 'avsc']),
      params: {
        'personas asked': o.personas, 'personas per seed': cfg.personasPerSeed, seeds, mode: cfg.mode,
        embedder: o.embedder === 'llm' ? `${EMBEDDING_MODEL.name} via \`personahub llm serve\` (the real embedder), ${cfg.embeddingDimensions} dimensions` : `hash, ${cfg.embeddingDimensions} dimensions`,
        lattice: `off (PERSONAHUB_LATTICE_DEPTH ${cfg.latticeDepth}, the default)`, stages: STAGES, partitions: cfg.partitions,
        'seeds per slice': SLICE_SEEDS, 'seeds ahead of validation at most': LEAD_SEEDS, 'sample every (ms)': o.sampleMs, 'minutes cap': o.minutes ?? null,
      },
      run: { topicPrefix: prefix, database: new URL(db.url).pathname.slice(1), kept: o.keep },
      outcome: {
        stoppedBy: run.stoppedBy, seeds, seedsWritten: run.seedsWritten, personasIndexed,
        stages: Object.fromEntries(STAGES.map((n) => {
          const { consumed, produced, deadLettered } = counterOf(run.counters, n);
          return [n, { consumed, produced, deadLettered }];
        })),
        validated: validate.validated, rejected: validate.produced - validate.validated, rejectionReasons: validate.rejections, deadLettered: STAGES.reduce((s, n) => s + counterOf(run.counters, n).deadLettered, 0),
      },
      throughput: throughput(run.samples, o.personas),
      processes: processFigures(watched, run),
      store: { databaseBytes: dbBytes, tablesBytes: tables.reduce((s, x) => s + x.totalBytes, 0), tables },
      kafka: {
        logDir: kafkaPaths(cfg.home, cfg.cacheDir).data, readable: segments !== undefined,
        topics: Object.fromEntries(eventNames.map((e) => [e, segments?.[topicName(prefix, e)] ?? 0])),
        totalBytes: Object.values(segments ?? {}).reduce((s, b) => s + b, 0),
        note: 'log segments (.log files) of the local broker, one replica; the offset and time indexes beside them are preallocated sparse files and left out',
      },
      search,
      plot: png.startsWith(`${REPO_ROOT}/`) ? relative(REPO_ROOT, png) : png,
      series: run.samples,
    };
    mkdirSync(dirname(o.out), { recursive: true });
    writeFileSync(o.out, `${JSON.stringify(results, null, 2)}\n`);
    // The plot comes after the figures are safe on disk: a failing Python must not lose an hours-long run.
    const python = await benchPython(cfg.cacheDir);
    await runPythonScript(python, join(REPO_ROOT, 'bench', 'million-plot.py'), [png], {
      title: `${n0(personasIndexed)} personas, sampler mode, ${o.embedder} embedder, stages as processes`,
      throughput: [
        { label: 'personas indexed/s, per sample interval', points: run.samples.slice(1).map((x, i) => [x.t, round((x.indexed - (run.samples[i] as Sample).indexed) / Math.max(x.t - (run.samples[i] as Sample).t, 0.001), 2)]) },
        { label: `personas indexed/s, over the last ${RATE_WINDOW_S} s`, points: run.samples.slice(1).map((x) => [x.t, round((x.indexed - indexedAt(run.samples, x.t - RATE_WINDOW_S)) / Math.min(x.t, RATE_WINDOW_S), 2)]) },
      ],
      rss: watched.map((w) => ({ label: `${w.name} (${w.role})`, points: run.samples.flatMap((s) => (s.rssMiB[w.name] === undefined ? [] : [[s.t, s.rssMiB[w.name]]])) })),
    });
    console.log(markdown(results));
    failed = false;
  } finally {
    await Promise.all(children.map((c) => stopChild(c)));
    await server?.stop();
    if (!o.keep) {
      if (t) await dropTopics(t);
      await db.drop();
    }
    if (failed || o.keep) console.error(`million: stage and server logs kept in ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

await main();

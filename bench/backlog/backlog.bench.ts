import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { loadConfig } from '../../config/index.ts';
import { groupId, topicName } from '../../topology/index.ts';
import { BenchError, figure, median, REPO_ROOT, rssMiB, takeTurns, type Benchmark, type BenchContext } from '../harness.ts';
import { benchPython, runPythonScript } from '../python.ts';
import { benchDatabase, dropTopics, fillSeeds, freshTopics, sumCommitted, type RunTopics } from '../runner/kafka-bench.ts';
import { benchEnv } from '../runner/runner.bench.ts';
import { benchSeeds } from '../runner/seeds.ts';

/**
 * Memory under backlog (issue 19, benchmark 7): the draft stage (sampler mode), as its own `personahub processor
 * draft` process, facing a large queued backlog of seeds, its RSS read from /proc every 500 ms while it works
 * through the front of it. The baseline is the same process facing a small backlog, in the same run, taking turns:
 * a runner that buffered the backlog would show it as a ratio far above 1. The samples are plotted to a PNG.
 */

const LIMIT_MIB = 300;
const SAMPLE_MS = 500;

interface Sampled {
  points: [number, number][];
  processed: number;
}

/** A topic set with `n` distinct seeds queued on the seed topic, written in slices so the bench never holds them all. */
async function queued(env: Record<string, string>, ctx: BenchContext, n: number): Promise<RunTopics> {
  const t = await freshTopics(env, ctx.logger);
  const slice = 20_000;
  for (let from = 0; from < n; from += slice) await fillSeeds(t, benchSeeds(`${t.prefix}-${from}`, Math.min(slice, n - from)));
  return t;
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/**
 * Runs the stage for `seconds` against the queued topics from the start (a fresh database, and the group's offsets
 * reset to the beginning, so every repeat faces the whole backlog), sampling its RSS.
 */
async function sample(t: RunTopics, ctx: BenchContext, seconds: number): Promise<Sampled> {
  const db = await benchDatabase(loadConfig());
  const admin = t.kafka.admin();
  await admin.connect();
  const group = groupId(t.prefix, 'draft');
  const input = topicName(t.prefix, 'seed');
  try {
    // The previous run's member may still be in the group for a moment after its process exited: the reset
    // waits until the coordinator has let it go.
    for (let waited = 0; ; waited += 1) {
      try {
        await admin.resetOffsets({ groupId: group, topic: input, earliest: true });
        break;
      } catch (error) {
        if (!(error instanceof Error && /no running instances/.test(error.message)) || waited >= 120) throw error;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    const child = spawn(process.execPath, ['--disable-warning=TimeoutNegativeWarning', '--import', 'tsx', join(REPO_ROOT, 'cli', 'main.ts'), 'processor', 'draft'], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...benchEnv(db.url), PERSONAHUB_TOPIC_PREFIX: t.prefix },
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    const pid = child.pid;
    if (pid === undefined) throw new BenchError('PH_BENCH_SPAWN', 'the stage process did not start');
    const points: [number, number][] = [];
    const start = performance.now();
    try {
      while (performance.now() - start < seconds * 1000) {
        if (child.exitCode !== null) throw new BenchError('PH_BENCH_STAGE_EXITED', `the draft stage exited with ${child.exitCode} under the backlog`);
        const rss = rssMiB(pid);
        if (rss !== undefined) points.push([(performance.now() - start) / 1000, Math.round(rss * 10) / 10]);
        await new Promise((r) => setTimeout(r, SAMPLE_MS));
      }
    } finally {
      await stop(child);
    }
    return { points, processed: await sumCommitted(admin, group, input) };
  } finally {
    await admin.disconnect();
    await db.drop();
  }
}

/** Least-squares slope of RSS over time, in MiB per minute, over the second half of the samples (after start-up). */
function slopePerMinute(points: readonly [number, number][]): number {
  const tail = points.slice(Math.floor(points.length / 2));
  if (tail.length < 2) return 0;
  const mx = tail.reduce((s, p) => s + p[0], 0) / tail.length;
  const my = tail.reduce((s, p) => s + p[1], 0) / tail.length;
  const num = tail.reduce((s, p) => s + (p[0] - mx) * (p[1] - my), 0);
  const den = tail.reduce((s, p) => s + (p[0] - mx) ** 2, 0);
  return den === 0 ? 0 : (num / den) * 60;
}

async function plot(python: string, file: string, title: string, series: { label: string; points: [number, number][] }[]): Promise<void> {
  await runPythonScript(python, join(REPO_ROOT, 'bench', 'backlog', 'plot.py'), [file], { title, limitMiB: LIMIT_MIB, series });
}

export const backlogBenchmark: Benchmark = {
  name: 'backlog',
  title: 'Memory under backlog: the draft stage process facing a queued backlog',
  async run(ctx: BenchContext) {
    const big = ctx.smoke ? 4_000 : 1_000_000;
    const small = ctx.smoke ? 400 : 2_000;
    const seconds = ctx.smoke ? 5 : 50;
    const repeats = 2;
    const python = await benchPython(ctx.cacheDir);
    const env = benchEnv(loadConfig().databaseUrl);
    const fillStart = performance.now();
    const bigTopics = await queued(env, ctx, big);
    const fillSeconds = (performance.now() - fillStart) / 1000;
    const smallTopics = await queued(env, ctx, small);
    try {
      const [base = [], loaded = []] = await takeTurns(repeats, [() => sample(smallTopics, ctx, seconds), () => sample(bigTopics, ctx, seconds)]);
      const med = (s: Sampled) => median(s.points.map((p) => p[1]));
      const peak = (s: Sampled) => Math.max(...s.points.map((p) => p[1]));
      const file = join(ctx.outDir, 'backlog-rss.png');
      await plot(python, file, `draft stage RSS: ${big.toLocaleString('en-US')} queued vs ${small.toLocaleString('en-US')} queued`, [
        ...loaded.map((s, i) => ({ label: `${big.toLocaleString('en-US')} queued, run ${i + 1} (${s.processed.toLocaleString('en-US')} processed)`, points: s.points })),
        ...base.map((s, i) => ({ label: `${small.toLocaleString('en-US')} queued, run ${i + 1}`, points: s.points })),
      ]);
      return {
        params: { 'queued (backlog)': big, 'queued (baseline)': small, 'seconds sampled per run': seconds, 'sample every (ms)': SAMPLE_MS, repeats, 'backlog fill (s)': Math.round(fillSeconds), plot: file.replace(`${REPO_ROOT}/`, '') },
        figures: [
          figure('rss_ratio', 'median RSS facing the backlog / facing the small queue', 'x', loaded.map((s, i) => med(s) / (base[i] ? med(base[i]) : Number.NaN)), { op: '<=', value: 1.1 }),
          figure('peak_rss', 'peak RSS facing the backlog', 'MiB', loaded.map(peak), { op: '<=', value: LIMIT_MIB }),
          figure('peak_rss_baseline', 'peak RSS facing the small queue', 'MiB', base.map(peak)),
          figure('slope', 'RSS slope over the second half of the run, facing the backlog', 'MiB/min', loaded.map((s) => slopePerMinute(s.points))),
          figure('processed', 'seeds committed during a backlog run', 'seeds', loaded.map((s) => s.processed)),
        ],
        notes: [
          'The stage is a child process (`personahub processor draft`, sampler mode), so the RSS is its own; each run starts from the beginning of the queue with a fresh database.',
          'Fetching is bounded per partition (PERSONAHUB_FETCH_MAX_BYTES_PER_PARTITION), so what the process holds does not depend on how much is queued.',
        ],
      };
    } finally {
      await dropTopics(bigTopics);
      await dropTopics(smallTopics);
    }
  },
};

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bandKeys, DEFAULT_MINHASH, estimateJaccard, exactJaccard, lshParams, minhash, shingles, type LshParams } from '../../persona/minhash.ts';
import { rng } from '../../persona/text.ts';
import { BenchError, figure, median, rate, REPO_ROOT, takeTurns, type Benchmark, type BenchContext } from '../harness.ts';
import { benchPython } from '../python.ts';

/**
 * Dedup (issue 19, benchmark 5): persona/minhash.ts against datasketch, the reference Python implementation,
 * on the same shingle sets with the same parameters (128 permutations, word 1-grams, the LSH split
 * persona/minhash.ts picks for Jaccard 0.9), in the same run, taking turns. Both sides time only their own
 * loops (shingling and process start-up are outside), so the ratio compares MinHash and LSH, not tokenisers.
 */

const THRESHOLD = 0.9;

interface Corpus {
  /** One shingle set per document, as arrays so both sides hash the same strings in the same order. */
  docs: string[][];
  /** (variant, its original) pairs, whose Jaccard spans 0.3-1 by construction. */
  pairs: [number, number][];
}

/**
 * Documents from the bundled seed texts: each original, then variants with 0-45% of their words replaced by
 * words of other seeds, so the LSH sees near-duplicates at every similarity and the estimates a range of Jaccard.
 */
export function corpus(size: number): Corpus {
  const seeds = readFileSync(join(REPO_ROOT, 'data', 'seeds.jsonl'), 'utf8').split('\n')
    .flatMap((line) => {
      try {
        const text = (JSON.parse(line) as { text?: unknown }).text;
        return typeof text === 'string' && text.trim() !== '' ? [text] : [];
      } catch {
        return [];
      }
    });
  const vocabulary = [...new Set(seeds.flatMap((t) => t.split(/\s+/)))];
  const random = rng('bench-dedup');
  const docs: string[][] = [];
  const pairs: [number, number][] = [];
  for (let i = 0; i < size; i += 1) {
    const original = i % seeds.length;
    const words = (seeds[original] as string).split(/\s+/);
    const replaced = Math.floor(i / seeds.length) % 10 * 0.05;
    const text = i < seeds.length ? words : words.map((w) => (random() < replaced ? (vocabulary[Math.floor(random() * vocabulary.length)] as string) : w));
    docs.push([...shingles(text.join(' '), DEFAULT_MINHASH.shingleSize)]);
    if (i >= seeds.length) pairs.push([i, original]);
  }
  return { docs, pairs };
}

interface SideRun {
  signatureMs: number;
  insertMs: number;
  queryMs: number;
  candidates: number;
  estimates: number[];
}

/** persona/minhash.ts's side: signatures, then an in-memory band index (band key → documents), then queries. */
function ours(c: Corpus, params: LshParams): SideRun {
  const start = performance.now();
  const sigs = c.docs.map((d) => minhash(d, DEFAULT_MINHASH));
  const signatureMs = performance.now() - start;
  // Keyed by whatever bandKeys returns (the store claims these keys), so the bench follows the module.
  const index = new Map<ReturnType<typeof bandKeys>[number], number[]>();
  const t1 = performance.now();
  sigs.forEach((s, i) => {
    for (const key of bandKeys(s, params)) {
      const bucket = index.get(key);
      if (bucket) bucket.push(i);
      else index.set(key, [i]);
    }
  });
  const insertMs = performance.now() - t1;
  const t2 = performance.now();
  let candidates = 0;
  for (const s of sigs) {
    const found = new Set<number>();
    for (const key of bandKeys(s, params)) for (const i of index.get(key) ?? []) found.add(i);
    candidates += found.size;
  }
  const queryMs = performance.now() - t2;
  return { signatureMs, insertMs, queryMs, candidates, estimates: c.pairs.map(([a, b]) => estimateJaccard(sigs[a] as Uint32Array, sigs[b] as Uint32Array)) };
}

interface DatasketchRun extends SideRun {
  version: string;
}

async function datasketch(python: string, c: Corpus, params: LshParams): Promise<DatasketchRun> {
  const job = JSON.stringify({ docs: c.docs, pairs: c.pairs, permutations: DEFAULT_MINHASH.permutations, bands: params.bands, rows: params.rows });
  return new Promise<DatasketchRun>((resolve, reject) => {
    const child = spawn(python, [join(REPO_ROOT, 'bench', 'dedup', 'datasketch_bench.py')], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new BenchError('PH_BENCH_PYTHON', `datasketch bench exited with ${code}: ${err.slice(-2000)}`));
      else resolve(JSON.parse(out) as DatasketchRun);
    });
    child.stdin.end(job);
  });
}

function meanAbsError(estimates: readonly number[], exact: readonly number[]): number {
  return estimates.reduce((sum, e, i) => sum + Math.abs(e - (exact[i] as number)), 0) / Math.max(1, estimates.length);
}

export const dedupBenchmark: Benchmark = {
  name: 'dedup',
  title: 'Dedup: MinHash and LSH, persona/minhash.ts vs datasketch',
  async run(ctx: BenchContext) {
    const size = ctx.smoke ? 600 : 20_000;
    const repeats = ctx.smoke ? 2 : 5;
    const python = await benchPython(ctx.cacheDir);
    const c = corpus(size);
    const params = lshParams(THRESHOLD, DEFAULT_MINHASH.permutations);
    const sets = c.docs.map((d) => new Set(d));
    const exact = c.pairs.map(([a, b]) => exactJaccard(sets[a] as Set<string>, sets[b] as Set<string>));
    let version = 'unknown';
    const [theirs = [], mine = []] = await takeTurns<SideRun>(repeats, [async () => {
      const run = await datasketch(python, c, params);
      version = run.version;
      return run;
    }, async () => ours(c, params)]);
    const oursFirst = mine[0];
    const theirsFirst = theirs[0];
    if (!oursFirst || !theirsFirst) throw new BenchError('PH_BENCH_EMPTY', 'no repeat ran');
    const sigOurs = mine.map((r) => rate(size, r.signatureMs));
    const sigTheirs = theirs.map((r) => rate(size, r.signatureMs));
    const qOurs = mine.map((r) => rate(size, r.queryMs));
    const qTheirs = theirs.map((r) => rate(size, r.queryMs));
    const iOurs = mine.map((r) => rate(size, r.insertMs));
    const iTheirs = theirs.map((r) => rate(size, r.insertMs));
    const ratio = (a: number[], b: number[]) => a.map((x, i) => x / (b[i] ?? Number.NaN));
    const maeOurs = meanAbsError(oursFirst.estimates, exact);
    const maeTheirs = meanAbsError(theirsFirst.estimates, exact);
    // The standard error of a 128-minimum estimate, averaged over the pairs: what an unbiased MinHash should show.
    const expected = exact.reduce((s, j) => s + Math.sqrt((j * (1 - j)) / DEFAULT_MINHASH.permutations) * Math.sqrt(2 / Math.PI), 0) / Math.max(1, exact.length);
    return {
      params: {
        documents: size, repeats, permutations: DEFAULT_MINHASH.permutations, shingles: 'word 1-grams', threshold: THRESHOLD,
        bands: params.bands, rows: params.rows, pairs: c.pairs.length, datasketch: version,
        'median exact Jaccard of the pairs': Math.round(median(exact) * 1000) / 1000,
        'candidates per query (ours)': Math.round((oursFirst.candidates / size) * 100) / 100,
        'candidates per query (datasketch)': Math.round((theirsFirst.candidates / size) * 100) / 100,
      },
      figures: [
        figure('signatures_ratio', 'MinHash signatures/s, ours / datasketch', 'x', ratio(sigOurs, sigTheirs), { op: '>=', value: 1 }),
        figure('lsh_query_ratio', 'LSH queries/s, ours / datasketch', 'x', ratio(qOurs, qTheirs), { op: '>=', value: 1 }),
        figure('lsh_insert_ratio', 'LSH inserts/s, ours / datasketch', 'x', ratio(iOurs, iTheirs)),
        figure('signatures_ours', 'MinHash signatures/s, ours', 'ops/s', sigOurs),
        figure('signatures_datasketch', 'MinHash signatures/s, datasketch', 'ops/s', sigTheirs),
        figure('lsh_query_ours', 'LSH queries/s, ours', 'ops/s', qOurs),
        figure('lsh_query_datasketch', 'LSH queries/s, datasketch', 'ops/s', qTheirs),
        figure('error_ours', 'Mean absolute error of the Jaccard estimate, ours', 'Jaccard', [maeOurs]),
        figure('error_datasketch', 'Mean absolute error of the Jaccard estimate, datasketch', 'Jaccard', [maeTheirs]),
        figure('error_expected', 'Mean absolute error expected of 128 minima: mean of sqrt(J(1-J)/128)·sqrt(2/π)', 'Jaccard', [expected]),
      ],
      notes: [
        'Shingling and process start-up are outside both timings: each side hashes the same shingle sets.',
        'datasketch hashes with sha1 and numpy (update_batch, its vectorised path); ours is 32-bit murmur-style mixing in plain TypeScript.',
        'Our LSH index here is a Map from band key to documents: the in-memory equivalent of the store\'s band claims.',
      ],
    };
  },
};

import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { personahubEnv } from '../helpers/pipeline.ts';

const run = promisify(execFile);

/** Every benchmark the harness must run, by the name `--only` takes. */
const EXPECTED = ['dedup', 'runner', 'pipeline', 'clients', 'llm', 'llm-e2e', 'embed-e2e', 'search', 'backlog'];

interface Figure {
  id: string;
  unit: string;
  samples: number[];
  min: number;
  median: number;
  max: number;
  target?: { op: string; value: number };
  met?: boolean;
}

interface Results {
  smoke: boolean;
  machine: { cores: number; memoryGiB: number };
  versions: Record<string, string>;
  benchmarks: { name: string; title: string; figures: Figure[]; params: Record<string, unknown>; seconds: number }[];
}

async function bench(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args], {
      env: { ...personahubEnv(), PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PERSONAHUB_LOG_LEVEL: 'warn' },
      timeout: 540_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/**
 * The benchmarks at tiny sizes, so they cannot rot: each must run to the end and produce well-formed figures.
 * How fast anything was is never asserted (the machine is shared); only that a figure is a real measurement.
 */
describe('bench --smoke', () => {
  const out = mkdtempSync(join(tmpdir(), 'ph-bench-smoke-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('runs every benchmark and writes well-formed results, leaving the committed results and docs alone', async () => {
    const doc = readFileSync('docs/BENCHMARKS.md', 'utf8');
    const committed = readFileSync('bench/results/latest.json', 'utf8');
    const r = await bench(['--smoke', '--out', out]);
    expect(r.stderr.split('\n').filter((l) => l.includes('"level":50'))).toEqual([]);
    expect(r.code).toBe(0);
    const results = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as Results;
    expect(results.smoke).toBe(true);
    expect(results.machine.cores).toBeGreaterThan(0);
    expect(results.versions.kafkajs).toMatch(/^\d+\.\d+\.\d+$/);
    expect(results.benchmarks.map((b) => b.name)).toEqual(EXPECTED);
    console.log(`[bench smoke] seconds per benchmark: ${results.benchmarks.map((b) => `${b.name} ${b.seconds.toFixed(0)}`).join(', ')}`);
    for (const b of results.benchmarks) {
      expect(b.figures.length, b.name).toBeGreaterThan(0);
      for (const f of b.figures) {
        const where = `${b.name}.${f.id}`;
        expect(f.samples.length, where).toBeGreaterThan(0);
        for (const s of f.samples) expect(Number.isFinite(s), `${where}: ${s}`).toBe(true);
        expect(f.min, where).toBe(Math.min(...f.samples));
        expect(f.max, where).toBe(Math.max(...f.samples));
        expect(f.min <= f.median && f.median <= f.max, where).toBe(true);
        // A ratio or a rate of zero means nothing was measured: the benchmark ran empty.
        if (f.unit === 'x' || f.unit.endsWith('/s')) expect(f.min, where).toBeGreaterThan(0);
        if (f.target) expect(f.met, where).toBe(f.target.op === '>=' ? f.median >= f.target.value : f.median <= f.target.value);
      }
      // Ratios come from repeats that alternate, so there are at least two samples to alternate.
      for (const f of b.figures.filter((x) => x.unit === 'x')) expect(f.samples.length, `${b.name}.${f.id}`).toBeGreaterThanOrEqual(2);
    }
    // The backlog benchmark's memory plot: a PNG file, by its signature.
    expect(readFileSync(join(out, 'backlog-rss.png')).subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
    const table = readFileSync(join(out, 'latest.md'), 'utf8');
    for (const b of results.benchmarks) expect(table).toContain(b.title);
    expect(readFileSync('docs/BENCHMARKS.md', 'utf8')).toBe(doc);
    expect(readFileSync('bench/results/latest.json', 'utf8')).toBe(committed);
  }, 600_000);

  it('refuses an unknown benchmark name, listing the real ones', async () => {
    const r = await bench(['--only', 'nonesuch', '--smoke', '--out', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no benchmark named nonesuch');
    expect(r.stderr).toContain('dedup');
  });
});

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { flameGraph, summarizeProfile, trimProfile } from '../../../bench/embed/flamegraph.ts';
import { REPO_ROOT } from '../../../bench/harness.ts';

/**
 * A profile small enough to reckon by hand: root → kafkaFetch (a package) → claimChunk (this repo), plus V8's idle
 * and GC entries. Samples every 1 ms from t = 1,000 µs; `startUp` (this repo's cli/) runs only in the first 3 ms.
 */
const node = (id: number, functionName: string, url: string, children: number[] = []) => ({ id, callFrame: { functionName, url, scriptId: '0', lineNumber: 1, columnNumber: 1 }, hitCount: 0, children });
const PROFILE = {
  nodes: [
    node(1, '(root)', '', [2, 4, 5, 6]),
    node(2, 'kafkaFetch', `file://${REPO_ROOT}/node_modules/kafkajs/src/consumer.js`, [3]),
    node(3, 'claimChunk', `file://${REPO_ROOT}/persona/claims.ts`),
    node(4, '(idle)', ''),
    node(5, '(garbage collector)', ''),
    node(6, 'startUp', `file://${REPO_ROOT}/cli/main.ts`),
  ],
  startTime: 0,
  endTime: 11_000,
  // One sample per ms at 1,000 .. 10,000 µs.
  samples: [6, 6, 6, 2, 3, 3, 4, 4, 5, 3],
  timeDeltas: [1_000, 1_000, 1_000, 1_000, 1_000, 1_000, 1_000, 1_000, 1_000, 1_000],
};

describe('bench/embed/flamegraph', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ph-flame-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'p.cpuprofile');
  writeFileSync(file, JSON.stringify(PROFILE));

  it('splits the time into idle and busy time by owner: package, repo folder, V8 entry', () => {
    const s = summarizeProfile(file);
    // The last sample has no successor, so it counts for nothing: 9 ms in all, 2 of them idle.
    expect(s.totalMs).toBeCloseTo(9);
    expect(s.idle).toBeCloseTo(2 / 9);
    expect(Object.fromEntries(s.busy.map((b) => [b.owner, b.share]))).toEqual({
      'cli/ (this repo)': 3 / 7, 'persona/ (this repo)': 2 / 7, kafkajs: 1 / 7, GC: 1 / 7,
    });
    expect(s.busy[0]?.owner).toBe('cli/ (this repo)');
  });

  it('trims to a time window: only its samples, hit counts recounted, nodes without a sample left out', () => {
    const out = join(dir, 'trimmed.cpuprofile');
    trimProfile(file, out, 3_500, 10_000);
    const t = JSON.parse(readFileSync(out, 'utf8')) as typeof PROFILE;
    expect(t.samples).toEqual([2, 3, 3, 4, 4, 5, 3]);
    expect(t.timeDeltas).toEqual([500, 1_000, 1_000, 1_000, 1_000, 1_000, 1_000]);
    expect(t.nodes.map((n) => n.id)).toEqual([1, 2, 3, 4, 5]);
    expect(Object.fromEntries(t.nodes.map((n) => [n.id, n.hitCount]))).toEqual({ 1: 0, 2: 1, 3: 3, 4: 2, 5: 1 });
    expect(t.nodes[0]?.children).toEqual([2, 4, 5]);
    expect(() => trimProfile(file, out, 20_000, 30_000)).toThrow(/no sample between/);
  });

  it('renders a trimmed profile as one HTML file holding its frames and not the trimmed ones', async () => {
    const trimmed = join(dir, 'window.cpuprofile');
    trimProfile(file, trimmed, 3_500, 10_000);
    const html = join(dir, 'flame.html');
    const bytes = await flameGraph(trimmed, html, 'unit test');
    const text = readFileSync(html, 'utf8');
    expect(bytes).toBe(Buffer.byteLength(text));
    expect(text).toContain('claimChunk');
    expect(text).not.toContain('startUp');
  }, 60_000);
});

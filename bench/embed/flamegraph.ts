import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import zeroEks from '0x';
import { BenchError, REPO_ROOT } from '../harness.ts';

/**
 * A V8 CPU profile (`node --cpu-prof`) as a flame graph, and where its time went by library.
 *
 *   node --import tsx bench/embed/flamegraph.ts <profile.cpuprofile> <out.html> [--title TEXT]
 *
 * The flame graph is 0x's (one self-contained HTML file: its d3 visualizer and the stacks); 0x renders a
 * .cpuprofile as it is, without running anything. The summary is ours, since 0x prints none: self time of
 * each sample grouped by what the frame belongs to (a package under node_modules, a folder of this repo,
 * Node's internals, or V8's own idle, GC and program entries).
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Profiled wall time, ms. */
  totalMs: number;
  /** Share of the wall time the process sat idle (V8's `(idle)` samples), 0-1. */
  idle: number;
  /** Busy time by owner, largest first, each a share of the busy time (0-1). */
  busy: { owner: string; share: number }[];
}

const V8_ENTRIES: Record<string, string> = { '(idle)': 'idle', '(garbage collector)': 'GC', '(program)': 'V8 (program)', '(root)': 'V8 (program)' };

/** Who a frame belongs to: the package (scoped ones by scope/name), the repo folder, or Node itself. */
function owner(frame: ProfileNode['callFrame']): string {
  const entry = V8_ENTRIES[frame.functionName];
  if (entry !== undefined && frame.url === '') return entry;
  const url = frame.url.startsWith('file://') ? new URL(frame.url).pathname : frame.url;
  const modules = url.lastIndexOf(`${sep}node_modules${sep}`);
  if (modules >= 0) {
    const parts = url.slice(modules + `${sep}node_modules${sep}`.length).split(sep);
    return parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1] ?? ''}` : (parts[0] ?? 'node_modules');
  }
  if (url.startsWith('node:') || url === '') return 'Node.js internals';
  if (url.startsWith(REPO_ROOT + sep)) return `${url.slice(REPO_ROOT.length + 1).split(sep)[0] ?? ''}/ (this repo)`;
  return 'other';
}

export function summarizeProfile(file: string): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const owners = new Map(profile.nodes.map((n) => [n.id, owner(n.callFrame)]));
  const ms = new Map<string, number>();
  // timeDeltas[i] is the time before sample i, so sample i lasted until sample i + 1 was taken.
  for (let i = 0; i < profile.samples.length; i += 1) {
    const who = owners.get(profile.samples[i] as number) ?? 'other';
    const lasted = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    ms.set(who, (ms.get(who) ?? 0) + lasted);
  }
  const total = [...ms.values()].reduce((s, v) => s + v, 0);
  const idle = ms.get('idle') ?? 0;
  ms.delete('idle');
  const busyMs = total - idle;
  return {
    totalMs: total,
    idle: total > 0 ? idle / total : 0,
    busy: [...ms.entries()].map(([o, v]) => ({ owner: o, share: busyMs > 0 ? v / busyMs : 0 })).sort((a, b) => b.share - a.share),
  };
}

/**
 * Keeps the samples taken between `fromUs` and `toUs` (V8's profile clock, which on Linux is CLOCK_MONOTONIC in
 * microseconds, as process.hrtime is in every process), so a stage's flame graph shows its work and not its start-up
 * (module loading, transpiling) or shutdown. Nodes no kept sample passes through are dropped, which also keeps the
 * HTML small. Writes the trimmed profile to `out`.
 */
export function trimProfile(file: string, out: string, fromUs: number, toUs: number): void {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const samples: number[] = [];
  const times: number[] = [];
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i += 1) {
    t += p.timeDeltas[i] ?? 0;
    if (t >= fromUs && t <= toUs) {
      samples.push(p.samples[i] as number);
      times.push(t);
    }
  }
  if (samples.length === 0) throw new BenchError('PH_BENCH_PROFILE', `${file}: no sample between ${fromUs} and ${toUs} (its samples run from ${p.startTime} to ${p.endTime})`);
  const hits = new Map<number, number>();
  for (const id of samples) hits.set(id, (hits.get(id) ?? 0) + 1);
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Each kept sample counts for its node and every ancestor: what has no count left has no kept sample under it.
  const total = new Map<number, number>();
  for (const [id, count] of hits) {
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) total.set(at, (total.get(at) ?? 0) + count);
  }
  const root = p.nodes[0];
  const nodes = p.nodes.filter((n) => n === root || (total.get(n.id) ?? 0) > 0).map((n) => ({
    ...n, hitCount: hits.get(n.id) ?? 0, children: (n.children ?? []).filter((c) => byId.has(c) && (total.get(c) ?? 0) > 0),
  }));
  const timeDeltas = times.map((v, i) => v - (i === 0 ? fromUs : (times[i - 1] as number)));
  writeFileSync(out, JSON.stringify({ nodes, startTime: fromUs, endTime: toUs, samples, timeDeltas }));
}

/** One line a reader can take in: idle share, then the busy time's largest owners. */
export function describeSummary(s: ProfileSummary, top = 8): string {
  const pct = (v: number) => `${Math.round(v * 100)}%`;
  return `idle ${pct(s.idle)} of ${(s.totalMs / 1000).toFixed(1)} s profiled; busy time: ${s.busy.slice(0, top).map((b) => `${b.owner} ${pct(b.share)}`).join(', ')}`;
}

/** Writes the flame graph of `profile` to `outHtml` (one self-contained file) and returns its size in bytes. */
export async function flameGraph(profile: string, outHtml: string, title: string): Promise<number> {
  const out = resolve(outHtml);
  try {
    await zeroEks({ visualizeCpuProfile: resolve(profile), outputHtml: out, title, name: 'flamegraph', workingDir: dirname(out) });
  } catch (cause) {
    throw new BenchError('PH_BENCH_FLAMEGRAPH', `0x could not render ${profile}: ${(cause as Error).message}`, { cause });
  }
  return statSync(out).size;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { title: { type: 'string' } } });
  const [profile, out] = positionals;
  if (profile === undefined || out === undefined) throw new BenchError('PH_BENCH_USAGE', 'usage: flamegraph.ts <profile.cpuprofile> <out.html> [--title TEXT]');
  const bytes = await flameGraph(profile, out, values.title ?? profile);
  process.stdout.write(`${out} (${Math.round(bytes / 1024)} KiB)\n${describeSummary(summarizeProfile(profile))}\n`);
}

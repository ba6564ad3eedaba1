import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dashboardExprs } from '../../scripts/chart-sync.ts';
import { freePort } from '../helpers/faults.ts';
import { byKind, CHART, exposedNames, helmTemplate, metricNames, ROOT, tool, type Manifest } from './helpers.ts';

/**
 * Every metric the dashboard and the alert rules query exists in what a real stage process serves:
 * `personahub processor draft` runs as a child with the default stack configuration and a metrics port,
 * and its /metrics is compared with the names in files/dashboard.json and the rendered PrometheusRule.
 * The broker may be restarting (another test or an operator restarts it), so the child is started
 * again until it serves, within a generous deadline.
 */
const DEADLINE_MS = 8 * 60_000;
let child: ChildProcess | undefined;
let exposition = '';

function childEnv(extra: Record<string, string>): Record<string, string> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined && (e[0].startsWith('PERSONAHUB_') || ['PATH', 'HOME', 'NODE_OPTIONS'].includes(e[0]))));
  return { ...inherited, PERSONAHUB_LOG_LEVEL: 'warn', ...extra };
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** `personahub topics init` until it succeeds (idempotent), so the stage finds its input topic. */
async function topicsInit(deadline: number): Promise<void> {
  let last = '';
  while (Date.now() < deadline) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'topics', 'init'], { cwd: ROOT, env: childEnv({}), encoding: 'utf8', timeout: 120_000 });
    if (r.status === 0) return;
    last = r.stderr.slice(-2000);
    await sleep(5_000);
  }
  throw new Error(`personahub topics init never succeeded against the default stack (is it up? ./personahub stack status):\n${last}`);
}

async function scrapeRealProcessor(): Promise<string> {
  const deadline = Date.now() + DEADLINE_MS;
  await topicsInit(deadline);
  let exits = 0;
  while (Date.now() < deadline) {
    const port = await freePort();
    let stderr = '';
    child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'processor', 'draft'], { cwd: ROOT, env: childEnv({ PERSONAHUB_METRICS_PORT: String(port) }), stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (b: Buffer) => { stderr = `${stderr}${b.toString()}`.slice(-4000); });
    const exited = new Promise<void>((resolve) => child?.once('exit', () => resolve()));
    let gone = false;
    void exited.then(() => { gone = true; });
    while (!gone && Date.now() < deadline) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5_000) });
        if (res.ok) return await res.text();
      } catch {
        // not serving yet
      }
      await sleep(500);
    }
    exits++;
    if (exits > 20) throw new Error(`personahub processor draft exited ${exits} times before serving /metrics; last stderr:\n${stderr}`);
    await sleep(3_000);
  }
  throw new Error('personahub processor draft did not serve /metrics before the deadline');
}

beforeAll(async () => {
  exposition = await scrapeRealProcessor();
}, DEADLINE_MS + 60_000);

afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child?.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
});

describe('the dashboard and the alerts query only metrics a real processor serves', () => {
  it('every metric of files/dashboard.json is in /metrics', () => {
    const dashboard = JSON.parse(readFileSync(join(CHART, 'files', 'dashboard.json'), 'utf8')) as Record<string, unknown>;
    const names = dashboardExprs(dashboard).flatMap(metricNames);
    expect(names.length).toBeGreaterThan(15);
    const exposed = exposedNames(exposition);
    expect([...new Set(names)].filter((n) => !exposed.has(n))).toEqual([]);
  });

  it('every metric of the PrometheusRule is in /metrics', () => {
    const helm = tool('helm');
    const rule = byKind(helmTemplate(helm).manifests, 'PrometheusRule')[0] as Manifest & { spec: { groups: { rules: { expr: string }[] }[] } };
    const names = rule.spec.groups.flatMap((g) => g.rules).flatMap((r) => metricNames(r.expr));
    expect(names.length).toBeGreaterThan(7);
    const exposed = exposedNames(exposition);
    expect([...new Set(names)].filter((n) => !exposed.has(n))).toEqual([]);
  });

  it('the comparison is not vacuous: a misspelled name is missing', () => {
    const exposed = exposedNames(exposition);
    expect(exposed.has('personahub_events_consumed_total')).toBe(true);
    expect(exposed.has('personahub_processing_duration_seconds_bucket')).toBe(true);
    expect(exposed.has('personahub_event_consumed_total')).toBe(false);
  });
});

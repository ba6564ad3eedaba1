import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { dashboardExprs } from '../../scripts/chart-sync.ts';
import { byKind, CHART, helmTemplate, PROFILES, profileFiles, tempDir, tool, type Manifest } from './helpers.ts';

/**
 * The alert rules pass `promtool check rules` for every profile and behave as docs/OPERATIONS.md says
 * (`promtool test rules` over test/chart/alerts.test.yaml); every dashboard query parses as PromQL
 * (each turned into a recording rule, the way to lint a dashboard offline).
 */
let promtool: string;
let helm: string;

beforeAll(() => {
  helm = tool('helm');
  promtool = tool('promtool');
});

interface Rule { alert?: string; record?: string; expr: string; annotations?: Record<string, string> }
type RuleManifest = Manifest & { spec: { groups: { name: string; rules: Rule[] }[] } };

function ruleGroups(files: string[] = []): RuleManifest['spec']['groups'] {
  return (byKind(helmTemplate(helm, { files }).manifests, 'PrometheusRule')[0] as RuleManifest).spec.groups;
}

function promtoolRun(args: string[], cwd: string): { ok: boolean; output: string } {
  const r = spawnSync(promtool, args, { cwd, encoding: 'utf8' });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

describe('alert rules', () => {
  it.each(PROFILES)('%s: promtool check rules', (profile) => {
    const dir = tempDir('ph-rules-');
    writeFileSync(join(dir, 'rules.yaml'), stringify({ groups: ruleGroups(profileFiles(profile)) }));
    const r = promtoolRun(['check', 'rules', 'rules.yaml'], dir);
    expect(r.ok, r.output).toBe(true);
    expect(r.output).toContain('SUCCESS: 7 rules found');
  });

  it('every alert of docs/OPERATIONS.md is there', () => {
    const rules = ruleGroups().flatMap((g) => g.rules);
    const alerts = rules.map((r) => r.alert);
    expect(alerts.sort()).toEqual(['PersonaHubConsumerRestarts', 'PersonaHubDeadLetters', 'PersonaHubDependencyDown', 'PersonaHubErrorRatio', 'PersonaHubLagGrowing', 'PersonaHubLlmErrors', 'PersonaHubStageStalled']);
    const ops = readFileSync(join(CHART, '..', '..', 'docs', 'OPERATIONS.md'), 'utf8');
    for (const metric of ['personahub_breaker_state', 'personahub_consumer_lag', 'personahub_events_produced_total', 'personahub_events_dead_lettered_total', 'personahub_events_failed_total', 'personahub_consumer_restarts_total', 'personahub_llm_requests_total']) {
      expect(ops).toContain(metric);
      expect(rules.some((r) => r.expr.includes(metric)), metric).toBe(true);
    }
  });

  it('promtool test rules: each alert fires when it should and stays quiet when it should not', () => {
    const dir = tempDir('ph-rules-test-');
    // Summaries are checked; the longer descriptions are prose, left out of the exact comparison.
    const groups = ruleGroups().map((g) => ({ ...g, rules: g.rules.map((r) => ({ ...r, annotations: { summary: r.annotations?.summary ?? '' } })) }));
    writeFileSync(join(dir, 'rules.yaml'), stringify({ groups }));
    copyFileSync(join(import.meta.dirname, 'alerts.test.yaml'), join(dir, 'alerts.test.yaml'));
    const r = promtoolRun(['test', 'rules', 'alerts.test.yaml'], dir);
    expect(r.ok, r.output).toBe(true);
    expect(r.output).toContain('SUCCESS');
  });
});

describe('dashboard', () => {
  it('every panel query parses as PromQL (as a recording rule, Grafana variables given values)', () => {
    const dashboard = JSON.parse(readFileSync(join(CHART, 'files', 'dashboard.json'), 'utf8')) as Record<string, unknown>;
    const exprs = dashboardExprs(dashboard);
    expect(exprs.length).toBeGreaterThan(20);
    const rules = exprs.map((expr, i) => ({
      record: `personahub:dashboard_query_${i}`,
      expr: expr.replaceAll('$__rate_interval', '5m').replaceAll('$namespace', '.*').replaceAll('$stage', '.*'),
    }));
    const dir = tempDir('ph-dashboard-');
    writeFileSync(join(dir, 'dashboard-rules.yaml'), stringify({ groups: [{ name: 'dashboard', rules }] }));
    const r = promtoolRun(['check', 'rules', 'dashboard-rules.yaml'], dir);
    expect(r.ok, r.output).toBe(true);
    expect(r.output).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it('the dashboard ConfigMap carries the generated JSON as is', () => {
    const cm = byKind(helmTemplate(helm).manifests, 'ConfigMap').find((m) => m.metadata.name.endsWith('-dashboard'));
    expect(JSON.parse(cm?.data?.['personahub-stream.json'] ?? '{}')).toEqual(JSON.parse(readFileSync(join(CHART, 'files', 'dashboard.json'), 'utf8')));
    expect(cm?.metadata.labels?.grafana_dashboard).toBe('1');
  });
});

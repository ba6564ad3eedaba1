import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';

/**
 * Shared pieces of the chart tests: the pinned tools (installed by scripts/chart-tools.sh into the cache,
 * outside the repo), `helm template` with the target Kubernetes version, and the rendered manifests.
 */
export const ROOT = resolve(import.meta.dirname, '..', '..');
export const CHART = join(ROOT, 'helm', 'personahub');
export const KUBE_VERSION = '1.34.0';
export const PROFILES = ['values.yaml', 'values-small.yaml', 'values-large.yaml'] as const;
export const TOOLS_SCRIPT = join(ROOT, 'scripts', 'chart-tools.sh');

export type Tool = 'helm' | 'promtool' | 'kubernetes-validate' | 'shellcheck';

/**
 * The tool's executable, installing the pinned version first when it is missing (idempotent: a cached
 * tool costs a stamp-file check). Nothing is skipped: a tool that cannot be installed fails the test
 * with the command to run.
 */
export function tool(name: Tool): string {
  const install = spawnSync('bash', [TOOLS_SCRIPT, 'install', name], { encoding: 'utf8', timeout: 590_000 });
  if (install.status !== 0) {
    throw new Error(`${name} is missing and could not be installed; run \`scripts/chart-tools.sh install ${name}\`:\n${install.stderr}`);
  }
  return execFileSync('bash', [TOOLS_SCRIPT, 'path', name], { encoding: 'utf8' }).trim();
}

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  [key: string]: unknown;
}

export interface Rendered {
  yaml: string;
  manifests: Manifest[];
}

export class HelmError extends Error {}

/** `helm template` of a chart (the repo's by default) with the given values files and values as YAML text. */
export function helmTemplate(helm: string, o: { files?: string[]; values?: string; chart?: string; set?: string[] } = {}): Rendered {
  const args = ['template', 'ph', o.chart ?? CHART, '--namespace', 'personahub', '--kube-version', KUBE_VERSION];
  for (const f of o.files ?? []) args.push('-f', join(o.chart ?? CHART, f));
  if (o.values !== undefined) {
    const file = join(mkdtempSync(join(tmpdir(), 'ph-values-')), 'values.yaml');
    writeFileSync(file, o.values);
    args.push('-f', file);
  }
  for (const s of o.set ?? []) args.push('--set', s);
  const r = spawnSync(helm, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new HelmError(r.stderr.trim());
  return { yaml: r.stdout, manifests: parseManifests(r.stdout) };
}

export function parseManifests(text: string): Manifest[] {
  return parseAllDocuments(text).map((d) => {
    if (d.errors.length > 0) throw new Error(`rendered YAML does not parse: ${d.errors.map((e) => e.message).join('; ')}`);
    return d.toJS() as Manifest | null;
  }).filter((m): m is Manifest => m !== null);
}

export function profileFiles(profile: (typeof PROFILES)[number]): string[] {
  return profile === 'values.yaml' ? [] : [profile];
}

export function byKind(manifests: Manifest[], kind: string): Manifest[] {
  return manifests.filter((m) => m.kind === kind);
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Metric names a PromQL expression reads (every identifier with the project's prefix). */
export function metricNames(expr: string): string[] {
  return [...new Set(expr.match(/\bpersonahub_[a-zA-Z0-9_]+\b/g) ?? [])];
}

/** The families a Prometheus text exposition declares, with the series names each one yields. */
export function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name = '', type] = m;
    names.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(`${name}${s}`);
    if (type === 'summary') for (const s of ['_sum', '_count']) names.add(`${name}${s}`);
  }
  for (const m of text.matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/gm)) names.add(m[1] ?? '');
  return names;
}

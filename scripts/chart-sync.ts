/**
 * Generates the parts of the Helm chart (helm/personahub) that come from the code, so they cannot drift:
 *
 * - files/topology.json: the stages (input, outputs, doc) and events of topology/index.ts; the chart's
 *   templates iterate over it (one Deployment, Service, ScaledObject/HPA and PDB per stage).
 * - files/config-keys.json: each configuration key the chart may set and its variable (config/index.ts),
 *   split into ConfigMap keys and Secret keys.
 * - values.schema.json: the `config`, `secrets`, `stages` and `$defs.configOverrides` sections, typed from
 *   the configuration schema (enums, integer bounds, patterns) with its docs; the rest is hand-written.
 * - files/dashboard.json: the Grafana dashboard, every panel over the metrics of runtime/metrics.ts.
 * - README.md: the table of every value, between the `values:start` and `values:end` markers, from
 *   values.yaml (defaults) and values.schema.json (types, descriptions).
 *
 *   node --import tsx scripts/chart-sync.ts            write them
 *   node --import tsx scripts/chart-sync.ts --check    exit 1 naming any file that is not current
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { keys } from '../config/index.ts';
import { events, stageTable, type StageDef } from '../topology/index.ts';

export const ROOT = resolve(import.meta.dirname, '..');
export const CHART_DIR = join(ROOT, 'helm', 'personahub');
export const SYNC_COMMAND = 'node --import tsx scripts/chart-sync.ts';

/** The topology as the chart sees it: what topology/index.ts exports, or a test's variant of it. */
export interface TopologyInput {
  events: Record<string, { retentionMs: number; doc: string }>;
  stageTable: Record<string, StageDef | { input: string; outputs: readonly string[]; doc: string }>;
}

export interface ChartTopology {
  generated: string;
  events: Record<string, { retentionMs: number; doc: string }>;
  stages: { name: string; input: string; outputs: string[]; doc: string }[];
}

export function chartTopology(t: TopologyInput = { events, stageTable }): ChartTopology {
  return {
    generated: `by ${SYNC_COMMAND} from topology/index.ts; do not edit`,
    events: Object.fromEntries(Object.entries(t.events).map(([name, e]) => [name, { retentionMs: e.retentionMs, doc: e.doc }])),
    stages: Object.entries(t.stageTable).map(([name, s]) => ({ name, input: s.input, outputs: [...s.outputs], doc: s.doc })),
  };
}

// ---------------------------------------------------------------------------------------------------
// Configuration keys

export type KeyClass = 'config' | 'secret' | 'chart' | 'localStack';

/** Keys the chart sets itself, with what it sets them to (shown in the README). */
const CHART_MANAGED: Record<string, string> = {
  home: '`/tmp/personahub` (the /tmp emptyDir; the root filesystem is read-only)',
  cacheDir: '`/tmp/personahub/cache`',
  modelsDir: '`/models` in the model server (its volume)',
  metricsPort: '`metrics.port`',
  store: '`postgres` (PGlite is one process only)',
  pgliteDir: 'unused (store is postgres)',
  llmPort: 'the model server\'s loopback port, `18434`',
  startLocalLlm: 'unused (`stack up` only)',
};
/** Credentials: set in the Secret, never in the ConfigMap. The SASL username is there too, for KEDA's TriggerAuthentication. */
const SECRET_KEYS = new Set(['databaseUrl', 'llmApiKey', 'kafkaSaslUsername', 'kafkaSaslPassword', 'registryPassword']);

export function keyClass(key: string, spec: { env: string; doc: string }): KeyClass {
  if (key in CHART_MANAGED) return 'chart';
  if (spec.doc.startsWith('Local stack:')) return 'localStack';
  if (SECRET_KEYS.has(key) || /(PASSWORD|API_KEY|SECRET|TOKEN)$/.test(spec.env)) return 'secret';
  return 'config';
}

type JsonSchema = Record<string, unknown>;

/**
 * A JSON schema for one key's value in values.yaml, read off its zod schema: the value users type in YAML
 * (a number for a whole-number key, a boolean for true/false), with the bounds the key's own message states.
 */
export function valueSchema(spec: { schema: z.ZodType; default: unknown }): JsonSchema {
  const input = z.toJSONSchema(spec.schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  delete input.$schema;
  const parses = (v: string) => spec.schema.safeParse(v);
  // A value the key accepts, to tell a number key from a string one: its own default when it is static.
  const probe = typeof spec.default === 'string' && spec.default !== '' ? spec.default : '1';
  const one = parses(probe);
  const half = parses('0.5');
  const enumValues = Array.isArray(input.enum) ? (input.enum as string[]) : undefined;
  if (enumValues) {
    const outputs = enumValues.map((v) => parses(v)).map((r) => (r.success ? r.data : undefined));
    if (outputs.every((o) => typeof o === 'boolean')) return { type: 'boolean' };
    if (outputs.every((o) => typeof o === 'number')) return { type: 'integer', enum: outputs };
    return { type: 'string', enum: enumValues };
  }
  if (one.success && typeof one.data === 'number') {
    const failed = parses('-1');
    const message = failed.success ? '' : (failed.error.issues[0]?.message ?? '');
    const range = /from ([\d.]+) to ([\d.]+)/.exec(message);
    const atLeast = /of at least ([\d.]+)/.exec(message);
    const n: JsonSchema = { type: half.success ? 'number' : 'integer' };
    if (range) Object.assign(n, { minimum: Number(range[1]), maximum: Number(range[2]) });
    else if (atLeast) n.minimum = Number(atLeast[1]);
    const empty = parses('');
    return empty.success ? { anyOf: [n, { type: 'string', const: '' }] } : n;
  }
  // Strings: keep what JSON schema can say (pattern, minLength, enum, ""), not formats Helm does not assert.
  const strip = (s: JsonSchema): JsonSchema => {
    const { format: _format, ...rest } = s;
    if (Array.isArray(rest.anyOf)) rest.anyOf = (rest.anyOf as JsonSchema[]).map(strip);
    return rest;
  };
  const str = strip(input);
  if (str.type === undefined && str.anyOf === undefined) str.type = 'string';
  // Transforms that normalise (e.g. the SASL mechanism's case) show as plain strings; name the allowed values.
  if (str.type === 'string' && str.enum === undefined && str.pattern === undefined) {
    const bad = parses('\u0000');
    const issue = bad.success ? undefined : bad.error.issues[0];
    if (issue && issue.code === 'invalid_value' && 'values' in issue) str.enum = issue.values;
  }
  return str;
}

export interface KeyInfo {
  key: string;
  env: string;
  class: KeyClass;
  schema: JsonSchema;
  /** The application's default as the user would type it, or its formula when derived from other keys. */
  appDefault: string;
  doc: string;
}

export function configCatalog(): KeyInfo[] {
  const placeholders = new Proxy({}, { get: (_t, name) => `$${String(name)}` }) as Record<string, string>;
  return Object.entries(keys).map(([key, spec]) => {
    const s = spec as { env: string; schema: z.ZodType; default: string | ((r: Record<string, string>) => string); doc: string };
    const appDefault = typeof s.default === 'function' ? s.default(placeholders) : s.default;
    return { key, env: s.env, class: keyClass(key, s), schema: valueSchema(s), appDefault, doc: s.doc };
  });
}

export function configKeysFile(catalog = configCatalog()) {
  const pick = (c: KeyClass) => Object.fromEntries(catalog.filter((k) => k.class === c).map((k) => [k.key, k.env]));
  return {
    generated: `by ${SYNC_COMMAND} from config/index.ts; do not edit`,
    config: pick('config'),
    secrets: pick('secret'),
    /** Application defaults the templates need when values leave a key unset. */
    defaults: { shutdownTimeoutMs: Number(catalog.find((k) => k.key === 'shutdownTimeoutMs')?.appDefault ?? 30000) },
  };
}

/** The generated sections of values.schema.json, over the hand-written rest. */
export function generatedSchema(base: JsonSchema, catalog: KeyInfo[], topology: ChartTopology): JsonSchema {
  const describe = (k: KeyInfo): JsonSchema => ({ ...k.schema, description: `${k.env}: ${k.doc}` });
  const configProps = Object.fromEntries(catalog.filter((k) => k.class === 'config').map((k) => [k.key, describe(k)]));
  const secretProps = Object.fromEntries(catalog.filter((k) => k.class === 'secret').map((k) => [k.key, { ...describe(k), description: `Secret key ${k.env}: ${k.doc} Empty: not set.` }]));
  const properties = base.properties as Record<string, JsonSchema>;
  const defs = base.$defs as Record<string, JsonSchema>;
  const stageNames = topology.stages.map((s) => s.name);
  return {
    ...base,
    properties: {
      ...properties,
      config: {
        type: 'object', additionalProperties: false, required: ['kafkaBrokers', 'registryUrl'],
        description: 'Non-secret configuration, one ConfigMap entry per key, named after its variable in config/index.ts (generated from it). Keys left out keep the application default. Local-stack keys and the keys the chart sets itself are not accepted.',
        properties: configProps,
      },
      secrets: {
        type: 'object', additionalProperties: false,
        description: 'Credentials. With existingSecret empty the chart makes a Secret from the values below; otherwise it uses that Secret, whose keys must be the variable names (PERSONAHUB_DATABASE_URL, ...).',
        properties: {
          existingSecret: { type: 'string', description: 'Name of a Secret you manage (keys named after the variables); the values below are then ignored.' },
          ...secretProps,
        },
      },
      stages: {
        type: 'object', additionalProperties: false,
        description: `Per-stage overrides of stageDefaults, by stage name (from topology/index.ts: ${stageNames.join(', ')}).`,
        properties: Object.fromEntries(topology.stages.map((s) => [s.name, { $ref: '#/$defs/stage', description: `${s.name}: ${s.doc} (${s.input} -> ${s.outputs.join(', ')})` }])),
      },
    },
    $defs: {
      ...defs,
      configOverrides: {
        type: 'object', additionalProperties: false,
        description: 'Configuration keys set for this stage only (as in config), e.g. llmConcurrency.',
        properties: configProps,
      },
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Grafana dashboard

interface Panel {
  title: string;
  description: string;
  exprs: { expr: string; legend: string }[];
  unit?: string;
}

const SEL = 'namespace=~"$namespace",stage=~"$stage"';
const NS = 'namespace=~"$namespace"';
const RI = '$__rate_interval';

/** The dashboard's rows and panels: every query over a metric of runtime/metrics.ts (the tests check each name). */
export const dashboardRows: { title: string; panels: Panel[] }[] = [
  {
    title: 'Flow',
    panels: [
      { title: 'Events consumed / s', description: 'Input records read, by stage.', unit: 'ops', exprs: [{ expr: `sum by (stage) (rate(personahub_events_consumed_total{${SEL}}[${RI}]))`, legend: '{{stage}}' }] },
      { title: 'Events produced / s', description: 'Records committed to output topics, by stage and topic.', unit: 'ops', exprs: [{ expr: `sum by (stage, topic) (rate(personahub_events_produced_total{${SEL}}[${RI}]))`, legend: '{{stage}} → {{topic}}' }] },
      { title: 'Consumer lag', description: 'Records behind the high watermark, summed per stage (what KEDA scales on).', unit: 'short', exprs: [{ expr: `sum by (stage) (personahub_consumer_lag{${SEL}})`, legend: '{{stage}}' }] },
      { title: 'Lag per partition', description: 'Uneven lag means a hot key or a stuck instance.', unit: 'short', exprs: [{ expr: `max by (stage, partition) (personahub_consumer_lag{${SEL}})`, legend: '{{stage}} p{{partition}}' }] },
      {
        title: 'Processing time (p50, p95)', description: 'Time in process() per attempt.', unit: 's',
        exprs: [
          { expr: `histogram_quantile(0.5, sum by (stage, le) (rate(personahub_processing_duration_seconds_bucket{${SEL}}[${RI}])))`, legend: '{{stage}} p50' },
          { expr: `histogram_quantile(0.95, sum by (stage, le) (rate(personahub_processing_duration_seconds_bucket{${SEL}}[${RI}])))`, legend: '{{stage}} p95' },
        ],
      },
      { title: 'In flight', description: 'Events being processed.', unit: 'short', exprs: [{ expr: `sum by (stage) (personahub_in_flight_events{${SEL}})`, legend: '{{stage}}' }] },
    ],
  },
  {
    title: 'Failures and recovery',
    panels: [
      { title: 'Failed attempts / s', description: 'Processing attempts that threw, by code; transient ones are waited out.', unit: 'ops', exprs: [{ expr: `sum by (stage, code, transient) (rate(personahub_events_failed_total{${SEL}}[${RI}]))`, legend: '{{stage}} {{code}} transient={{transient}}' }] },
      { title: 'Dead letters / s', description: 'Dead letters committed to the DLQ: `personahub dlq inspect`.', unit: 'ops', exprs: [{ expr: `sum by (stage, code) (rate(personahub_events_dead_lettered_total{${SEL}}[${RI}]))`, legend: '{{stage}} {{code}}' }] },
      { title: 'Permanent error ratio', description: 'Permanent failures per consumed event (alert above 5%).', unit: 'percentunit', exprs: [{ expr: `sum by (stage) (rate(personahub_events_failed_total{${SEL},transient="false"}[${RI}])) / sum by (stage) (rate(personahub_events_consumed_total{${SEL}}[${RI}]))`, legend: '{{stage}}' }] },
      { title: 'Retries / s', description: 'Transient failures waited out, by step:code.', unit: 'ops', exprs: [{ expr: `sum by (stage, reason) (rate(personahub_retries_total{${SEL}}[${RI}]))`, legend: '{{stage}} {{reason}}' }] },
      { title: 'Circuit breakers', description: '0 closed, 1 probing, 2 open (stage paused).', unit: 'short', exprs: [{ expr: `max by (stage, dependency) (personahub_breaker_state{${SEL}})`, legend: '{{stage}} {{dependency}}' }] },
      { title: 'Paused partitions', description: 'Assigned partitions whose fetching is paused while a dependency is down.', unit: 'short', exprs: [{ expr: `sum by (stage) (personahub_paused_partitions{${SEL}})`, legend: '{{stage}}' }] },
      { title: 'Consumer restarts (15 min)', description: 'Consumer crashes followed by a restart (by kafkajs or by the runner).', unit: 'short', exprs: [{ expr: `sum by (stage) (increase(personahub_consumer_restarts_total{${SEL}}[15m]))`, legend: '{{stage}}' }] },
      {
        title: 'Skipped and replayed inputs / s', description: 'Inputs already processed under another delivery; dead letters re-driven.', unit: 'ops',
        exprs: [
          { expr: `sum by (stage, reason) (rate(personahub_inputs_skipped_total{${SEL}}[${RI}]))`, legend: 'skipped {{stage}} {{reason}}' },
          { expr: `sum by (stage) (rate(personahub_dlq_replayed_total{${SEL}}[${RI}]))`, legend: 'replayed {{stage}}' },
        ],
      },
    ],
  },
  {
    title: 'LLM',
    panels: [
      { title: 'LLM calls / s', description: 'LLM and embedding calls by status (ok, error, cache_hit).', unit: 'ops', exprs: [{ expr: `sum by (kind, model, status) (rate(personahub_llm_requests_total{${NS}}[${RI}]))`, legend: '{{kind}} {{model}} {{status}}' }] },
      { title: 'LLM error ratio', description: 'Failed calls per call (alert above 20%).', unit: 'percentunit', exprs: [{ expr: `sum by (model) (rate(personahub_llm_requests_total{${NS},status="error"}[${RI}])) / sum by (model) (rate(personahub_llm_requests_total{${NS}}[${RI}]))`, legend: '{{model}}' }] },
      { title: 'LLM latency (p95)', description: 'Call latency, cache hits excluded.', unit: 's', exprs: [{ expr: `histogram_quantile(0.95, sum by (kind, model, le) (rate(personahub_llm_request_duration_seconds_bucket{${NS}}[${RI}])))`, legend: '{{kind}} {{model}}' }] },
      { title: 'Tokens / s', description: 'Prompt and completion tokens by model.', unit: 'short', exprs: [{ expr: `sum by (model, direction) (rate(personahub_llm_tokens_total{${NS}}[${RI}]))`, legend: '{{model}} {{direction}}' }] },
    ],
  },
  {
    title: 'Quality and store',
    panels: [
      { title: 'Validation rejections / s', description: 'Personas rejected by validation, by reason.', unit: 'ops', exprs: [{ expr: `sum by (reason) (rate(personahub_validation_rejections_total{${NS}}[${RI}]))`, legend: '{{reason}}' }] },
      { title: 'Store write latency (p95)', description: 'Store upsert latency (index stage).', unit: 's', exprs: [{ expr: `histogram_quantile(0.95, sum by (le) (rate(personahub_store_write_duration_seconds_bucket{${NS}}[${RI}])))`, legend: 'p95' }] },
    ],
  },
  {
    title: 'Processes',
    panels: [
      { title: 'Resident memory', description: 'RSS per pod.', unit: 'bytes', exprs: [{ expr: `max by (pod) (personahub_process_resident_memory_bytes{${NS}})`, legend: '{{pod}}' }] },
      { title: 'CPU', description: 'CPU seconds per second, per pod.', unit: 'short', exprs: [{ expr: `sum by (pod) (rate(personahub_process_cpu_seconds_total{${NS}}[${RI}]))`, legend: '{{pod}}' }] },
      { title: 'Event loop lag (p99)', description: 'Node event loop delay per pod.', unit: 's', exprs: [{ expr: `max by (pod) (personahub_nodejs_eventloop_lag_p99_seconds{${NS}})`, legend: '{{pod}}' }] },
      { title: 'Heap used', description: 'V8 heap used per pod.', unit: 'bytes', exprs: [{ expr: `max by (pod) (personahub_nodejs_heap_size_used_bytes{${NS}})`, legend: '{{pod}}' }] },
    ],
  },
];

export function dashboard(): JsonSchema {
  const panels: JsonSchema[] = [];
  let id = 1;
  let y = 0;
  for (const row of dashboardRows) {
    panels.push({ id: id++, type: 'row', title: row.title, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, panels: [] });
    y += 1;
    row.panels.forEach((p, i) => {
      panels.push({
        id: id++, type: 'timeseries', title: p.title, description: p.description,
        datasource: { type: 'prometheus', uid: '${datasource}' },
        gridPos: { h: 8, w: 12, x: (i % 2) * 12, y: y + Math.floor(i / 2) * 8 },
        fieldConfig: { defaults: { unit: p.unit ?? 'short' }, overrides: [] },
        options: { legend: { displayMode: 'table', placement: 'bottom', showLegend: true }, tooltip: { mode: 'multi', sort: 'desc' } },
        targets: p.exprs.map((e, j) => ({ refId: String.fromCharCode(65 + j), expr: e.expr, legendFormat: e.legend, datasource: { type: 'prometheus', uid: '${datasource}' } })),
      });
    });
    y += Math.ceil(row.panels.length / 2) * 8;
  }
  return {
    title: 'PersonaHub Stream',
    uid: 'personahub-stream',
    description: `Generated by ${SYNC_COMMAND}; do not edit by hand.`,
    tags: ['personahub', 'kafka'],
    editable: true,
    schemaVersion: 39,
    version: 1,
    time: { from: 'now-6h', to: 'now' },
    refresh: '30s',
    templating: {
      list: [
        { name: 'datasource', label: 'Data source', type: 'datasource', query: 'prometheus', current: {}, hide: 0 },
        { name: 'namespace', label: 'Namespace', type: 'query', datasource: { type: 'prometheus', uid: '${datasource}' }, query: { query: 'label_values(personahub_events_consumed_total, namespace)', refId: 'namespace' }, refresh: 2, includeAll: true, multi: true, allValue: '.*', current: {} },
        { name: 'stage', label: 'Stage', type: 'query', datasource: { type: 'prometheus', uid: '${datasource}' }, query: { query: 'label_values(personahub_events_consumed_total{namespace=~"$namespace"}, stage)', refId: 'stage' }, refresh: 2, includeAll: true, multi: true, allValue: '.*', current: {} },
      ],
    },
    annotations: { list: [] },
    panels,
  };
}

/** Every PromQL expression of a dashboard (panels and template variables). */
export function dashboardExprs(d: JsonSchema): string[] {
  const out: string[] = [];
  for (const p of d.panels as { targets?: { expr: string }[] }[]) for (const t of p.targets ?? []) out.push(t.expr);
  for (const v of (d.templating as { list: { query?: unknown }[] }).list) {
    const q = v.query as { query?: string } | string | undefined;
    if (typeof q === 'object' && q?.query) out.push(q.query.replace(/^label_values\((.*), \w+\)$/, '$1'));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// README values table

/** Follows a dotted values path through the schema's properties and $refs. */
export function schemaAt(schema: JsonSchema, path: string[]): JsonSchema | undefined {
  const deref = (s: JsonSchema | undefined): JsonSchema | undefined => {
    let cur = s;
    for (let i = 0; cur && typeof cur.$ref === 'string' && i < 10; i++) {
      const target = (cur.$ref as string).replace(/^#\//, '').split('/').reduce<unknown>((o, k) => (o as Record<string, unknown>)?.[k], schema) as JsonSchema | undefined;
      cur = target ? { ...target, ...(cur.description ? { description: cur.description } : {}), $ref: undefined } : undefined;
      if (cur) delete cur.$ref;
    }
    return cur;
  };
  let cur = deref(schema);
  for (const part of path) {
    const props = cur?.properties as Record<string, JsonSchema> | undefined;
    cur = deref(props?.[part]);
    if (!cur) return undefined;
  }
  return cur;
}

function typeOf(s: JsonSchema | undefined): string {
  if (!s) return '';
  if (Array.isArray(s.enum)) return (s.enum as unknown[]).map((v) => JSON.stringify(v)).join(', ');
  if (Array.isArray(s.anyOf)) return (s.anyOf as JsonSchema[]).map(typeOf).filter(Boolean).join(' or ');
  if (s.const !== undefined) return JSON.stringify(s.const);
  const bounds = [s.minimum !== undefined ? `≥ ${s.minimum}` : '', s.maximum !== undefined ? `≤ ${s.maximum}` : ''].filter(Boolean).join(', ');
  return `${String(s.type ?? 'any')}${bounds ? ` (${bounds})` : ''}`;
}

const cell = (s: string) => s.replaceAll('|', '\\|').replaceAll('\n', ' ');
const code = (v: unknown) => `\`${JSON.stringify(v)}\``;

/** One row per leaf of values.yaml, then every schema key values.yaml leaves unset (config, secrets, stages). */
export function valuesTable(valuesYaml: string, schema: JsonSchema, catalog: KeyInfo[], topology: ChartTopology): string {
  const values = parseYaml(valuesYaml) as Record<string, unknown>;
  const rows: string[] = ['| Value | Type | Default | Description |', '|---|---|---|---|'];
  const missing: string[] = [];
  const walk = (obj: Record<string, unknown>, path: string[]) => {
    for (const [k, v] of Object.entries(obj)) {
      const p = [...path, k];
      const s = schemaAt(schema, p);
      const isLeaf = v === null || typeof v !== 'object' || Array.isArray(v) || Object.keys(v).length === 0 || s?.properties === undefined;
      if (!s?.description) missing.push(p.join('.'));
      if (isLeaf) rows.push(`| \`${p.join('.')}\` | ${cell(typeOf(s))} | ${cell(code(v))} | ${cell(String(s?.description ?? ''))} |`);
      else {
        if (s?.description && path.length === 0) rows.push(`| **\`${p.join('.')}\`** | object | | ${cell(String(s.description))} |`);
        walk(v as Record<string, unknown>, p);
      }
    }
  };
  walk(values, []);
  if (missing.length > 0) throw new Error(`values.yaml has values with no description in values.schema.json: ${missing.join(', ')}`);
  const config = (values.config ?? {}) as Record<string, unknown>;
  const secrets = (values.secrets ?? {}) as Record<string, unknown>;
  const unset = catalog.filter((k) => (k.class === 'config' && !(k.key in config)) || (k.class === 'secret' && !(k.key in secrets)));
  const extra = [
    '', '### Configuration keys not set in values.yaml', '',
    'Each may be set under `config` (or `secrets` for credentials, or `stages.<name>.config` for one stage); unset, the application default applies.', '',
    '| Value | Variable | Type | Application default | Description |', '|---|---|---|---|---|',
    ...unset.map((k) => `| \`${k.class === 'secret' ? 'secrets' : 'config'}.${k.key}\` | \`${k.env}\` | ${cell(typeOf(k.schema))} | ${cell(code(k.appDefault))} | ${cell(k.doc)} |`),
    '', '### Keys the chart sets itself', '',
    '| Variable | Set to |', '|---|---|',
    ...catalog.filter((k) => k.class === 'chart').map((k) => `| \`${k.env}\` | ${cell(CHART_MANAGED[k.key] ?? '')} |`),
    '', `Local-stack keys (${catalog.filter((k) => k.class === 'localStack').map((k) => `\`${k.env}\``).join(', ')}) do not apply on Kubernetes.`,
    '', '### Stages', '',
    'From topology/index.ts (files/topology.json). `stages.<name>` takes any key of `stageDefaults`.', '',
    '| Stage | Input → outputs | Consumer group | What it does |', '|---|---|---|---|',
    ...topology.stages.map((s) => `| \`${s.name}\` | ${s.input} → ${s.outputs.join(', ')} | \`<topicPrefix>.${s.name}\` | ${cell(s.doc)} |`),
  ];
  return [...rows, ...extra].join('\n');
}

const START = '<!-- values:start (generated by scripts/chart-sync.ts from values.yaml and values.schema.json; do not edit) -->';
const END = '<!-- values:end -->';

export function readmeWithTable(readme: string, table: string): string {
  const a = readme.indexOf(START);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README.md needs the markers ${START} and ${END}`);
  return `${readme.slice(0, a + START.length)}\n${table}\n${readme.slice(b)}`;
}

// ---------------------------------------------------------------------------------------------------
// Sync

export interface SyncOptions {
  chartDir?: string;
  topology?: TopologyInput;
  check?: boolean;
}

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

/** Computes every generated file; writes them, or (check) only reports which differ. Returns the stale ones. */
export function syncChart(o: SyncOptions = {}): string[] {
  const dir = o.chartDir ?? CHART_DIR;
  const topology = chartTopology(o.topology);
  const catalog = configCatalog();
  const schemaPath = join(dir, 'values.schema.json');
  const schema = generatedSchema(JSON.parse(readFileSync(schemaPath, 'utf8')) as JsonSchema, catalog, topology);
  const readmePath = join(dir, 'README.md');
  const outputs: [string, string][] = [
    [join(dir, 'files', 'topology.json'), json(topology)],
    [join(dir, 'files', 'config-keys.json'), json(configKeysFile(catalog))],
    [join(dir, 'files', 'dashboard.json'), json(dashboard())],
    [schemaPath, json(schema)],
    [readmePath, readmeWithTable(readFileSync(readmePath, 'utf8'), valuesTable(readFileSync(join(dir, 'values.yaml'), 'utf8'), schema, catalog, topology))],
  ];
  const stale = outputs.filter(([file, text]) => !existsSync(file) || readFileSync(file, 'utf8') !== text).map(([file]) => file);
  if (!o.check) for (const [file, text] of outputs) if (stale.includes(file)) writeFileSync(file, text);
  return stale;
}

function main(argv: string[]): void {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(`Usage: ${SYNC_COMMAND} [--check] [--chart DIR] [--topology FILE]

Regenerates the chart's generated files from the code: files/topology.json, files/config-keys.json,
files/dashboard.json, the config/secrets/stages sections of values.schema.json and the values table of
README.md. --check writes nothing and exits 1 naming the files that are not current.
--chart DIR works on another copy of the chart; --topology FILE reads {events, stageTable} from JSON
instead of topology/index.ts (tests use both to add a stage without touching the repo).`);
    return;
  }
  const arg = (name: string) => {
    const i = argv.indexOf(name);
    if (i < 0) return undefined;
    const v = argv[i + 1];
    if (!v || v.startsWith('--')) throw new Error(`${name} needs a value`);
    return v;
  };
  const known = new Set(['--check', '--chart', '--topology']);
  const unknown = argv.filter((a, i) => a.startsWith('--') && !known.has(a) && !(i > 0 && ['--chart', '--topology'].includes(argv[i - 1] ?? '')));
  if (unknown.length > 0) throw new Error(`unknown option ${unknown.join(', ')} (see --help)`);
  const chartDir = arg('--chart');
  const topologyFile = arg('--topology');
  const check = argv.includes('--check');
  const stale = syncChart({ chartDir: chartDir && resolve(chartDir), topology: topologyFile ? JSON.parse(readFileSync(topologyFile, 'utf8')) as TopologyInput : undefined, check });
  const names = stale.map((f) => relative(process.cwd(), f));
  if (check && stale.length > 0) {
    console.error(`chart-sync: not current: ${names.join(', ')}\nrun: ${SYNC_COMMAND}`);
    process.exitCode = 1;
  } else {
    console.log(stale.length === 0 ? 'chart-sync: every generated file is current' : `chart-sync: ${check ? 'stale' : 'wrote'} ${names.join(', ')}`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  try {
    main(process.argv.slice(2));
  } catch (error) {
    console.error(`chart-sync: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  }
}

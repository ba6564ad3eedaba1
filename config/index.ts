import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../core/errors.ts';

/**
 * The one place that reads the environment. Every key is declared once here with its
 * environment variable, type, default and a line of documentation; `personahub config docs`
 * renders the README's configuration table from the same list, so the two cannot drift.
 */
interface KeySpec {
  env: string;
  schema: z.ZodType;
  /** Default as the user would type it in the environment; functions derive it from other keys. */
  default: string | ((raw: Record<string, string>) => string);
  doc: string;
}

/**
 * Numbers are parsed from plain decimal digits only: `Number()`, which z.coerce uses, reads "" as 0,
 * "1e3" as 1000 and "0x10" as 16, so a blank or mistyped value would silently become a different setting.
 * One message per key for every way a value can fail, saying the whole allowed form and range.
 */
function wholeNumber(min: number, max?: number) {
  const message = `expected a whole number ${max === undefined ? `of at least ${min}` : `from ${min} to ${max}`} written in decimal digits`;
  return z.string().regex(/^\d+$/, message).transform(Number).refine((n) => n >= min && (max === undefined || n <= max), message);
}

/** As wholeNumber, with an optional fraction: "0.97", ".5", "1"; no sign, exponent or blank. */
function decimal(min: number, max: number) {
  const message = `expected a number from ${min} to ${max} written in decimal digits, like 0.97`;
  return z.string().regex(/^\d*\.?\d+$/, message).transform(Number).refine((n) => n >= min && n <= max, message);
}

/** z.url() alone accepts any scheme `new URL` parses, even ftp:// or "localhost:8080/v1" (scheme "localhost:"); the clients here speak HTTP only. */
function httpUrl(allowed = 'an http:// or https:// URL') {
  return z.url({ protocol: /^https?$/, error: `expected ${allowed}` });
}

const port = wholeNumber(1, 65535);
/** setTimeout's limit: a longer delay fires after 1 ms instead, with only a warning. */
const MAX_TIMER_MS = 2_147_483_647;
/** PGlite keeps an empty dataDir in memory without a word, so a blank value would lose the store at exit; memory:// asks for that on purpose. */
const pgliteDir = z.string().min(1, 'expected a directory, or memory:// to keep the store in memory');
/** `stack up` starts the model server from the repo root, where a relative path names another file than where it was typed. */
const modelPath = z.string().refine((v) => v === '' || isAbsolute(v), 'expected an absolute path, or empty for the bundled model');
const bool = z.enum(['true', 'false']).transform((v) => v === 'true');
const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const keys = {
  home: { env: 'PERSONAHUB_HOME', schema: z.string().min(1), default: '/var/tmp/personahub', doc: 'State directory of the local stack (data, logs, pid files). Must be readable by the unprivileged `personahub` user that runs PostgreSQL, so not under a mode-700 home.' },
  cacheDir: { env: 'PERSONAHUB_CACHE_DIR', schema: z.string().min(1), default: join(homedir(), '.cache', 'personahub'), doc: 'Download cache outside the repo: Node, Maven jars, Apicurio, wheels.' },
  modelsDir: { env: 'PERSONAHUB_MODELS_DIR', schema: z.string().min(1), default: (r) => join(r.PERSONAHUB_CACHE_DIR ?? join(homedir(), '.cache', 'personahub'), 'models'), doc: 'Where `personahub models fetch` puts the local GGUF models.' },
  logLevel: { env: 'PERSONAHUB_LOG_LEVEL', schema: z.enum(logLevels), default: 'info', doc: `Log level: ${logLevels.join(', ')}.` },
  topicPrefix: { env: 'PERSONAHUB_TOPIC_PREFIX', schema: z.string().regex(/^[a-zA-Z0-9._-]+$/), default: 'personahub', doc: 'First part of every topic name (`<prefix>.<event>.v1`) and consumer group; lets several pipelines share a cluster.' },
  kafkaBrokers: { env: 'PERSONAHUB_KAFKA_BROKERS', schema: z.string().regex(/^[^,\s]+:\d+(,[^,\s]+:\d+)*$/, 'comma-separated host:port list'), default: (r) => `127.0.0.1:${r.PERSONAHUB_KAFKA_PORT ?? '19092'}`, doc: 'Bootstrap brokers, comma-separated host:port. Defaults to the local stack.' },
  kafkaPort: { env: 'PERSONAHUB_KAFKA_PORT', schema: port, default: '19092', doc: 'Local stack: broker listener port (loopback).' },
  kafkaControllerPort: { env: 'PERSONAHUB_KAFKA_CONTROLLER_PORT', schema: port, default: '19093', doc: 'Local stack: KRaft controller port (loopback).' },
  partitions: { env: 'PERSONAHUB_PARTITIONS', schema: wholeNumber(1, 1024), default: '3', doc: 'Partitions per pipeline topic when `topics init` creates them (the upper bound on instances per stage).' },
  registryUrl: { env: 'PERSONAHUB_REGISTRY_URL', schema: httpUrl(), default: (r) => `http://127.0.0.1:${r.PERSONAHUB_REGISTRY_PORT ?? '18080'}/apis/ccompat/v7`, doc: 'Confluent-compatible schema registry API. Defaults to the local Apicurio.' },
  registryPort: { env: 'PERSONAHUB_REGISTRY_PORT', schema: port, default: '18080', doc: 'Local stack: Apicurio HTTP port.' },
  registryManagementPort: { env: 'PERSONAHUB_REGISTRY_MANAGEMENT_PORT', schema: port, default: '18081', doc: 'Local stack: Apicurio management (health) port.' },
  postgresPort: { env: 'PERSONAHUB_POSTGRES_PORT', schema: port, default: '15432', doc: 'Local stack: PostgreSQL port (loopback).' },
  postgresUser: { env: 'PERSONAHUB_POSTGRES_USER', schema: z.string().min(1), default: 'personahub', doc: 'Local stack: PostgreSQL role.' },
  postgresPassword: { env: 'PERSONAHUB_POSTGRES_PASSWORD', schema: z.string().min(1), default: 'personahub', doc: 'Local stack: PostgreSQL password.' },
  postgresDatabase: { env: 'PERSONAHUB_POSTGRES_DATABASE', schema: z.string().min(1), default: 'personahub', doc: 'Local stack: database of the pipeline (the registry uses `apicurio`).' },
  store: { env: 'PERSONAHUB_STORE', schema: z.enum(['postgres', 'pglite']), default: 'postgres', doc: 'Persona store: `postgres` (server with pgvector; the local stack runs one) or `pglite` (embedded, single process only: use with `personahub run`).' },
  databaseUrl: { env: 'PERSONAHUB_DATABASE_URL', schema: z.string().regex(/^postgres(ql)?:\/\//, 'expected a postgres:// or postgresql:// URL'), default: (r) => `postgres://${r.PERSONAHUB_POSTGRES_USER ?? 'personahub'}:${r.PERSONAHUB_POSTGRES_PASSWORD ?? 'personahub'}@127.0.0.1:${r.PERSONAHUB_POSTGRES_PORT ?? '15432'}/${r.PERSONAHUB_POSTGRES_DATABASE ?? 'personahub'}`, doc: 'PostgreSQL URL for `store=postgres`. Defaults to the local stack.' },
  pgliteDir: { env: 'PERSONAHUB_PGLITE_DIR', schema: pgliteDir, default: (r) => join(r.PERSONAHUB_HOME ?? '/var/tmp/personahub', 'pglite'), doc: 'PGlite data directory for `store=pglite`; `memory://` keeps it in memory.' },
  mode: { env: 'PERSONAHUB_MODE', schema: z.enum(['llm', 'sampler']), default: 'llm', doc: '`llm`: personas written by the LLM, grounded on sampled attributes. `sampler`: no LLM, personas composed from sampled attributes and the seed\'s salient terms (labelled as such in every persona).' },
  llmBaseUrl: { env: 'PERSONAHUB_LLM_BASE_URL', schema: z.union([z.literal(''), httpUrl('an http:// or https:// URL, or empty for the local model server')]), default: '', doc: 'OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server). Empty: the local model server that `stack up` starts.' },
  llmApiKey: { env: 'PERSONAHUB_LLM_API_KEY', schema: z.string(), default: 'local', doc: 'API key for the endpoint. Never logged.' },
  llmModel: { env: 'PERSONAHUB_LLM_MODEL', schema: z.string().min(1), default: 'gemma-3-270m', doc: 'Chat model name sent to the endpoint.' },
  embeddingModel: { env: 'PERSONAHUB_EMBEDDING_MODEL', schema: z.string().min(1), default: 'all-minilm-l6-v2', doc: 'Embedding model name sent to the endpoint.' },
  embedder: { env: 'PERSONAHUB_EMBEDDER', schema: z.enum(['llm', 'hash']), default: 'llm', doc: '`llm`: embeddings from the endpoint. `hash`: feature-hashing vectors computed in-process (no model; for bulk sampler runs and tests; recorded as model `hash-bow-<dimensions>`).' },
  embeddingDimensions: { env: 'PERSONAHUB_EMBEDDING_DIMENSIONS', schema: wholeNumber(1, 4096), default: '384', doc: 'Vector size the store is created with; a different size from the embedder stops the indexer.' },
  llmTimeoutMs: { env: 'PERSONAHUB_LLM_TIMEOUT_MS', schema: wholeNumber(1, MAX_TIMER_MS), default: '120000', doc: 'Per-request timeout for LLM and embedding calls.' },
  llmMaxRetries: { env: 'PERSONAHUB_LLM_MAX_RETRIES', schema: wholeNumber(0, 20), default: '4', doc: 'Retries of transient LLM failures (429, 5xx, timeouts), with jittered backoff and Retry-After honoured.' },
  llmConcurrency: { env: 'PERSONAHUB_LLM_CONCURRENCY', schema: wholeNumber(1, 1024), default: '4', doc: 'Maximum LLM requests in flight per process.' },
  llmTokensPerMinute: { env: 'PERSONAHUB_LLM_TOKENS_PER_MINUTE', schema: wholeNumber(0), default: '0', doc: 'Token budget per minute per process (0 = unlimited).' },
  llmCacheDir: { env: 'PERSONAHUB_LLM_CACHE_DIR', schema: z.string(), default: (r) => join(r.PERSONAHUB_HOME ?? '/var/tmp/personahub', 'llm-cache'), doc: 'Content-addressed LLM response cache, so a re-delivered event costs no second call. Empty disables the disk cache.' },
  llmPort: { env: 'PERSONAHUB_LLM_PORT', schema: port, default: '18434', doc: 'Local model server port (loopback).' },
  llmQueue: { env: 'PERSONAHUB_LLM_QUEUE', schema: wholeNumber(1, 10000), default: '64', doc: 'Local model server: requests waiting beyond this get 429 with Retry-After.' },
  llmContextSize: { env: 'PERSONAHUB_LLM_CONTEXT_SIZE', schema: wholeNumber(1, 131072), default: '4096', doc: 'Local model server: context size of the text model.' },
  llmModelPath: { env: 'PERSONAHUB_LLM_MODEL_PATH', schema: modelPath, default: '', doc: 'Local model server: absolute path of a GGUF to serve instead of the bundled Gemma 3 270M (e.g. a larger instruct model).' },
  personasPerSeed: { env: 'PERSONAHUB_PERSONAS_PER_SEED', schema: wholeNumber(1, 16), default: '1', doc: 'Personas drafted from each seed (Text-to-Persona).' },
  maxSeedChars: { env: 'PERSONAHUB_MAX_SEED_CHARS', schema: wholeNumber(1, 100000), default: '4000', doc: 'Seed lines longer than this are rejected at ingest with a reason.' },
  nearDuplicateCosine: { env: 'PERSONAHUB_NEAR_DUPLICATE_COSINE', schema: decimal(0, 1), default: '0.97', doc: 'Validate: a persona whose embedding has at least this cosine similarity to an indexed persona is rejected as a near-duplicate (1 disables the check).' },
  maxRetries: { env: 'PERSONAHUB_MAX_RETRIES', schema: wholeNumber(0, 20), default: '3', doc: 'Runner: attempts at a transient processing error before the event goes to the DLQ.' },
  partitionConcurrency: { env: 'PERSONAHUB_PARTITION_CONCURRENCY', schema: wholeNumber(1, 256), default: '3', doc: 'Runner: input partitions of one stage processed at the same time, each committing through its own transactional producer.' },
  maxInFlight: { env: 'PERSONAHUB_MAX_IN_FLIGHT', schema: wholeNumber(1, 1024), default: '4', doc: 'Runner: events of one batch processed concurrently.' },
  sessionTimeoutMs: { env: 'PERSONAHUB_SESSION_TIMEOUT_MS', schema: wholeNumber(6000, 300000), default: '30000', doc: 'Consumer group session timeout: how long a crashed instance holds its partitions before a rebalance hands them over.' },
  metricsPort: { env: 'PERSONAHUB_METRICS_PORT', schema: wholeNumber(0, 65535), default: '0', doc: 'Port of the processor\'s /metrics and /health endpoint; 0 disables it.' },
  startLocalLlm: { env: 'PERSONAHUB_START_LOCAL_LLM', schema: bool, default: 'true', doc: '`stack up` also starts the local model server when no endpoint is configured and mode is `llm`.' },
} as const satisfies Record<string, KeySpec>;

type Keys = typeof keys;
export type Config = Readonly<{ [K in keyof Keys]: z.output<Keys[K]['schema']> }>;

/**
 * Validates the whole environment at once (with `overrides`, e.g. CLI flags, on top) and reports every bad key, each with what it allows,
 * so a misconfigured deployment fails at start with one readable error instead of later.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env, overrides: Record<string, string | undefined> = {}): Config {
  const raw: Record<string, string> = {};
  for (const [name, value] of [...Object.entries(env), ...Object.entries(overrides)]) if (value !== undefined) raw[name] = value;
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, spec] of Object.entries(keys) as [string, KeySpec][]) {
    const value = raw[spec.env] ?? (typeof spec.default === 'function' ? spec.default(raw) : spec.default);
    const parsed = spec.schema.safeParse(value);
    if (parsed.success) out[key] = parsed.data;
    else problems.push(`${spec.env}=${JSON.stringify(value)}: ${describeIssue(parsed.error, spec)}`);
  }
  const unknown = Object.keys(raw).filter((n) => n.startsWith('PERSONAHUB_') && !envNames.has(n));
  for (const name of unknown) problems.push(`${name}: unknown key (known keys: see \`personahub config docs\`)`);
  if (problems.length > 0) throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  return Object.freeze(out) as Config;
}

const envNames = new Set<string>(Object.values(keys).map((k) => k.env));

function describeIssue(error: z.ZodError, spec: KeySpec): string {
  const issue = error.issues[0];
  if (issue?.code === 'invalid_value' && 'values' in issue) return `allowed values are ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  return `${issue?.message ?? 'invalid'} (${spec.doc})`;
}

/** Markdown table of every key, for the README (`personahub config docs`). */
export function configDocs(): string {
  const rows = Object.values(keys).map((k: KeySpec) => {
    // A derived default is shown as its formula: evaluated over placeholders named after the keys it reads.
    const placeholders = new Proxy({}, { get: (_target, name) => `$${String(name)}` }) as Record<string, string>;
    const value = typeof k.default === 'function' ? k.default(placeholders) : k.default;
    const def = `\`${value === '' ? '""' : value.replace(homedir(), '~')}\``;
    return `| \`${k.env}\` | ${def} | ${k.doc.replaceAll('|', '\\|')} |`;
  });
  return ['| Variable | Default | Meaning |', '|---|---|---|', ...rows].join('\n');
}

import { homedir } from 'node:os';
import { join } from 'node:path';
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

const port = z.coerce.number().int().min(1).max(65535);
const positiveInt = z.coerce.number().int().min(1);
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
  partitions: { env: 'PERSONAHUB_PARTITIONS', schema: positiveInt.max(1024), default: '3', doc: 'Partitions per pipeline topic when `topics init` creates them (the upper bound on instances per stage).' },
  registryUrl: { env: 'PERSONAHUB_REGISTRY_URL', schema: z.url(), default: (r) => `http://127.0.0.1:${r.PERSONAHUB_REGISTRY_PORT ?? '18080'}/apis/ccompat/v7`, doc: 'Confluent-compatible schema registry API. Defaults to the local Apicurio.' },
  registryPort: { env: 'PERSONAHUB_REGISTRY_PORT', schema: port, default: '18080', doc: 'Local stack: Apicurio HTTP port.' },
  registryManagementPort: { env: 'PERSONAHUB_REGISTRY_MANAGEMENT_PORT', schema: port, default: '18081', doc: 'Local stack: Apicurio management (health) port.' },
  postgresPort: { env: 'PERSONAHUB_POSTGRES_PORT', schema: port, default: '15432', doc: 'Local stack: PostgreSQL port (loopback).' },
  postgresUser: { env: 'PERSONAHUB_POSTGRES_USER', schema: z.string().min(1), default: 'personahub', doc: 'Local stack: PostgreSQL role.' },
  postgresPassword: { env: 'PERSONAHUB_POSTGRES_PASSWORD', schema: z.string().min(1), default: 'personahub', doc: 'Local stack: PostgreSQL password.' },
  postgresDatabase: { env: 'PERSONAHUB_POSTGRES_DATABASE', schema: z.string().min(1), default: 'personahub', doc: 'Local stack: database of the pipeline (the registry uses `apicurio`).' },
  store: { env: 'PERSONAHUB_STORE', schema: z.enum(['postgres', 'pglite']), default: 'postgres', doc: 'Persona store: `postgres` (server with pgvector; the local stack runs one) or `pglite` (embedded, single process only: use with `personahub run`).' },
  databaseUrl: { env: 'PERSONAHUB_DATABASE_URL', schema: z.string().regex(/^postgres(ql)?:\/\//, 'a postgres:// URL'), default: (r) => `postgres://${r.PERSONAHUB_POSTGRES_USER ?? 'personahub'}:${r.PERSONAHUB_POSTGRES_PASSWORD ?? 'personahub'}@127.0.0.1:${r.PERSONAHUB_POSTGRES_PORT ?? '15432'}/${r.PERSONAHUB_POSTGRES_DATABASE ?? 'personahub'}`, doc: 'PostgreSQL URL for `store=postgres`. Defaults to the local stack.' },
  pgliteDir: { env: 'PERSONAHUB_PGLITE_DIR', schema: z.string(), default: (r) => join(r.PERSONAHUB_HOME ?? '/var/tmp/personahub', 'pglite'), doc: 'PGlite data directory for `store=pglite`; `memory://` keeps it in memory.' },
  mode: { env: 'PERSONAHUB_MODE', schema: z.enum(['llm', 'sampler']), default: 'llm', doc: '`llm`: personas written by the LLM, grounded on sampled attributes. `sampler`: no LLM, personas composed from sampled attributes and the seed\'s salient terms (labelled as such in every persona).' },
  llmBaseUrl: { env: 'PERSONAHUB_LLM_BASE_URL', schema: z.union([z.literal(''), z.url()]), default: '', doc: 'OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server). Empty: the local model server that `stack up` starts.' },
  llmApiKey: { env: 'PERSONAHUB_LLM_API_KEY', schema: z.string(), default: 'local', doc: 'API key for the endpoint. Never logged.' },
  llmModel: { env: 'PERSONAHUB_LLM_MODEL', schema: z.string().min(1), default: 'gemma-3-270m', doc: 'Chat model name sent to the endpoint.' },
  embeddingModel: { env: 'PERSONAHUB_EMBEDDING_MODEL', schema: z.string().min(1), default: 'all-minilm-l6-v2', doc: 'Embedding model name sent to the endpoint.' },
  embedder: { env: 'PERSONAHUB_EMBEDDER', schema: z.enum(['llm', 'hash']), default: 'llm', doc: '`llm`: embeddings from the endpoint. `hash`: feature-hashing vectors computed in-process (no model; for bulk sampler runs and tests; recorded as model `hash-bow-<dimensions>`).' },
  embeddingDimensions: { env: 'PERSONAHUB_EMBEDDING_DIMENSIONS', schema: positiveInt.max(4096), default: '384', doc: 'Vector size the store is created with; a different size from the embedder stops the indexer.' },
  llmTimeoutMs: { env: 'PERSONAHUB_LLM_TIMEOUT_MS', schema: positiveInt, default: '120000', doc: 'Per-request timeout for LLM and embedding calls.' },
  llmMaxRetries: { env: 'PERSONAHUB_LLM_MAX_RETRIES', schema: z.coerce.number().int().min(0).max(20), default: '4', doc: 'Retries of transient LLM failures (429, 5xx, timeouts), with jittered backoff and Retry-After honoured.' },
  llmConcurrency: { env: 'PERSONAHUB_LLM_CONCURRENCY', schema: positiveInt.max(1024), default: '4', doc: 'Maximum LLM requests in flight per process.' },
  llmTokensPerMinute: { env: 'PERSONAHUB_LLM_TOKENS_PER_MINUTE', schema: z.coerce.number().int().min(0), default: '0', doc: 'Token budget per minute per process (0 = unlimited).' },
  llmCacheDir: { env: 'PERSONAHUB_LLM_CACHE_DIR', schema: z.string(), default: (r) => join(r.PERSONAHUB_HOME ?? '/var/tmp/personahub', 'llm-cache'), doc: 'Content-addressed LLM response cache, so a re-delivered event costs no second call. Empty disables the disk cache.' },
  llmPort: { env: 'PERSONAHUB_LLM_PORT', schema: port, default: '18434', doc: 'Local model server port (loopback).' },
  llmQueue: { env: 'PERSONAHUB_LLM_QUEUE', schema: positiveInt.max(10000), default: '64', doc: 'Local model server: requests waiting beyond this get 429 with Retry-After.' },
  llmContextSize: { env: 'PERSONAHUB_LLM_CONTEXT_SIZE', schema: positiveInt.max(131072), default: '4096', doc: 'Local model server: context size of the text model.' },
  llmModelPath: { env: 'PERSONAHUB_LLM_MODEL_PATH', schema: z.string(), default: '', doc: 'Local model server: a GGUF to serve instead of the bundled Gemma 3 270M (e.g. a larger instruct model).' },
  personasPerSeed: { env: 'PERSONAHUB_PERSONAS_PER_SEED', schema: positiveInt.max(16), default: '1', doc: 'Personas drafted from each seed (Text-to-Persona).' },
  maxSeedChars: { env: 'PERSONAHUB_MAX_SEED_CHARS', schema: positiveInt.max(100000), default: '4000', doc: 'Seed lines longer than this are rejected at ingest with a reason.' },
  nearDuplicateCosine: { env: 'PERSONAHUB_NEAR_DUPLICATE_COSINE', schema: z.coerce.number().min(0).max(1), default: '0.97', doc: 'Validate: a persona whose embedding has at least this cosine similarity to an indexed persona is rejected as a near-duplicate (1 disables the check).' },
  maxRetries: { env: 'PERSONAHUB_MAX_RETRIES', schema: z.coerce.number().int().min(0).max(20), default: '3', doc: 'Runner: attempts at a transient processing error before the event goes to the DLQ.' },
  partitionConcurrency: { env: 'PERSONAHUB_PARTITION_CONCURRENCY', schema: positiveInt.max(256), default: '3', doc: 'Runner: input partitions of one stage processed at the same time, each committing through its own transactional producer.' },
  maxInFlight: { env: 'PERSONAHUB_MAX_IN_FLIGHT', schema: positiveInt.max(1024), default: '4', doc: 'Runner: events of one batch processed concurrently.' },
  sessionTimeoutMs: { env: 'PERSONAHUB_SESSION_TIMEOUT_MS', schema: z.coerce.number().int().min(6000).max(300000), default: '30000', doc: 'Consumer group session timeout: how long a crashed instance holds its partitions before a rebalance hands them over.' },
  metricsPort: { env: 'PERSONAHUB_METRICS_PORT', schema: z.coerce.number().int().min(0).max(65535), default: '0', doc: 'Port of the processor\'s /metrics and /health endpoint; 0 disables it.' },
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

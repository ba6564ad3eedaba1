import { readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../core/errors.ts';

/** The sampler profiles present: config/profiles/<name>.yaml, read once (the loader in persona/profile.ts checks their content). */
export const PROFILE_NAMES: readonly string[] = readdirSync(join(import.meta.dirname, 'profiles')).filter((f) => f.endsWith('.yaml')).map((f) => f.slice(0, -'.yaml'.length)).sort();
const profileName = z.string().refine((v) => PROFILE_NAMES.includes(v), `expected one of the profiles in config/profiles: ${PROFILE_NAMES.join(', ')}`);

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

/** As wholeNumber, or empty for "not set" (null), where something else then decides (`emptyMeans` says what). */
function wholeNumberOrEmpty(min: number, max: number, emptyMeans: string) {
  const message = `expected a whole number from ${min} to ${max} written in decimal digits, or empty for ${emptyMeans}`;
  return z.string().regex(/^\d*$/, message).transform((v) => (v === '' ? null : Number(v))).refine((n) => n === null || (n >= min && n <= max), message);
}

/** KRaft elects by majority: an even count tolerates no more failures than the odd count below it. */
/** Persona-to-Persona relation kinds (persona/relations.ts holds what each means; a unit test keeps the lists equal). */
export const RELATION_KINDS = ['family', 'colleague', 'client', 'patient', 'mentor', 'student', 'neighbour', 'rival', 'community'] as const;

/** A comma-separated, non-empty list of distinct values out of `allowed`. */
function commaList<const T extends string>(allowed: readonly T[]) {
  const message = `expected a comma-separated list of ${allowed.join(', ')}`;
  return z.string().transform((v) => v.split(',').map((x) => x.trim()).filter((x) => x !== ''))
    .refine((xs): xs is T[] => xs.length > 0 && xs.every((x) => (allowed as readonly string[]).includes(x)) && new Set(xs).size === xs.length, message);
}

const kafkaNodeCounts = ['1', '3', '5'] as const;

/**
 * The local stack's Kafka nodes (each a combined broker and controller): node i (from 0) listens on
 * `port + 2i` and `controllerPort + 2i`, so the default 19092/19093 interleave as 19094/19095, 19096/19097.
 * The one definition of that layout: the default bootstrap list and the stack's options both come from here.
 */
export function localKafkaNodes(c: { kafkaPort: number; kafkaControllerPort: number; kafkaNodes: number }): { nodeId: number; port: number; controllerPort: number }[] {
  return Array.from({ length: c.kafkaNodes }, (_, i) => ({ nodeId: i + 1, port: c.kafkaPort + 2 * i, controllerPort: c.kafkaControllerPort + 2 * i }));
}

/** The bootstrap list of the local stack, from the raw settings (every node, so a client starts with any one of them down). */
function localBootstrap(r: Record<string, string>): string {
  const port = r.PERSONAHUB_KAFKA_PORT ?? '19092';
  const nodes = r.PERSONAHUB_KAFKA_NODES ?? '1';
  // Unparsable values are reported under their own keys; the single-node form then keeps this one quiet.
  if (!/^\d+$/.test(port) || !(kafkaNodeCounts as readonly string[]).includes(nodes) || nodes === '1') return `127.0.0.1:${port}`;
  return localKafkaNodes({ kafkaPort: Number(port), kafkaControllerPort: 0, kafkaNodes: Number(nodes) }).map((n) => `127.0.0.1:${n.port}`).join(',');
}
/** setTimeout's limit: a longer delay fires after 1 ms instead, with only a warning. */
const MAX_TIMER_MS = 2_147_483_647;
/** PGlite keeps an empty dataDir in memory without a word, so a blank value would lose the store at exit; memory:// asks for that on purpose. */
const pgliteDir = z.string().min(1, 'expected a directory, or memory:// to keep the store in memory');
/** `stack up` starts the model server from the repo root, where a relative path names another file than where it was typed. */
const modelPath = z.string().refine((v) => v === '' || isAbsolute(v), 'expected an absolute path, or empty for the model PERSONAHUB_LOCAL_LLM selects');
/**
 * The local text models `personahub models fetch` can assemble (models/weights/fetch.ts has their specs under the same ids;
 * a unit test keeps the two lists equal). The first is the default.
 */
export const localLlms = ['qwen2.5-coder-1.5b', 'qwen2.5-coder-0.5b'] as const;
/** The served model name follows the local model unless PERSONAHUB_LLM_MODEL says otherwise (a bad local model is reported under its own key). */
const localLlmOf = (r: Record<string, string>): string => r.PERSONAHUB_LOCAL_LLM || localLlms[0];
const bool = z.enum(['true', 'false']).transform((v) => v === 'true');
const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * A PEM file read at start, so a wrong path or a file of the wrong kind fails here, naming the key, instead of at the
 * first TLS handshake. Empty means not set.
 */
function pemFile(kind: 'certificate' | 'private key') {
  const expected = `expected the path of a readable PEM file with a ${kind}, or empty`;
  return z.string().superRefine((file, ctx) => {
    if (file === '') return;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      ctx.addIssue({ code: 'custom', message: `${expected}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : `cannot read it (${code ?? String(error)})`}` });
      return;
    }
    if (kind === 'certificate' && !text.includes('-----BEGIN CERTIFICATE-----')) ctx.addIssue({ code: 'custom', message: `${expected}: no -----BEGIN CERTIFICATE----- block in it` });
    if (kind === 'private key' && (text.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----') || text.includes('Proc-Type: 4,ENCRYPTED'))) {
      ctx.addIssue({ code: 'custom', message: `${expected}: the key is encrypted, and no passphrase can be given; decrypt it (\`openssl pkey -in key.pem -out key-plain.pem\`) and keep that file private` });
    } else if (kind === 'private key' && !/-----BEGIN (RSA |EC )?PRIVATE KEY-----/.test(text)) {
      ctx.addIssue({ code: 'custom', message: `${expected}: no -----BEGIN PRIVATE KEY----- block in it` });
    }
  });
}
const saslMechanisms = ['none', 'plain', 'scram-sha-256', 'scram-sha-512'] as const;
/** Kafka's own settings spell mechanisms in capitals (SCRAM-SHA-256); either spelling is the same mechanism. */
const saslMechanism = z.string().transform((v) => v.toLowerCase()).pipe(z.enum(saslMechanisms));
const databaseSslModes = ['disable', 'require', 'verify-full'] as const;

export const keys = {
  home: { env: 'PERSONAHUB_HOME', schema: z.string().min(1), default: '/var/tmp/personahub', doc: 'State directory of the local stack (data, logs, pid files). Must be readable by the unprivileged `personahub` user that runs PostgreSQL, so not under a mode-700 home.' },
  cacheDir: { env: 'PERSONAHUB_CACHE_DIR', schema: z.string().min(1), default: join(homedir(), '.cache', 'personahub'), doc: 'Download cache outside the repo: Node, Maven jars, Apicurio, wheels.' },
  modelsDir: { env: 'PERSONAHUB_MODELS_DIR', schema: z.string().min(1), default: (r) => join(r.PERSONAHUB_CACHE_DIR ?? join(homedir(), '.cache', 'personahub'), 'models'), doc: 'Where `personahub models fetch` puts the local GGUF models.' },
  logLevel: { env: 'PERSONAHUB_LOG_LEVEL', schema: z.enum(logLevels), default: 'info', doc: `Log level: ${logLevels.join(', ')}.` },
  topicPrefix: { env: 'PERSONAHUB_TOPIC_PREFIX', schema: z.string().regex(/^[a-zA-Z0-9._-]+$/), default: 'personahub', doc: 'First part of every topic name (`<prefix>.<event>.v1`) and consumer group; lets several pipelines share a cluster.' },
  kafkaBrokers: { env: 'PERSONAHUB_KAFKA_BROKERS', schema: z.string().regex(/^[^,\s]+:\d+(,[^,\s]+:\d+)*$/, 'comma-separated host:port list'), default: localBootstrap, doc: 'Bootstrap brokers, comma-separated host:port. Defaults to the local stack (every node of it when `PERSONAHUB_KAFKA_NODES` is above 1).' },
  kafkaPort: { env: 'PERSONAHUB_KAFKA_PORT', schema: port, default: '19092', doc: 'Local stack: broker listener port (loopback).' },
  kafkaControllerPort: { env: 'PERSONAHUB_KAFKA_CONTROLLER_PORT', schema: port, default: '19093', doc: 'Local stack: KRaft controller port (loopback).' },
  kafkaNodes: { env: 'PERSONAHUB_KAFKA_NODES', schema: z.enum(kafkaNodeCounts).transform(Number), default: '1', doc: 'Local stack: Kafka nodes, each a combined broker and controller (`stack up --brokers N` for one command). Above 1, node i (from 0) listens on `PERSONAHUB_KAFKA_PORT` + 2i and `PERSONAHUB_KAFKA_CONTROLLER_PORT` + 2i, and the internal topics get 3 replicas with min ISR 2, as do topics created with the cluster\'s defaults. Odd counts only: KRaft needs a majority of the controllers.' },
  kafkaSsl: { env: 'PERSONAHUB_KAFKA_SSL', schema: bool, default: 'false', doc: 'Connect to the brokers over TLS (`true` or `false`). The certificate is verified against Node\'s built-in CAs, or the CA file below.' },
  kafkaSslCaFile: { env: 'PERSONAHUB_KAFKA_SSL_CA_FILE', schema: pemFile('certificate'), default: '', doc: 'PEM CA bundle the brokers\' certificates are verified against (needs `PERSONAHUB_KAFKA_SSL=true`). Empty: Node\'s built-in CAs.' },
  kafkaSslCertFile: { env: 'PERSONAHUB_KAFKA_SSL_CERT_FILE', schema: pemFile('certificate'), default: '', doc: 'Client certificate (PEM) for mutual TLS; goes with `PERSONAHUB_KAFKA_SSL_KEY_FILE` and needs `PERSONAHUB_KAFKA_SSL=true`.' },
  kafkaSslKeyFile: { env: 'PERSONAHUB_KAFKA_SSL_KEY_FILE', schema: pemFile('private key'), default: '', doc: 'Unencrypted PEM private key of the client certificate (mutual TLS).' },
  kafkaSaslMechanism: { env: 'PERSONAHUB_KAFKA_SASL_MECHANISM', schema: saslMechanism, default: 'none', doc: `SASL authentication to the brokers: ${saslMechanisms.join(', ')} (either case). Any but \`none\` needs the SASL username and secret below; \`plain\` sends the secret as is, so use it over TLS only.` },
  kafkaSaslUsername: { env: 'PERSONAHUB_KAFKA_SASL_USERNAME', schema: z.string(), default: '', doc: 'SASL username (with a mechanism other than `none`).' },
  kafkaSaslPassword: { env: 'PERSONAHUB_KAFKA_SASL_PASSWORD', schema: z.string(), default: '', doc: 'SASL password (with a mechanism other than `none`). Never logged.' },
  partitions: { env: 'PERSONAHUB_PARTITIONS', schema: wholeNumber(1, 1024), default: '3', doc: 'Partitions per pipeline topic when `topics init` creates them (the upper bound on instances per stage). A higher value later is applied by `topics init --raise-partitions`; Kafka never lowers a topic\'s partitions.' },
  replicationFactor: { env: 'PERSONAHUB_REPLICATION_FACTOR', schema: wholeNumberOrEmpty(1, 64, 'the cluster\'s default.replication.factor'), default: '', doc: 'Replicas of every pipeline topic when `topics init` creates it. Empty: the cluster\'s `default.replication.factor` (1 on a single broker). Production: 3.' },
  minInsyncReplicas: { env: 'PERSONAHUB_MIN_INSYNC_REPLICAS', schema: wholeNumberOrEmpty(1, 64, 'the cluster\'s min.insync.replicas'), default: '', doc: 'Topic `min.insync.replicas`: producers write with acks=all, so a write succeeds once this many replicas have it, and is refused (retried, never lost) while fewer are in sync. Empty: the cluster\'s `min.insync.replicas`. Production: 2 with 3 replicas (one broker may be down).' },
  registryUrl: { env: 'PERSONAHUB_REGISTRY_URL', schema: httpUrl(), default: (r) => `http://127.0.0.1:${r.PERSONAHUB_REGISTRY_PORT ?? '18080'}/apis/ccompat/v7`, doc: 'Confluent-compatible schema registry API. Defaults to the local Apicurio.' },
  registryPort: { env: 'PERSONAHUB_REGISTRY_PORT', schema: port, default: '18080', doc: 'Local stack: Apicurio HTTP port.' },
  registryManagementPort: { env: 'PERSONAHUB_REGISTRY_MANAGEMENT_PORT', schema: port, default: '18081', doc: 'Local stack: Apicurio management (health) port.' },
  registryCaFile: { env: 'PERSONAHUB_REGISTRY_CA_FILE', schema: pemFile('certificate'), default: '', doc: 'PEM CA bundle the registry\'s certificate is verified against (an `https://` registry URL only). Empty: Node\'s built-in CAs.' },
  registryUsername: { env: 'PERSONAHUB_REGISTRY_USERNAME', schema: z.string().refine((v) => !v.includes(':'), 'a basic-auth username cannot contain ":"'), default: '', doc: 'Registry HTTP basic-auth username (e.g. an API key); empty sends no credentials.' },
  registryPassword: { env: 'PERSONAHUB_REGISTRY_PASSWORD', schema: z.string(), default: '', doc: 'Registry HTTP basic-auth password (e.g. an API secret). Never logged.' },
  postgresPort: { env: 'PERSONAHUB_POSTGRES_PORT', schema: port, default: '15432', doc: 'Local stack: PostgreSQL port (loopback).' },
  postgresUser: { env: 'PERSONAHUB_POSTGRES_USER', schema: z.string().min(1), default: 'personahub', doc: 'Local stack: PostgreSQL role.' },
  postgresPassword: { env: 'PERSONAHUB_POSTGRES_PASSWORD', schema: z.string().min(1), default: 'personahub', doc: 'Local stack: PostgreSQL password.' },
  postgresDatabase: { env: 'PERSONAHUB_POSTGRES_DATABASE', schema: z.string().min(1), default: 'personahub', doc: 'Local stack: database of the pipeline (the registry uses `apicurio`).' },
  store: { env: 'PERSONAHUB_STORE', schema: z.enum(['postgres', 'pglite']), default: 'postgres', doc: 'Persona store: `postgres` (server with pgvector; the local stack runs one) or `pglite` (embedded, single process only: use with `personahub run`).' },
  databaseUrl: { env: 'PERSONAHUB_DATABASE_URL', schema: z.string().regex(/^postgres(ql)?:\/\//, 'expected a postgres:// or postgresql:// URL'), default: (r) => `postgres://${r.PERSONAHUB_POSTGRES_USER ?? 'personahub'}:${r.PERSONAHUB_POSTGRES_PASSWORD ?? 'personahub'}@127.0.0.1:${r.PERSONAHUB_POSTGRES_PORT ?? '15432'}/${r.PERSONAHUB_POSTGRES_DATABASE ?? 'personahub'}`, doc: 'PostgreSQL URL for `store=postgres`. Defaults to the local stack.' },
  databaseSsl: { env: 'PERSONAHUB_DATABASE_SSL', schema: z.enum(databaseSslModes), default: 'disable', doc: 'TLS to PostgreSQL: `disable` (none; an `sslmode` in the URL still applies), `require` (encrypted, certificate not checked; checked against the CA file if one is given, host name not checked), `verify-full` (certificate and host name checked).' },
  databaseSslCaFile: { env: 'PERSONAHUB_DATABASE_SSL_CA_FILE', schema: pemFile('certificate'), default: '', doc: 'PEM CA bundle the PostgreSQL server\'s certificate is verified against (with `require` or `verify-full`). Empty: Node\'s built-in CAs.' },
  pgliteDir: { env: 'PERSONAHUB_PGLITE_DIR', schema: pgliteDir, default: (r) => join(r.PERSONAHUB_HOME ?? '/var/tmp/personahub', 'pglite'), doc: 'PGlite data directory for `store=pglite`; `memory://` keeps it in memory.' },
  mode: { env: 'PERSONAHUB_MODE', schema: z.enum(['llm', 'sampler']), default: 'llm', doc: '`llm`: personas written by the LLM, grounded on sampled attributes. `sampler`: no LLM, personas composed from sampled attributes and the seed\'s salient terms (labelled as such in every persona).' },
  modalities: { env: 'PERSONAHUB_MODALITIES', schema: z.enum(['llm', 'sampler']), default: 'llm', doc: '`llm`: where a model is configured, the enrich stage has it write the modalities (backstory, speaking style, habits, goals, values, media diet, appearance, image prompt, settings, routines) of each persona a model wrote, in one more call per persona. `sampler`: the deterministic derivation for every persona, no second call (labelled as such in `enrichment.modalitiesSource`).' },
  llmBaseUrl: { env: 'PERSONAHUB_LLM_BASE_URL', schema: z.union([z.literal(''), httpUrl('an http:// or https:// URL, or empty for the local model server')]), default: '', doc: 'OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server). Empty: the local model server that `stack up` starts.' },
  llmApiKey: { env: 'PERSONAHUB_LLM_API_KEY', schema: z.string(), default: 'local', doc: 'API key for the endpoint. Never logged.' },
  localLlm: { env: 'PERSONAHUB_LOCAL_LLM', schema: z.enum(localLlms), default: localLlms[0], doc: 'Local model server: the text model `models fetch` assembles and `llm serve` serves. `qwen2.5-coder-1.5b`: Qwen2.5-Coder-1.5B-Instruct Q4_K_M (1.1 GB; the server peaks at about 2.2 GB RSS; the default). `qwen2.5-coder-0.5b`: its 0.5B sibling (491 MB; about 1.1 GB RSS), about 1.3x faster, much weaker prose. Both Apache-2.0 (models/NOTICE-qwen.md).' },
  llmModel: { env: 'PERSONAHUB_LLM_MODEL', schema: z.string().min(1), default: localLlmOf, doc: 'Chat model name sent to the endpoint (and the name the local model server serves its text model under). Defaults to `PERSONAHUB_LOCAL_LLM`; set it for any other endpoint.' },
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
  llmModelPath: { env: 'PERSONAHUB_LLM_MODEL_PATH', schema: modelPath, default: '', doc: 'Local model server: absolute path of a GGUF to serve instead of the model `PERSONAHUB_LOCAL_LLM` selects (which is then not fetched). One with a chat template is prompted through it; a base model without one gets a few-shot transcript.' },
  profile: { env: 'PERSONAHUB_PROFILE', schema: profileName, default: 'global', doc: `Sampler profile the draft stage draws attributes from: one of config/profiles/*.yaml (${PROFILE_NAMES.join(', ')}), each citing the statistics it is built from (docs/QUALITY.md). A generation job (\`personahub generate --profile\`) names its own.` },
  personasPerSeed: { env: 'PERSONAHUB_PERSONAS_PER_SEED', schema: wholeNumber(1, 16), default: '1', doc: 'Personas drafted from each seed (Text-to-Persona).' },
  maxSeedChars: { env: 'PERSONAHUB_MAX_SEED_CHARS', schema: wholeNumber(1, 100000), default: '4000', doc: 'Seed lines longer than this are rejected at ingest with a reason.' },
  maxDescriptionChars: { env: 'PERSONAHUB_MAX_DESCRIPTION_CHARS', schema: wholeNumber(40, 100000), default: '2000', doc: 'Validate and `personahub check`: a description longer than this is rejected (DESCRIPTION_TOO_LONG). The draft stage asks the model for at most 420 characters.' },
  llmJudge: { env: 'PERSONAHUB_LLM_JUDGE', schema: z.enum(['off', 'on']), default: 'off', doc: 'Validate: `on` has the model score each persona that passed the checks on a rubric (consistent with its attributes, specific and believable, no leaked instructions or copied text, coherent, related to its seed), 1-5 each, and rejects it (`LLM_JUDGE`) when a criterion scores below `PERSONAHUB_LLM_JUDGE_THRESHOLD`: one more call per persona, for a strong endpoint (docs/QUALITY.md, The LLM judge). Works in sampler mode too: the endpoint is then used for the judge alone.' },
  llmJudgeThreshold: { env: 'PERSONAHUB_LLM_JUDGE_THRESHOLD', schema: wholeNumber(1, 5), default: '3', doc: 'Validate: the lowest score (1-5) every rubric criterion must reach to pass the LLM judge. 3, the rubric\'s "acceptable": a persona with any criterion the model calls weak or failed is rejected; 1 records the scores and rejects nothing.' },
  nearDuplicateCosine: { env: 'PERSONAHUB_NEAR_DUPLICATE_COSINE', schema: decimal(0, 1), default: '0.84', doc: 'Validate: a candidate (a persona sharing an LSH band, or one of the nearest indexed neighbours) whose embedding has at least this cosine similarity confirms the persona as a near-duplicate (1 disables near-duplicate removal; exact duplicates are always removed). 0.84, not PersonaHub\'s 0.9, as measured on planted duplicates with all-MiniLM-L6-v2 (docs/QUALITY.md, Deduplication).' },
  dedupJaccard: { env: 'PERSONAHUB_DEDUP_JACCARD', schema: decimal(0.05, 1), default: '0.9', doc: 'Validate: the MinHash Jaccard similarity (over the description\'s words without the persona\'s name) that makes two personas candidates (LSH bands and rows are derived from it for 99% recall at the threshold) and, reached, duplicates on words alone. PersonaHub used 0.9.' },
  minhashPermutations: { env: 'PERSONAHUB_MINHASH_PERMUTATIONS', schema: wholeNumber(16, 1024), default: '128', doc: 'Validate: MinHash permutations per signature (PersonaHub: 128). More is a closer Jaccard estimate and more band keys per persona.' },
  minhashShingle: { env: 'PERSONAHUB_MINHASH_SHINGLE', schema: wholeNumber(1, 5), default: '1', doc: 'Validate: words per MinHash shingle (PersonaHub: 1-grams). 1 ignores word order, so reordered sentences are candidates.' },
  dedupNeighbours: { env: 'PERSONAHUB_DEDUP_NEIGHBOURS', schema: wholeNumber(0, 100), default: '5', doc: 'Validate: nearest indexed personas (by embedding) checked besides the LSH candidates, which catches paraphrases that share few words; 0 checks LSH candidates only.' },
  latticeDepth: { env: 'PERSONAHUB_LATTICE_DEPTH', schema: wholeNumber(0, 6), default: '0', doc: 'Persona-to-Persona: depth of the deepest derived persona (PersonaHub ran six rounds); 0 turns expansion off. The demo uses 2.' },
  latticeFanout: { env: 'PERSONAHUB_LATTICE_FANOUT', schema: wholeNumber(1, 16), default: '2', doc: 'Persona-to-Persona: related personas derived from each persona, one per relation kind, chosen reproducibly per persona among the kinds of PERSONAHUB_RELATION_KINDS that apply to it (a patient needs a carer).' },
  latticeBudget: { env: 'PERSONAHUB_LATTICE_BUDGET', schema: wholeNumber(1, 1_000_000), default: '6', doc: 'Persona-to-Persona: derived personas per root seed over its whole lattice, so a lattice stays bounded whatever the depth and fan-out.' },
  relationKinds: { env: 'PERSONAHUB_RELATION_KINDS', schema: commaList(RELATION_KINDS), default: RELATION_KINDS.join(','), doc: `Persona-to-Persona: relation kinds that may be derived, comma-separated: ${RELATION_KINDS.join(', ')}.` },
  retryMaxDelayMs: { env: 'PERSONAHUB_RETRY_MAX_DELAY_MS', schema: wholeNumber(1000, 3_600_000), default: '30000', doc: 'Runner: longest wait between two attempts at an event that failed transiently (jittered exponential backoff from 250 ms). Transient failures are retried for as long as the outage lasts; they never reach the DLQ.' },
  retryAfterMaxMs: { env: 'PERSONAHUB_RETRY_AFTER_MAX_MS', schema: wholeNumber(1000, 86_400_000), default: '900000', doc: 'Runner: a dependency\'s Retry-After is honoured up to this long (a rate-limited endpoint asking for 90 s gets 90 s).' },
  breakerFailureThreshold: { env: 'PERSONAHUB_BREAKER_FAILURE_THRESHOLD', schema: wholeNumber(1, 1000), default: '3', doc: 'Runner: consecutive transient failures of one dependency (llm, store, registry, broker) that open its circuit breaker: the stage pauses fetching, reports not ready, and probes with one event before resuming.' },
  breakerOpenMs: { env: 'PERSONAHUB_BREAKER_OPEN_MS', schema: wholeNumber(100, 3_600_000), default: '2000', doc: 'Runner: how long an open breaker waits before its first probe; doubles after each failed probe up to PERSONAHUB_RETRY_MAX_DELAY_MS.' },
  fetchMaxBytesPerPartition: { env: 'PERSONAHUB_FETCH_MAX_BYTES_PER_PARTITION', schema: wholeNumber(16_384, 104_857_600), default: '1048576', doc: 'Runner: bytes one fetch may bring per partition (four partitions\' worth per fetch at most): with PERSONAHUB_PARTITION_CONCURRENCY it bounds what an instance buffers, whatever the backlog.' },
  maxEventBytes: { env: 'PERSONAHUB_MAX_EVENT_BYTES', schema: wholeNumber(64, 1_073_741_824), default: '1000000', doc: 'Runner: an input event whose key and value together are larger than this is not decoded: it goes to the DLQ as `PH_EVENT_TOO_LARGE` (raise it, restart, then `personahub dlq replay --code PH_EVENT_TOO_LARGE`). Keep it below the brokers\' `message.max.bytes`, since the dead letter carries the event whole.' },
  shutdownTimeoutMs: { env: 'PERSONAHUB_SHUTDOWN_TIMEOUT_MS', schema: wholeNumber(1000, 600_000), default: '30000', doc: 'SIGTERM: how long the process may take to finish (or abandon) the transaction in progress and disconnect before it exits anyway. Keep it below the pod\'s terminationGracePeriodSeconds.' },
  partitionConcurrency: { env: 'PERSONAHUB_PARTITION_CONCURRENCY', schema: wholeNumber(1, 256), default: '3', doc: 'Runner: input partitions of one stage processed at the same time, each committing through its own transactional producer.' },
  maxInFlight: { env: 'PERSONAHUB_MAX_IN_FLIGHT', schema: wholeNumber(1, 1024), default: '16', doc: 'Runner: events of one batch processed concurrently. At the chunk size (16), a chunk\'s store writes and embeddings go as one round trip each.' },
  sessionTimeoutMs: { env: 'PERSONAHUB_SESSION_TIMEOUT_MS', schema: wholeNumber(6000, 300000), default: '30000', doc: 'Consumer group session timeout: how long a crashed instance holds its partitions before a rebalance hands them over.' },
  metricsPort: { env: 'PERSONAHUB_METRICS_PORT', schema: wholeNumber(0, 65535), default: '0', doc: 'Port of the processor\'s /metrics and /health endpoint; 0 disables it.' },
  apiHost: { env: 'PERSONAHUB_API_HOST', schema: z.string().regex(/^[A-Za-z0-9.:[\]-]+$/, 'expected a host name or IP address to listen on, like 127.0.0.1 or 0.0.0.0'), default: '127.0.0.1', doc: '`personahub serve`: address the HTTP API listens on. Loopback by default; `0.0.0.0` in a container.' },
  apiPort: { env: 'PERSONAHUB_API_PORT', schema: port, default: '18090', doc: '`personahub serve`: port of the HTTP API.' },
  apiBodyLimit: { env: 'PERSONAHUB_API_BODY_LIMIT', schema: wholeNumber(1024, 104_857_600), default: '1048576', doc: 'HTTP API: largest request body in bytes (a seed upload included); a larger one is refused with 413 before it is read whole.' },
  apiRateLimit: { env: 'PERSONAHUB_API_RATE_LIMIT', schema: wholeNumber(1, 1_000_000), default: '600', doc: 'HTTP API: requests per minute per API key (per client address for requests without one); beyond it, 429 with Retry-After.' },
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
  problems.push(...combinationProblems(out));
  const unknown = Object.keys(raw).filter((n) => n.startsWith('PERSONAHUB_') && !envNames.has(n));
  for (const name of unknown) problems.push(`${name}: unknown key (known keys: see \`personahub config docs\`)`);
  if (problems.length > 0) throw new ConfigError(`invalid configuration:\n  ${problems.join('\n  ')}`);
  return Object.freeze(out) as Config;
}

const envNames = new Set<string>(Object.values(keys).map((k) => k.env));

const envOf = (key: keyof Keys): string => keys[key].env;

/**
 * Settings that are each valid alone but wrong together, e.g. a SASL mechanism without credentials or a CA file
 * for a plain-HTTP registry. A rule runs only when every key it reads parsed, so a bad value is reported once.
 * A message names the keys; it shows a value only where that value is not a secret.
 */
const combinations: { uses: readonly (keyof Keys)[]; problem: (c: Config) => string | undefined }[] = [
  {
    uses: ['replicationFactor', 'minInsyncReplicas'],
    problem: (c) => c.replicationFactor !== null && c.minInsyncReplicas !== null && c.minInsyncReplicas > c.replicationFactor
      ? `${envOf('minInsyncReplicas')}=${c.minInsyncReplicas} is above ${envOf('replicationFactor')}=${c.replicationFactor}: every acks=all write would be refused (NOT_ENOUGH_REPLICAS)`
      : undefined,
  },
  {
    uses: ['kafkaNodes', 'kafkaPort', 'kafkaControllerPort'],
    problem: (c) => {
      const nodes = localKafkaNodes(c);
      const ports = nodes.flatMap((n) => [n.port, n.controllerPort]);
      const twice = ports.filter((p, i) => ports.indexOf(p) !== i);
      const high = ports.filter((p) => p > 65535);
      if (twice.length === 0 && high.length === 0) return undefined;
      const layout = `the ${c.kafkaNodes} local Kafka nodes listen on ${nodes.map((n) => n.port).join(', ')} (brokers) and ${nodes.map((n) => n.controllerPort).join(', ')} (controllers)`;
      if (high.length > 0) return `${envOf('kafkaNodes')}=${c.kafkaNodes}: ${layout}, beyond 65535: lower ${envOf('kafkaPort')} or ${envOf('kafkaControllerPort')}`;
      return `${envOf('kafkaNodes')}=${c.kafkaNodes}: ${layout}, so port ${twice[0]} is taken twice: choose ${envOf('kafkaPort')} and ${envOf('kafkaControllerPort')} an odd distance apart (e.g. 19092 and 19093)`;
    },
  },
  {
    uses: ['kafkaSaslMechanism', 'kafkaSaslUsername', 'kafkaSaslPassword'],
    problem: (c) => {
      const missing = [c.kafkaSaslUsername === '' ? envOf('kafkaSaslUsername') : '', c.kafkaSaslPassword === '' ? envOf('kafkaSaslPassword') : ''].filter(Boolean);
      if (c.kafkaSaslMechanism !== 'none' && missing.length > 0) return `${envOf('kafkaSaslMechanism')}="${c.kafkaSaslMechanism}": needs ${envOf('kafkaSaslUsername')} and ${envOf('kafkaSaslPassword')} (not set: ${missing.join(', ')})`;
      const set = [c.kafkaSaslUsername !== '' ? envOf('kafkaSaslUsername') : '', c.kafkaSaslPassword !== '' ? envOf('kafkaSaslPassword') : ''].filter(Boolean);
      if (c.kafkaSaslMechanism === 'none' && set.length > 0) return `${set.join(' and ')} set, but ${envOf('kafkaSaslMechanism')} is "none", so they would not be used: set the mechanism (plain, scram-sha-256 or scram-sha-512), or unset them`;
      return undefined;
    },
  },
  {
    uses: ['kafkaSsl', 'kafkaSslCaFile', 'kafkaSslCertFile', 'kafkaSslKeyFile'],
    problem: (c) => {
      const files = (['kafkaSslCaFile', 'kafkaSslCertFile', 'kafkaSslKeyFile'] as const).filter((k) => c[k] !== '').map(envOf);
      if (!c.kafkaSsl && files.length > 0) return `${files.join(' and ')} set, but ${envOf('kafkaSsl')} is false: set ${envOf('kafkaSsl')}=true, or unset them`;
      if ((c.kafkaSslCertFile === '') !== (c.kafkaSslKeyFile === '')) return `${envOf(c.kafkaSslCertFile === '' ? 'kafkaSslKeyFile' : 'kafkaSslCertFile')} set without ${envOf(c.kafkaSslCertFile === '' ? 'kafkaSslCertFile' : 'kafkaSslKeyFile')}: a client certificate and its key go together`;
      return undefined;
    },
  },
  {
    uses: ['registryUrl', 'registryCaFile'],
    problem: (c) => c.registryCaFile !== '' && !c.registryUrl.startsWith('https://')
      ? `${envOf('registryCaFile')} set, but ${envOf('registryUrl')} is not an https:// URL, so no certificate would be checked`
      : undefined,
  },
  {
    uses: ['registryUsername', 'registryPassword'],
    problem: (c) => (c.registryUsername === '') !== (c.registryPassword === '')
      ? `${envOf(c.registryUsername === '' ? 'registryPassword' : 'registryUsername')} set without ${envOf(c.registryUsername === '' ? 'registryUsername' : 'registryPassword')}: basic auth needs both`
      : undefined,
  },
  {
    uses: ['databaseSsl', 'databaseSslCaFile', 'databaseUrl'],
    problem: (c) => {
      if (c.databaseSsl === 'disable' && c.databaseSslCaFile !== '') return `${envOf('databaseSslCaFile')} set, but ${envOf('databaseSsl')} is "disable": set it to require or verify-full, or unset the CA file`;
      // pg lets the URL's TLS parameters override the options given beside it, so one of the two would be ignored without a word.
      const inUrl = urlParams(c.databaseUrl).filter((p) => /^ssl/i.test(p));
      if (c.databaseSsl !== 'disable' && inUrl.length > 0) return `${envOf('databaseSsl')}="${c.databaseSsl}" and ${envOf('databaseUrl')} (${inUrl.join(', ')}) both set TLS: keep ${envOf('databaseSsl')} and remove the parameters from the URL`;
      return undefined;
    },
  },
];

/** Names of a URL's query parameters (never their values: the URL may hold a password). */
function urlParams(url: string): string[] {
  try {
    return [...new URL(url).searchParams.keys()];
  } catch {
    return [];
  }
}

function combinationProblems(parsed: Record<string, unknown>): string[] {
  return combinations
    .filter((rule) => rule.uses.every((k) => k in parsed))
    .map((rule) => rule.problem(parsed as Config))
    .filter((p): p is string => p !== undefined);
}

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

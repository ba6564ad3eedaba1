/**
 * The local model server, two ways.
 *
 * 1. What the OpenAI-compatible server costs over calling node-llama-cpp directly, for one text model:
 *
 *   npx tsx bench/llm-server.bench.ts [--model qwen2.5-coder-1.5b] [--models-dir DIR] [--personas 10] [--sentences 200] [--queue 8]
 *
 * Starts `serveLlm` in a child process (as `personahub llm serve` runs it, so its RSS is its own) and
 * loads the same models with node-llama-cpp in this process. Then, alternating request by request so
 * that load from elsewhere on the machine falls on both alike:
 * - N persona requests through the openai SDK vs. a bare node-llama-cpp loop with the same prompt
 *   (through the model's chat template when it has one, as the server does; otherwise the server's
 *   few-shot rendering), grammar, seeds and sampling options on one reused sequence (the two sample the
 *   same tokens, so their outputs are compared too);
 * - the sentences through the server in batches of 25 and one per request vs. a bare embedding context.
 * Finally it fills the server's queue and samples the child's RSS, then stops it with SIGTERM.
 * Prints personas/min and embeddings/s for each path and the server's overhead in percent.
 *
 * 2. The local text models side by side on the draft stage's own prompts:
 *
 *   npx tsx bench/llm-server.bench.ts --draft [--models qwen2.5-coder-1.5b,qwen2.5-coder-0.5b] [--personas 24] [--show]
 *
 * One server child per model (each with the embedding model too, as `llm serve` runs), all loaded at once;
 * the first N seeds of data/seeds.jsonl become draft requests exactly as the draft stage builds them
 * (sampled attributes, persona/prompt.ts's few-shot messages, its JSON schema, max_tokens 160, temperature
 * 0.7, the persona's seed), sent one at a time, the models taking turns request by request. For each model:
 * personas/min, time to first token, generated tokens, peak RSS (sampled every 50 ms), and what validation's
 * text checks (persona/coherence.ts) make of the outputs. `--show` prints every description. `--from K` starts at
 * the K-th valid seed instead of the first; `--out FILE` writes every valid draft as a JSONL line
 * {model, seedText, persona} (persona as the draft stage emits it), the raw material of the labelled fixture
 * test/fixtures/draft-outputs.jsonl.
 *
 * A model is a local model id (models/weights/fetch.ts, fetched by `personahub models fetch`) or
 * `name=/absolute/path.gguf` for any other GGUF.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { getLlama, LlamaChat, LlamaCompletion, type GbnfJsonSchema } from 'node-llama-cpp';
import OpenAI from 'openai';
import { loadConfig } from '../config/index.ts';
import { normalize } from '../core/vector.ts';
import { EMBEDDING_MODEL, isLocalLlmId, LOCAL_LLM_IDS, LOCAL_LLMS } from '../models/weights/fetch.ts';
import { boundJsonSchema } from '../models/server/json-schema-grammar.ts';
import type { ChatMessage } from '../core/chat.ts';
import { FEW_SHOT_STOP_TRIGGERS, renderFewShotPrompt, toChatHistory } from '../models/server/prompt.ts';
import { serveLlm, type LlmServerOptions } from '../models/server/server.ts';
import { createLogger } from '../core/logger.ts';
import { PERSONA_JSON_SCHEMA } from '../test/helpers/persona-schema.ts';
import { parseSeedLines } from '../persona/seeds.ts';
import { personaId } from '../persona/ids.ts';
import { lineageOf } from '../persona/relations.ts';
import { sampleAttributes } from '../persona/attributes.ts';
import { buildDraftMessages, DRAFT_MAX_TOKENS, DRAFT_OUTPUT_SCHEMA, PROMPT_VERSION } from '../persona/prompt.ts';
import { checkPersona } from '../persona/coherence.ts';
import type { Persona } from '../schemas/types.generated.ts';

const config = loadConfig();
const { values: args } = parseArgs({
  options: {
    'models-dir': { type: 'string', default: config.modelsDir },
    model: { type: 'string', default: config.localLlm },
    draft: { type: 'boolean', default: false },
    models: { type: 'string', default: LOCAL_LLM_IDS.join(',') },
    personas: { type: 'string' },
    sentences: { type: 'string', default: '200' },
    queue: { type: 'string', default: '8' },
    show: { type: 'boolean', default: false },
    from: { type: 'string', default: '0' },
    out: { type: 'string' },
    serve: { type: 'string' },
  },
});

const EMBEDDER = 'all-minilm-l6-v2';
const CONTEXT_SIZE = 2048;
const MAX_TOKENS = 160;
const TEMPERATURE = 0.8;
const EMBEDDING_BATCH = 25;

const personaSchema = PERSONA_JSON_SCHEMA;

const FEW_SHOT: ChatMessage[] = [
  { role: 'system', content: 'Write one realistic persona as JSON for the person described.' },
  { role: 'user', content: 'a nurse in Manila' },
  { role: 'assistant', content: '{"name": "Maria Santos", "age": 34, "occupation": "pediatric nurse", "description": "Maria works night shifts at a children\'s hospital in Manila and coaches chess on weekends."}' },
  { role: 'user', content: 'a retired teacher in Ohio' },
  { role: 'assistant', content: '{"name": "Robert Miller", "age": 68, "occupation": "retired history teacher", "description": "Robert taught high school history for 35 years and now volunteers at the local museum."}' },
];

const SUBJECTS = [
  'a farmer in Kenya', 'a student in Tokyo', 'a chef in Lima', 'a software engineer in Berlin', 'a fisherman in Norway',
  'a bus driver in Mexico City', 'a violinist in Vienna', 'a nurse in Lagos', 'a librarian in Montreal', 'a miner in Chile',
  'a barista in Seattle', 'a midwife in Dhaka', 'a pilot in Dubai', 'a potter in Kyoto', 'a baker in Lyon',
];

const personaMessages = (subject: string): ChatMessage[] => [...FEW_SHOT, { role: 'user', content: subject }];

/** A text model to load: a local model id, or `name=/path.gguf`. */
interface ModelChoice {
  name: string;
  path: string;
}

function modelChoice(modelsDir: string, value: string): ModelChoice {
  const eq = value.indexOf('=');
  if (eq > 0) return { name: value.slice(0, eq), path: value.slice(eq + 1) };
  if (!isLocalLlmId(value)) throw new Error(`--model(s): ${JSON.stringify(value)} is neither a local model (${LOCAL_LLM_IDS.join(', ')}) nor name=/path.gguf`);
  return { name: value, path: join(modelsDir, LOCAL_LLMS[value].file) };
}

function sentences(count: number): string[] {
  const roles = ['nurse', 'teacher', 'engineer', 'farmer', 'chef', 'pilot', 'librarian', 'painter'];
  const places = ['Manila', 'Lisbon', 'Nairobi', 'Osaka', 'Quito', 'Oslo', 'Austin', 'Pune'];
  const habits = ['plays chess on weekends', 'runs marathons', 'keeps bees', 'restores old radios', 'volunteers at a shelter'];
  return Array.from({ length: count }, (_, i) =>
    `A ${roles[i % roles.length]} in ${places[(i * 3) % places.length]} who ${habits[(i * 7) % habits.length]} and has done so for ${2 + (i % 17)} years.`);
}

function serverOptions(modelsDir: string, model: ModelChoice, maxQueue: number): Omit<LlmServerOptions, 'logger'> & { host: string; port: number } {
  return {
    host: '127.0.0.1', port: 0,
    llmModelPath: model.path, llmModelName: model.name,
    embeddingModelPath: join(modelsDir, EMBEDDING_MODEL.file), embeddingModelName: EMBEDDER,
    contextSize: CONTEXT_SIZE, maxQueue, requestTimeoutMs: 300_000, maxPromptTokens: 1536, maxTokensCap: 512,
  };
}

/** Child mode: the server alone in its process, so its RSS is its own. */
async function runChildServer(optionsJson: string): Promise<void> {
  const server = await serveLlm({ ...(JSON.parse(optionsJson) as ReturnType<typeof serverOptions>), logger: createLogger({ level: 'warn' }) });
  console.log(JSON.stringify({ url: server.url }));
  await server.closed;
}

function rssMiB(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match?.[1] === undefined ? 0 : Number(match[1]) / 1024;
  } catch {
    return 0; // the child has exited
  }
}

/** Sum and count of a histogram in a Prometheus text exposition. */
function histogram(metrics: string, name: string): { sum: number; count: number } {
  const sum = new RegExp(`^${name}_sum\\{[^}]*\\} ([\\d.e+-]+)$`, 'm').exec(metrics)?.[1];
  const count = new RegExp(`^${name}_count\\{[^}]*\\} (\\d+)$`, 'm').exec(metrics)?.[1];
  // No series yet (nothing observed) reads as zero.
  return { sum: Number(sum ?? 0), count: Number(count ?? 0) };
}

/** The value of a counter in a Prometheus text exposition (first series). */
function counter(metrics: string, name: string): number {
  return Number(new RegExp(`^${name}\\{[^}]*\\} ([\\d.e+-]+)$`, 'm').exec(metrics)?.[1] ?? 0);
}

function isValidPersona(text: string): boolean {
  try {
    const value = JSON.parse(text) as Record<string, unknown>;
    const { name, age, occupation, description } = value;
    return typeof name === 'string' && typeof occupation === 'string' && typeof description === 'string' && description.length <= 300
      && typeof age === 'number' && Number.isInteger(age) && age >= 18 && age <= 90;
  } catch {
    return false;
  }
}

async function startServer(modelsDir: string, model: ModelChoice, maxQueue: number) {
  const script = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, ['--import', 'tsx', script, '--serve', JSON.stringify(serverOptions(modelsDir, model, maxQueue))], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const parsed = JSON.parse(line) as { url?: string };
      if (parsed.url !== undefined) resolve(parsed.url);
    });
    void exited.then((code) => reject(new Error(`server exited with ${code}`)));
  });
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'local', maxRetries: 0, timeout: 600_000 });
  const metrics = async (): Promise<string> => (await fetch(`${url}/metrics`)).text();
  return {
    model,
    timeToFirstToken: async () => histogram(await metrics(), 'personahub_llm_time_to_first_token_seconds'),
    tokensGenerated: async () => counter(await metrics(), 'personahub_llm_tokens_generated_total'),
    chatTemplate: async () => /personahub_llm_model_info\{[^}]*kind="llm",chat_template="true"\} 1/.test(await metrics()),
    pid: child.pid ?? 0,
    persona: async (subject: string, seed: number): Promise<string> => {
      const completion = await client.chat.completions.create({
        model: model.name, messages: personaMessages(subject), max_tokens: MAX_TOKENS, temperature: TEMPERATURE, seed,
        response_format: { type: 'json_schema', json_schema: { name: 'persona', schema: personaSchema, strict: true } },
      });
      return completion.choices[0]?.message.content ?? '';
    },
    /** A request exactly as the draft stage sends it through llm/client.ts's chatJson. */
    draft: async (messages: ChatMessage[], seed: number): Promise<{ text: string; completionTokens: number; finishReason: string }> => {
      const completion = await client.chat.completions.create({
        model: model.name, messages, max_tokens: DRAFT_MAX_TOKENS, temperature: 0.7, seed,
        response_format: { type: 'json_schema', json_schema: { name: 'persona_draft', schema: DRAFT_OUTPUT_SCHEMA as unknown as Record<string, unknown>, strict: true } },
      });
      return { text: completion.choices[0]?.message.content ?? '', completionTokens: completion.usage?.completion_tokens ?? 0, finishReason: completion.choices[0]?.finish_reason ?? '' };
    },
    embed: async (input: string | string[]): Promise<number> => (await client.embeddings.create({ model: EMBEDDER, input })).data.length,
    stop: async (): Promise<number | null> => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/**
 * node-llama-cpp used directly, with the server's settings: same prompt, grammar, sampling, thread cap. A model
 * with a chat template is prompted through it (LlamaChat, as models/server/engine.ts does); one without gets the
 * server's few-shot rendering (LlamaCompletion).
 */
async function loadBare(modelsDir: string, modelPath: string) {
  const llama = await getLlama({ gpu: false, build: 'never' });
  // Same thread cap as the server (see models/server/engine.ts): the default oversubscribes 2 cores.
  llama.maxThreads = llama.cpuMathCores;
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({ contextSize: CONTEXT_SIZE, sequences: 1, threads: llama.cpuMathCores });
  const sequence = context.getSequence();
  const hasChatTemplate = typeof model.fileInfo.metadata.tokenizer?.chat_template === 'string';
  const chat = hasChatTemplate ? new LlamaChat({ contextSequence: sequence, chatWrapper: 'auto' }) : undefined;
  const completion = hasChatTemplate ? undefined : new LlamaCompletion({ contextSequence: sequence });
  const grammar = await llama.createGrammarForJsonSchema<GbnfJsonSchema>(boundJsonSchema(personaSchema).schema);
  const embeddingModel = await llama.loadModel({ modelPath: join(modelsDir, EMBEDDING_MODEL.file) });
  const embeddingContext = await embeddingModel.createEmbeddingContext({ threads: llama.cpuMathCores });
  return {
    hasChatTemplate,
    persona: async (subject: string, seed: number): Promise<{ text: string; ttftMs: number }> => {
      const begun = performance.now();
      let firstToken: number | undefined;
      const onToken = (): void => {
        firstToken ??= performance.now() - begun;
      };
      const options = { maxTokens: MAX_TOKENS, temperature: TEMPERATURE, seed, grammar, onToken };
      const text = chat !== undefined
        ? (await chat.generateResponse(toChatHistory(personaMessages(subject)), { ...options, customStopTriggers: [] })).response
        : (await (completion as LlamaCompletion).generateCompletionWithMeta(renderFewShotPrompt(personaMessages(subject)), {
          ...options, customStopTriggers: FEW_SHOT_STOP_TRIGGERS, disableContextShift: true, contextShiftSize: 1,
        })).response;
      return { text, ttftMs: firstToken ?? Number.NaN };
    },
    // Normalized as the server does, so both paths do the same work.
    embed: async (sentence: string): Promise<number[]> => normalize((await embeddingContext.getEmbeddingFor(sentence)).vector),
    dispose: async (): Promise<void> => {
      chat?.dispose();
      completion?.dispose();
      await context.dispose();
      await embeddingContext.dispose();
      await model.dispose();
      await embeddingModel.dispose();
      await llama.dispose();
    },
  };
}

/** Wall time of `run`, in seconds. */
async function timed(run: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await run();
  return (performance.now() - started) / 1000;
}

const round = (value: number, digits = 1): string => value.toFixed(digits);

/** Mode 1: the server's overhead over bare node-llama-cpp, for one text model. */
async function overheadBench(modelsDir: string): Promise<void> {
  const model = modelChoice(modelsDir, args.model);
  const personaCount = Number(args.personas ?? '10');
  const maxQueue = Number(args.queue);
  const sentenceList = sentences(Number(args.sentences));
  console.log(`llm server bench: ${model.name}, ${personaCount} personas (max_tokens ${MAX_TOKENS}, temperature ${TEMPERATURE}), ${sentenceList.length} sentences, queue ${maxQueue}, ${process.version}`);

  const server = await startServer(modelsDir, model, maxQueue);
  const bare = await loadBare(modelsDir, model.path);
  // Warm-up on both paths: the first evaluation of the few-shot prefix (kept as the cold time to
  // first token), page cache, JIT.
  const cold = await bare.persona('a doctor in Cairo', 999);
  await server.persona('a doctor in Cairo', 999);
  await server.embed(sentenceList.slice(0, 5));
  for (const sentence of sentenceList.slice(0, 5)) await bare.embed(sentence);
  const idleRss = rssMiB(server.pid);
  // Peak RSS of the server per phase, to tell what a full queue adds over serving one at a time.
  let phase: 'sequential' | 'burst' = 'sequential';
  const peakRss = { sequential: idleRss, burst: idleRss };
  const sampler = setInterval(() => {
    peakRss[phase] = Math.max(peakRss[phase], rssMiB(server.pid));
  }, 50);

  // The two paths alternate request by request, so load from other processes on the machine falls
  // on both alike. Each keeps its own context sequence, so each keeps its prefix cached.
  const ttftBefore = await server.timeToFirstToken();
  let serverPersonaSeconds = 0;
  let barePersonaSeconds = 0;
  const serverOutputs: string[] = [];
  const bareOutputs: string[] = [];
  const warmTtfts: number[] = [];
  for (let i = 0; i < personaCount; i++) {
    const subject = SUBJECTS[i % SUBJECTS.length] ?? 'a person';
    serverPersonaSeconds += await timed(async () => serverOutputs.push(await server.persona(subject, i + 1)));
    barePersonaSeconds += await timed(async () => {
      const { text, ttftMs } = await bare.persona(subject, i + 1);
      bareOutputs.push(text);
      warmTtfts.push(ttftMs);
    });
  }

  const ttftAfter = await server.timeToFirstToken();
  let serverBatchedSeconds = 0;
  let serverSingleSeconds = 0;
  let bareEmbeddingSeconds = 0;
  for (let i = 0; i < sentenceList.length; i += EMBEDDING_BATCH) {
    const batch = sentenceList.slice(i, i + EMBEDDING_BATCH);
    serverBatchedSeconds += await timed(() => server.embed(batch));
    serverSingleSeconds += await timed(async () => {
      for (const sentence of batch) await server.embed(sentence);
    });
    bareEmbeddingSeconds += await timed(async () => {
      for (const sentence of batch) await bare.embed(sentence);
    });
  }
  const bareChat = bare.hasChatTemplate;
  await bare.dispose();

  // Full queue: one running, maxQueue waiting, and a few more that must be refused.
  phase = 'burst';
  peakRss.burst = rssMiB(server.pid);
  const burst = await Promise.allSettled(Array.from({ length: maxQueue + 4 }, (_, i) => server.persona(SUBJECTS[i % SUBJECTS.length] ?? 'a person', 500 + i)));
  clearInterval(sampler);
  const refused = burst.filter((outcome) => outcome.status === 'rejected' && outcome.reason instanceof OpenAI.RateLimitError).length;
  const exitCode = await server.stop();

  const serverPpm = (personaCount / serverPersonaSeconds) * 60;
  const barePpm = (personaCount / barePersonaSeconds) * 60;
  const identical = serverOutputs.filter((output, i) => output === bareOutputs[i]).length;
  const serverEps = sentenceList.length / serverBatchedSeconds;
  const serverSingleEps = sentenceList.length / serverSingleSeconds;
  const bareEps = sentenceList.length / bareEmbeddingSeconds;
  const overhead = (bareRate: number, serverRate: number): string => `${round(((bareRate - serverRate) / bareRate) * 100)}%`;
  const meanWarmTtft = warmTtfts.reduce((a, b) => a + b, 0) / warmTtfts.length;
  const meanServerTtft = (ttftAfter.sum - ttftBefore.sum) / (ttftAfter.count - ttftBefore.count);

  console.log('');
  console.log(`personas (chat completion, json_schema grammar, ${bareChat ? "the model's chat template" : 'few-shot transcript'}; paths alternate request by request)`);
  console.log(`  server (HTTP + openai SDK): ${round(serverPpm)} personas/min  (${round(serverPersonaSeconds)} s, ${serverOutputs.filter(isValidPersona).length}/${personaCount} schema-valid)`);
  console.log(`  bare node-llama-cpp loop:   ${round(barePpm)} personas/min  (${round(barePersonaSeconds)} s, ${bareOutputs.filter(isValidPersona).length}/${personaCount} schema-valid)`);
  console.log(`  server overhead: ${overhead(barePpm, serverPpm)}; identical outputs: ${identical}/${personaCount}`);
  console.log(`  time to first token: bare cold ${round(cold.ttftMs, 0)} ms, bare with cached prefix ${round(meanWarmTtft, 0)} ms, server with cached prefix ${round(meanServerTtft * 1000, 0)} ms (from its histogram)`);
  console.log('embeddings');
  console.log(`  server, batches of ${EMBEDDING_BATCH}: ${round(serverEps)} embeddings/s`);
  console.log(`  server, one per request: ${round(serverSingleEps)} embeddings/s`);
  console.log(`  bare embedding context:  ${round(bareEps)} embeddings/s`);
  console.log(`  server overhead: batched ${overhead(bareEps, serverEps)}, one per request ${overhead(bareEps, serverSingleEps)}`);
  console.log('server memory');
  console.log(`  RSS idle (both models loaded, warmed up): ${round(idleRss, 0)} MiB`);
  console.log(`  peak serving one request at a time: ${round(peakRss.sequential, 0)} MiB`);
  console.log(`  peak under a full queue (${burst.length} concurrent requests, ${refused} refused with 429): ${round(peakRss.burst, 0)} MiB`);
  console.log(`  exit code after SIGTERM: ${exitCode}`);
}

/** What validation's text checks make of one draft: as written, after a repair, or rejected (with reasons). */
interface DraftOutcome {
  model: string;
  seed: string;
  description: string;
  seconds: number;
  completionTokens: number;
  finishReason: string;
  outcome: 'passed' | 'repaired' | 'rejected' | 'invalid';
  detail: string[];
}

/** Mode 2: the local text models side by side on the draft stage's own requests. */
async function draftBench(modelsDir: string): Promise<void> {
  const models = args.models.split(',').map((m) => modelChoice(modelsDir, m.trim()));
  const count = Number(args.personas ?? '24');
  const lines = readFileSync(fileURLToPath(new URL('../data/seeds.jsonl', import.meta.url)), 'utf8').split('\n');
  // As `personahub demo` ingests them: source = the file's name, the first N valid lines.
  const from = Number(args.from);
  const seeds = parseSeedLines(lines, { source: 'seeds.jsonl', format: 'jsonl', maxChars: config.maxSeedChars, now: 0 }).seeds.slice(from, from + count);
  console.log(`draft bench: ${models.map((m) => m.name).join(' vs ')}, ${seeds.length} seeds of data/seeds.jsonl from the ${from + 1}th, prompt ${PROMPT_VERSION}, one request at a time, models alternating, ${process.version}`);
  // Other work on the machine slows every model alike (they alternate), but it moves the absolute figures.
  const loadAtStart = loadavg()[0] ?? 0;

  const servers: Awaited<ReturnType<typeof startServer>>[] = [];
  for (const model of models) servers.push(await startServer(modelsDir, model, 8));
  const loadedRss = servers.map((s) => rssMiB(s.pid));
  const peakRss = [...loadedRss];
  const sampler = setInterval(() => {
    servers.forEach((s, i) => {
      peakRss[i] = Math.max(peakRss[i] ?? 0, rssMiB(s.pid));
    });
  }, 50);
  // Warm-up: the few-shot prefix enters each server's KV cache, as it would after the stage's first request.
  const warmSeed = seeds.at(-1);
  if (warmSeed === undefined) throw new Error('no seeds');
  const cold: number[] = [];
  for (const server of servers) {
    const before = await server.timeToFirstToken();
    await server.draft(buildDraftMessages(sampleAttributes(warmSeed.id, 99), warmSeed.text), 1);
    const after = await server.timeToFirstToken();
    cold.push(after.sum - before.sum);
  }
  const ttftBefore = await Promise.all(servers.map((s) => s.timeToFirstToken()));
  const tokensBefore = await Promise.all(servers.map((s) => s.tokensGenerated()));

  const outcomes: DraftOutcome[][] = servers.map(() => []);
  const drafts: { model: string; seedText: string; persona: Persona }[] = [];
  for (const seed of seeds) {
    const id = personaId(seed.id, 0);
    const attributes = sampleAttributes(seed.id, 0);
    const messages = buildDraftMessages(attributes, seed.text);
    const sampleSeed = Number.parseInt(id.slice(0, 8), 16);
    for (const [i, server] of servers.entries()) {
      let reply = { text: '', completionTokens: 0, finishReason: '' };
      const seconds = await timed(async () => {
        reply = await server.draft(messages, sampleSeed);
      });
      const base = { model: server.model.name, seed: seed.text.slice(0, 60), seconds, completionTokens: reply.completionTokens, finishReason: reply.finishReason };
      let description: string;
      try {
        description = String((JSON.parse(reply.text) as { description?: unknown }).description ?? '').trim();
      } catch {
        outcomes[i]?.push({ ...base, description: reply.text, outcome: 'invalid', detail: ['not JSON'] });
        continue;
      }
      // The draft stage's own check (processors/draft: 40-600 characters after trimming).
      if (description.length < 40 || description.length > 600) {
        outcomes[i]?.push({ ...base, description, outcome: 'invalid', detail: [`${description.length} characters`] });
        continue;
      }
      const persona: Persona = {
        id, version: 1, seedId: seed.id, generationIndex: 0,
        name: attributes.name, age: attributes.age, occupation: attributes.occupation, locale: attributes.locale,
        traits: attributes.traits, description, seedRelation: attributes.seedRelation,
        // The real time: validation reads the creation year (a career "since 1992" is checked against it).
        provenance: { mode: 'LLM', model: server.model.name, promptVersion: PROMPT_VERSION, createdAt: Date.now(), samplerProfile: null, samplerProfileVersion: null },
        lineage: lineageOf(seed), demographics: null, facets: null, enrichment: null, validation: null,
      };
      drafts.push({ model: server.model.name, seedText: seed.text, persona });
      // The text checks only: enrichment (modalities, embedding) and duplicate checks come later in the pipeline.
      const checked = checkPersona(persona, { dimensions: EMBEDDING_MODEL.dimensions, maxDescriptionChars: config.maxDescriptionChars, seedText: seed.text });
      const reasons = checked.reasons.filter((r) => r.code !== 'NOT_ENRICHED').map((r) => r.code);
      const outcome = reasons.length > 0 ? 'rejected' : checked.repaired.length > 0 ? 'repaired' : 'passed';
      outcomes[i]?.push({ ...base, description: checked.persona.description, outcome, detail: reasons.length > 0 ? reasons : checked.repaired });
    }
  }
  clearInterval(sampler);
  const ttftAfter = await Promise.all(servers.map((s) => s.timeToFirstToken()));
  const tokensAfter = await Promise.all(servers.map((s) => s.tokensGenerated()));
  const chatTemplates = await Promise.all(servers.map((s) => s.chatTemplate()));
  const exitCodes = [];
  for (const server of servers) exitCodes.push(await server.stop());

  const tally = (list: readonly string[]): string => {
    const counts = new Map<string, number>();
    for (const x of list) counts.set(x, (counts.get(x) ?? 0) + 1);
    return [...counts].map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  };
  console.log(`\nload average (1 min) at the start ${round(loadAtStart, 2)}, at the end ${round(loadavg()[0] ?? 0, 2)}`);
  for (const [i, server] of servers.entries()) {
    const list = outcomes[i] ?? [];
    const seconds = list.reduce((sum, o) => sum + o.seconds, 0);
    const by = (kind: DraftOutcome['outcome']): DraftOutcome[] => list.filter((o) => o.outcome === kind);
    const ttft = ((ttftAfter[i]?.sum ?? 0) - (ttftBefore[i]?.sum ?? 0)) / ((ttftAfter[i]?.count ?? 0) - (ttftBefore[i]?.count ?? 0));
    const tokens = (tokensAfter[i] ?? 0) - (tokensBefore[i] ?? 0);
    console.log(`${server.model.name} (${chatTemplates[i] ? 'chat template' : 'few-shot transcript'})`);
    console.log(`  ${round((list.length / seconds) * 60)} personas/min  (${list.length} in ${round(seconds)} s, ${round(seconds / list.length, 2)} s each; ${round(tokens / list.length, 0)} tokens generated per persona, ${round(tokens / seconds)} tokens/s overall)`);
    console.log(`  time to first token: cold ${round((cold[i] ?? 0) * 1000, 0)} ms (prompt not cached), ${round(ttft * 1000, 0)} ms mean with the few-shot prefix cached`);
    console.log(`  finish: ${tally(list.map((o) => o.finishReason))}`);
    console.log(`  validation's text checks: passed as written ${by('passed').length}, after a repair ${by('repaired').length} (${tally(by('repaired').flatMap((o) => o.detail))}), rejected ${by('rejected').length} (${tally(by('rejected').flatMap((o) => o.detail))}), not a valid draft ${by('invalid').length}`);
    console.log(`  RSS: ${round(loadedRss[i] ?? 0, 0)} MiB loaded (text + embedding model), peak ${round(peakRss[i] ?? 0, 0)} MiB; exit code after SIGTERM: ${exitCodes[i]}`);
  }
  if (args.out !== undefined) {
    writeFileSync(args.out, drafts.map((d) => `${JSON.stringify(d)}\n`).join(''));
    console.log(`${drafts.length} drafts written to ${args.out}`);
  }
  if (args.show) {
    for (const [s, seed] of seeds.entries()) {
      console.log(`\n[${s + 1}] ${JSON.stringify(sampleAttributes(seed.id, 0))}\n    seed: ${seed.text.slice(0, 160)}`);
      for (const list of outcomes) {
        const o = list[s];
        if (o !== undefined) console.log(`  ${o.model} [${o.outcome}${o.detail.length > 0 ? `: ${o.detail.join(', ')}` : ''}] ${o.description}`);
      }
    }
  }
}

async function main(): Promise<void> {
  if (args.serve !== undefined) return runChildServer(args.serve);
  const modelsDir = args['models-dir'];
  if (args.draft) return draftBench(modelsDir);
  return overheadBench(modelsDir);
}

await main();

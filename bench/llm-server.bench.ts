/**
 * What the OpenAI-compatible model server costs over calling node-llama-cpp directly.
 *
 *   npx tsx bench/llm-server.bench.ts [--models-dir DIR] [--personas 10] [--sentences 200] [--queue 8]
 *
 * Starts `serveLlm` in a child process (as `personahub llm serve` runs it, so its RSS is its own) and
 * loads the same models with node-llama-cpp in this process. Then, alternating request by request so
 * that load from elsewhere on the machine falls on both alike:
 * - N persona requests through the openai SDK vs. a bare node-llama-cpp loop with the same prompt
 *   text, grammar, seeds and sampling options on one reused sequence (the two sample the same tokens,
 *   so their outputs are compared too);
 * - the sentences through the server in batches of 25 and one per request vs. a bare embedding context.
 * Finally it fills the server's queue and samples the child's RSS, then stops it with SIGTERM.
 * Prints personas/min and embeddings/s for each path and the server's overhead in percent.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { getLlama, LlamaCompletion, type GbnfJsonSchema } from 'node-llama-cpp';
import OpenAI from 'openai';
import { normalize } from '../core/vector.ts';
import { EMBEDDING_MODEL, LLM_MODEL } from '../models/weights/fetch.ts';
import { boundJsonSchema } from '../models/server/json-schema-grammar.ts';
import type { ChatMessage } from '../core/chat.ts';
import { FEW_SHOT_STOP_TRIGGERS, renderFewShotPrompt } from '../models/server/prompt.ts';
import { serveLlm, type LlmServerOptions } from '../models/server/server.ts';
import { createLogger } from '../core/logger.ts';
import { PERSONA_JSON_SCHEMA } from '../test/helpers/persona-schema.ts';

const { values: args } = parseArgs({
  options: {
    'models-dir': { type: 'string', default: join(homedir(), '.cache', 'personahub', 'models') },
    personas: { type: 'string', default: '10' },
    sentences: { type: 'string', default: '200' },
    queue: { type: 'string', default: '8' },
    serve: { type: 'string' },
  },
});

const LLM = 'gemma-3-270m';
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

function sentences(count: number): string[] {
  const roles = ['nurse', 'teacher', 'engineer', 'farmer', 'chef', 'pilot', 'librarian', 'painter'];
  const places = ['Manila', 'Lisbon', 'Nairobi', 'Osaka', 'Quito', 'Oslo', 'Austin', 'Pune'];
  const habits = ['plays chess on weekends', 'runs marathons', 'keeps bees', 'restores old radios', 'volunteers at a shelter'];
  return Array.from({ length: count }, (_, i) =>
    `A ${roles[i % roles.length]} in ${places[(i * 3) % places.length]} who ${habits[(i * 7) % habits.length]} and has done so for ${2 + (i % 17)} years.`);
}

function serverOptions(modelsDir: string, maxQueue: number): Omit<LlmServerOptions, 'logger'> & { host: string; port: number } {
  return {
    host: '127.0.0.1', port: 0,
    llmModelPath: join(modelsDir, LLM_MODEL.file), llmModelName: LLM,
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
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match?.[1] === undefined ? 0 : Number(match[1]) / 1024;
}

/** Sum and count of a histogram in a Prometheus text exposition. */
function histogram(metrics: string, name: string): { sum: number; count: number } {
  const sum = new RegExp(`^${name}_sum\\{[^}]*\\} ([\\d.e+-]+)$`, 'm').exec(metrics)?.[1];
  const count = new RegExp(`^${name}_count\\{[^}]*\\} (\\d+)$`, 'm').exec(metrics)?.[1];
  return { sum: Number(sum ?? Number.NaN), count: Number(count ?? Number.NaN) };
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

async function startServer(modelsDir: string, maxQueue: number) {
  const script = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, ['--import', 'tsx', script, '--serve', JSON.stringify(serverOptions(modelsDir, maxQueue))], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const parsed = JSON.parse(line) as { url?: string };
      if (parsed.url !== undefined) resolve(parsed.url);
    });
    void exited.then((code) => reject(new Error(`server exited with ${code}`)));
  });
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'local', maxRetries: 0, timeout: 600_000 });
  return {
    timeToFirstToken: async () => histogram(await (await fetch(`${url}/metrics`)).text(), 'personahub_llm_time_to_first_token_seconds'),
    pid: child.pid ?? 0,
    persona: async (subject: string, seed: number): Promise<string> => {
      const completion = await client.chat.completions.create({
        model: LLM, messages: personaMessages(subject), max_tokens: MAX_TOKENS, temperature: TEMPERATURE, seed,
        response_format: { type: 'json_schema', json_schema: { name: 'persona', schema: personaSchema, strict: true } },
      });
      return completion.choices[0]?.message.content ?? '';
    },
    embed: async (input: string | string[]): Promise<number> => (await client.embeddings.create({ model: EMBEDDER, input })).data.length,
    stop: async (): Promise<number | null> => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

/** node-llama-cpp used directly, with the server's settings: same prompt text, grammar, sampling, thread cap. */
async function loadBare(modelsDir: string) {
  const llama = await getLlama({ gpu: false, build: 'never' });
  // Same thread cap as the server (see models/engine.ts): the default oversubscribes 2 cores.
  llama.maxThreads = llama.cpuMathCores;
  const model = await llama.loadModel({ modelPath: join(modelsDir, LLM_MODEL.file) });
  const context = await model.createContext({ contextSize: CONTEXT_SIZE, sequences: 1, threads: llama.cpuMathCores });
  const completion = new LlamaCompletion({ contextSequence: context.getSequence() });
  const grammar = await llama.createGrammarForJsonSchema<GbnfJsonSchema>(boundJsonSchema(personaSchema).schema);
  const embeddingModel = await llama.loadModel({ modelPath: join(modelsDir, EMBEDDING_MODEL.file) });
  const embeddingContext = await embeddingModel.createEmbeddingContext({ threads: llama.cpuMathCores });
  return {
    persona: async (subject: string, seed: number): Promise<{ text: string; ttftMs: number }> => {
      const begun = performance.now();
      let firstToken: number | undefined;
      const { response } = await completion.generateCompletionWithMeta(renderFewShotPrompt(personaMessages(subject)), {
        maxTokens: MAX_TOKENS, temperature: TEMPERATURE, seed, grammar, customStopTriggers: FEW_SHOT_STOP_TRIGGERS,
        disableContextShift: true, contextShiftSize: 1,
        onToken: () => {
          firstToken ??= performance.now() - begun;
        },
      });
      return { text: response, ttftMs: firstToken ?? Number.NaN };
    },
    // Normalized as the server does, so both paths do the same work.
    embed: async (sentence: string): Promise<number[]> => normalize((await embeddingContext.getEmbeddingFor(sentence)).vector),
    dispose: async (): Promise<void> => {
      completion.dispose();
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

async function main(): Promise<void> {
  if (args.serve !== undefined) return runChildServer(args.serve);
  const modelsDir = args['models-dir'];
  const personaCount = Number(args.personas);
  const maxQueue = Number(args.queue);
  const sentenceList = sentences(Number(args.sentences));
  console.log(`llm server bench: ${personaCount} personas (max_tokens ${MAX_TOKENS}, temperature ${TEMPERATURE}), ${sentenceList.length} sentences, queue ${maxQueue}, ${process.version}`);

  const server = await startServer(modelsDir, maxQueue);
  const bare = await loadBare(modelsDir);
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
  console.log('personas (chat completion, json_schema grammar, few-shot prompt; paths alternate request by request)');
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

await main();

/**
 * The local model server over real HTTP with the real models and the openai SDK as client: the
 * contract the pipeline relies on (schema-valid structured output, determinism, embeddings, the
 * OpenAI error shapes) and the operational behaviour (429 with Retry-After, 504 on deadline,
 * graceful SIGTERM).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import OpenAI from 'openai';
import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import type { CompletionCreateParamsNonStreaming } from 'openai/resources/completions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { EMBEDDING_MODEL } from '../../../models/weights/fetch.ts';
import { readGgufHeader, type GgufValue } from '../../../models/weights/gguf.ts';
import { buildLlmServer, type LlmServer } from '../../../models/server/server.ts';
import { createLogger } from '../../../core/logger.ts';
import { PERSONA_JSON_SCHEMA } from '../../helpers/persona-schema.ts';
import { loadConfig } from '../../../config/index.ts';
import { TEST_LLM, TEST_LLM_SPEC } from './test-llm.ts';

// The configured models directory (PERSONAHUB_MODELS_DIR, or under PERSONAHUB_CACHE_DIR), where the global setup fetched them.
const { modelsDir } = loadConfig();
// The suite's text model (test-llm.ts: the small Qwen2.5-Coder-0.5B-Instruct), an instruct model with a chat template.
const llmModelPath = join(modelsDir, TEST_LLM_SPEC.file);
const embeddingModelPath = join(modelsDir, EMBEDDING_MODEL.file);
// The suite's global setup fetches both models; a missing one is a failure, never a silent skip.
if (!existsSync(llmModelPath) || !existsSync(embeddingModelPath)) {
  throw new Error(`models missing in ${modelsDir}: run \`./personahub models fetch\``);
}
const LLM = TEST_LLM;
/** The metrics label of the text model, as a regular expression (the name has dots). */
const LLM_LABEL = `model="${LLM.replaceAll('.', '\\.')}"`;
const EMBEDDER = 'all-minilm-l6-v2';

const personaSchema = PERSONA_JSON_SCHEMA;

/** The same contract, checked independently of the server's own schema handling. */
const Persona = z.strictObject({
  name: z.string().min(1).max(40),
  age: z.number().int().min(18).max(90),
  occupation: z.string().min(1).max(60),
  description: z.string().min(1).max(300),
});

const fewShot: ChatCompletionMessageParam[] = [
  { role: 'system', content: 'Write one realistic persona as JSON for the person described.' },
  { role: 'user', content: 'a nurse in Manila' },
  {
    role: 'assistant',
    content: '{"name": "Maria Santos", "age": 34, "occupation": "pediatric nurse", "description": "Maria works night shifts at a children\'s hospital in Manila and coaches chess on weekends."}',
  },
];

const personaFormat = { type: 'json_schema', json_schema: { name: 'persona', schema: personaSchema, strict: true } } as const;

function personaRequest(subject: string, seed: number, temperature: number) {
  return {
    model: LLM,
    messages: [...fewShot, { role: 'user', content: subject } as const],
    max_tokens: 160,
    temperature,
    seed,
    response_format: personaFormat,
  };
}

/** Requests whose body contains this are held at the start of their generation until released. */
const HOLD = 'HOLD-IN-TEST';

/**
 * A `beforeGeneration` hook that holds every request carrying HOLD in its generation slot until
 * `release()` or until the request's signal aborts (deadline, client gone); the engine then runs
 * with that signal, so an aborted request is aborted by the engine itself. With it a test controls
 * which request is running, and for how long, whatever the machine's speed.
 */
function holdingHook() {
  const releases = new Set<() => void>();
  let held = 0;
  const watchers = new Set<{ count: number; resolve: () => void }>();
  return {
    beforeGeneration(body: unknown, signal: AbortSignal | undefined): Promise<void> {
      if (!JSON.stringify(body).includes(HOLD)) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const release = (): void => {
          releases.delete(release);
          signal?.removeEventListener('abort', release);
          resolve();
        };
        signal?.addEventListener('abort', release, { once: true });
        releases.add(release);
        held += 1;
        for (const w of [...watchers]) if (held >= w.count) { watchers.delete(w); w.resolve(); }
      });
    },
    /** Resolves once `count` requests in all have been held. */
    whenHeld(count = 1): Promise<void> {
      return held >= count ? Promise.resolve() : new Promise((resolve) => watchers.add({ count, resolve }));
    },
    release(): number {
      const all = [...releases];
      for (const r of all) r();
      return all.length;
    },
  };
}

/** Polls the server's metrics until `text` appears; the test's timeout is the only limit. */
async function untilMetrics(baseUrl: string, text: string): Promise<void> {
  while (!(await (await fetch(`${baseUrl}/metrics`)).text()).includes(text)) await new Promise((resolve) => setTimeout(resolve, 20));
}

async function apiError(promise: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof OpenAI.APIError) return error;
    throw error;
  }
  throw new Error('expected the request to fail');
}

describe('llm server over HTTP', () => {
  let server: LlmServer;
  let baseUrl: string;
  let client: OpenAI;
  const holds = holdingHook();

  beforeAll(async () => {
    server = await buildLlmServer({
      beforeGeneration: holds.beforeGeneration,
      llmModelPath,
      llmModelName: LLM,
      embeddingModelPath, embeddingModelName: EMBEDDER,
      contextSize: 2048,
      maxQueue: 1,
      requestTimeoutMs: 120_000,
      maxPromptTokens: 1024,
      maxTokensCap: 512,
      logger: createLogger({ level: 'warn', name: 'llm-server-test' }),
    });
    baseUrl = await server.app.listen({ host: '127.0.0.1', port: 0 });
    // No retries: the SDK would otherwise honour our 429s and hide them.
    client = new OpenAI({ baseURL: `${baseUrl}/v1`, apiKey: 'local', maxRetries: 0 });
  });

  afterAll(async () => {
    await server?.close();
  });

  it('answers health, readiness and the model list', async () => {
    expect((await fetch(`${baseUrl}/health`)).status).toBe(200);
    const ready = await fetch(`${baseUrl}/ready`);
    expect(ready.status).toBe(200);
    const models = await client.models.list();
    expect(models.data.map((model) => model.id)).toEqual([LLM, EMBEDDER]);
    expect((await client.models.retrieve(LLM)).object).toBe('model');
  });

  it('returns schema-valid persona JSON five times in a row with different seeds', async () => {
    const subjects = ['a farmer in Kenya', 'a student in Tokyo', 'a chef in Lima', 'a software engineer in Berlin', 'a retired teacher in Ohio'];
    for (const [i, subject] of subjects.entries()) {
      const completion = await client.chat.completions.create(personaRequest(subject, 100 + i, 0.8));
      const choice = completion.choices[0];
      expect(choice?.finish_reason).toBe('stop');
      const parsed = Persona.safeParse(JSON.parse(choice?.message.content ?? ''));
      expect(parsed.success, `${subject}: ${choice?.message.content}`).toBe(true);
      expect(completion.model).toBe(LLM);
      expect(completion.object).toBe('chat.completion');
      expect(completion.usage?.prompt_tokens).toBeGreaterThan(50);
      expect(completion.usage?.completion_tokens).toBeGreaterThan(10);
      expect(completion.usage?.total_tokens).toBe((completion.usage?.prompt_tokens ?? 0) + (completion.usage?.completion_tokens ?? 0));
    }
  });

  it('is deterministic for the same seed at temperature 0', async () => {
    const first = await client.chat.completions.create(personaRequest('a fisherman in Norway', 7, 0));
    const second = await client.chat.completions.create(personaRequest('a fisherman in Norway', 7, 0));
    expect(second.choices[0]?.message.content).toBe(first.choices[0]?.message.content);
    expect(Persona.safeParse(JSON.parse(first.choices[0]?.message.content ?? '')).success).toBe(true);
  });

  it('bounds free-form JSON for response_format json_object', async () => {
    const completion = await client.chat.completions.create({
      model: LLM,
      messages: [...fewShot, { role: 'user', content: 'a pilot in Dubai' }],
      max_tokens: 200,
      temperature: 0,
      response_format: { type: 'json_object' },
    });
    const content = completion.choices[0]?.message.content ?? '';
    expect(typeof JSON.parse(content)).toBe('object');
  });

  it('completes raw prompts on /v1/completions, with a schema as an extension', async () => {
    const plain = await client.completions.create({ model: LLM, prompt: 'The capital of France is', max_tokens: 8, temperature: 0 });
    expect(plain.object).toBe('text_completion');
    expect(plain.choices[0]?.text.length).toBeGreaterThan(0);
    expect(plain.choices[0]?.finish_reason).toBe('length');
    expect(plain.usage?.completion_tokens).toBe(8);

    const structured: CompletionCreateParamsNonStreaming & { response_format: typeof personaFormat } = {
      model: LLM,
      prompt: 'Persona of a baker in Lyon as JSON:\n',
      max_tokens: 160,
      temperature: 0,
      response_format: personaFormat,
    };
    const completion = await client.completions.create(structured);
    expect(Persona.safeParse(JSON.parse(completion.choices[0]?.text ?? '')).success).toBe(true);
  });

  it('stops at stop sequences and applies default bounds it reports in a header', async () => {
    const response = await fetch(`${baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        messages: [{ role: 'user', content: 'name a colour' }],
        max_tokens: 120,
        temperature: 0,
        response_format: { type: 'json_schema', json_schema: { name: 'c', schema: { type: 'object', properties: { colour: { type: 'string' } } } } },
      }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-personahub-schema-defaults')).toBe('/properties/colour');
    const body = await response.json() as { choices: { message: { content: string } }[] };
    const colour: unknown = JSON.parse(body.choices[0]?.message.content ?? '').colour;
    expect(typeof colour === 'string' && colour.length <= 256).toBe(true);

    const stopped = await client.completions.create({ model: LLM, prompt: 'One, two, three, four,', max_tokens: 30, temperature: 0, stop: [','] });
    expect(stopped.choices[0]?.text).not.toContain(',');
    expect(stopped.choices[0]?.finish_reason).toBe('stop');
  });

  it('embeds single and batched inputs as 384-dim unit vectors', async () => {
    const single = await client.embeddings.create({ model: EMBEDDER, input: 'A man is playing a guitar.', encoding_format: 'float' });
    expect(single.data).toHaveLength(1);
    expect(single.data[0]?.embedding).toHaveLength(EMBEDDING_MODEL.dimensions);
    expect(single.model).toBe(EMBEDDER);
    expect(single.usage.prompt_tokens).toBeGreaterThan(0);

    const inputs = ['A man is playing a guitar.', 'Someone is strumming a guitar.', 'The central bank raised interest rates.'];
    // Without encoding_format the SDK asks for base64 and decodes it: both wire forms are covered.
    const batch = await client.embeddings.create({ model: EMBEDDER, input: inputs });
    expect(batch.data.map((item) => item.index)).toEqual([0, 1, 2]);
    const vectors = batch.data.map((item) => item.embedding);
    for (const vector of vectors) {
      expect(vector).toHaveLength(EMBEDDING_MODEL.dimensions);
      expect(Math.hypot(...vector)).toBeCloseTo(1, 4);
    }
    const dot = (a: number[], b: number[]): number => a.reduce((sum, value, i) => sum + value * (b[i] ?? 0), 0);
    const [guitar, strumming, bank] = vectors as [number[], number[], number[]];
    expect(dot(guitar, single.data[0]?.embedding ?? [])).toBeCloseTo(1, 4);
    expect(dot(guitar, strumming)).toBeGreaterThan(0.5);
    expect(dot(guitar, bank)).toBeLessThan(0.3);
  });

  it('refuses an oversized prompt and too large a max_tokens with 400', async () => {
    const oversized = await apiError(client.completions.create({ model: LLM, prompt: 'persona '.repeat(3000), max_tokens: 5 }));
    expect(oversized.status).toBe(400);
    expect(oversized.code).toBe('context_length_exceeded');
    expect(oversized.message).toMatch(/the prompt is \d+ tokens; this server accepts at most 1024/);

    const tooMany = await apiError(client.chat.completions.create({ model: LLM, messages: [{ role: 'user', content: 'hi' }], max_tokens: 100_000 }));
    expect(tooMany.status).toBe(400);
    expect(tooMany.message).toContain('at most 512');
  });

  it('answers 404 model_not_found for an unknown model and accepts a missing one', async () => {
    const unknown = await apiError(client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }));
    expect(unknown.status).toBe(404);
    expect(unknown.code).toBe('model_not_found');
    expect(unknown.message).toContain(`'gpt-4o'`);
    const wrongKind = await apiError(client.embeddings.create({ model: LLM, input: 'x' }));
    expect(wrongKind.status).toBe(404);
    const response = await fetch(`${baseUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'Hello', max_tokens: 2 }),
    });
    expect(response.status).toBe(200);
    expect((await response.json() as { model: string }).model).toBe(LLM);
  });

  it('refuses a schema the grammar cannot express with 400 naming the keyword', async () => {
    for (const [keyword, schema] of [
      ['$ref', { $ref: '#/$defs/persona', $defs: { persona: personaSchema } }],
      ['patternProperties', { type: 'object', properties: {}, patternProperties: { '^x-': { type: 'string' } } }],
      ['minimum', { type: 'object', properties: { score: { type: 'number', minimum: 0, maximum: 1 } } }],
    ] as const) {
      const error = await apiError(client.chat.completions.create({
        model: LLM,
        messages: [{ role: 'user', content: 'hi' }],
        max_tokens: 5,
        response_format: { type: 'json_schema', json_schema: { name: 'x', schema } },
      }));
      expect(error.status).toBe(400);
      expect(error.code).toBe('unsupported_schema');
      expect(error.message).toContain(`'${keyword}'`);
    }
  });

  it('refuses invalid bodies with 400 in the OpenAI error shape', async () => {
    const malformed = await fetch(`${baseUrl}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"messages": [' });
    expect(malformed.status).toBe(400);
    const body = await malformed.json() as { error: { message: string; type: string; code: string } };
    expect(body.error.type).toBe('invalid_request_error');
    expect(body.error.message).toMatch(/JSON/);

    const empty = await apiError(client.chat.completions.create({ model: LLM, messages: [], max_tokens: 5 }));
    expect(empty.status).toBe(400);
    expect(empty.param).toBe('messages');

    const badTemperature = await apiError(client.chat.completions.create({ model: LLM, messages: [{ role: 'user', content: 'x' }], temperature: 5 }));
    expect(badTemperature.status).toBe(400);
    expect(badTemperature.param).toBe('temperature');

    const streaming = await fetch(`${baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }], stream: true }),
    });
    expect(streaming.status).toBe(400);
    expect((await streaming.json() as { error: { message: string } }).error.message).toContain('stream is not supported');

    const unknownRoute = await fetch(`${baseUrl}/v1/images/generations`, { method: 'POST' });
    expect(unknownRoute.status).toBe(404);
  });

  it('answers 429 with Retry-After when the queue is full', async () => {
    // maxQueue 1: one request runs (held in its slot until released), one waits, the rest are refused at once.
    const request = (subject: string, i: number) => client.chat.completions.create(personaRequest(subject, i, 0.8)).then(() => null, (error: unknown) => error);
    const running = request(`a painter in city 0 ${HOLD}`, 0);
    await holds.whenHeld(1);
    const waiting = request('a painter in city 1', 1);
    await untilMetrics(baseUrl, 'personahub_llm_queue_depth{queue="generation"} 1');
    const refused = await Promise.all([request('a painter in city 2', 2), request('a painter in city 3', 3)]);
    expect(holds.release()).toBe(1);
    expect(await Promise.all([running, waiting])).toEqual([null, null]);
    for (const error of refused) {
      if (!(error instanceof OpenAI.RateLimitError)) throw new Error(`expected a 429, got ${String(error)}`);
      expect(error.status).toBe(429);
      expect(error.code).toBe('queue_full');
      expect(error.type).toBe('rate_limit_error');
      expect(Number(error.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }
  }, 300_000);

  it('exposes its metrics', async () => {
    const text = await (await fetch(`${baseUrl}/metrics`)).text();
    expect(text).toContain('personahub_llm_queue_depth{queue="generation"} 0');
    expect(text).toContain('personahub_llm_requests_total{route="/v1/chat/completions",status="200"}');
    expect(text).toContain('personahub_llm_requests_total{route="/v1/chat/completions",status="429"} 2');
    expect(text).toContain('personahub_llm_requests_total{route="/v1/completions",status="400"}');
    expect(text).toMatch(/personahub_llm_request_duration_seconds_bucket\{le="[^"]+",route="\/v1\/chat\/completions"\}/);
    expect(text).toMatch(new RegExp(`personahub_llm_tokens_generated_total\\{${LLM_LABEL}\\} \\d+`));
    // The instruct model's GGUF carries a chat template, so the server took the template path.
    expect(text).toContain(`personahub_llm_model_info{model="${LLM}",kind="llm",chat_template="true"} 1`);
    expect(text).toContain('personahub_llm_generation_tokens_per_second_bucket');
    expect(text).toContain('personahub_llm_time_to_first_token_seconds_bucket');
    expect(text).toContain('personahub_llm_process_resident_memory_bytes');
    expect(text).toMatch(/personahub_llm_embedding_inputs_total\{model="all-minilm-l6-v2"\} [1-9]/);
  });
});

/**
 * `serveLlm` in a child process, so SIGTERM can be sent for real. The child's `beforeGeneration`
 * hook holds requests that carry HOLD until the child gets SIGUSR2 (a signal keeps no handle open,
 * so it never delays the exit) or the request's deadline passes, and prints `{"held":n}` when it
 * holds one: the tests decide which request is running and when it may go on, so no outcome
 * depends on how fast the machine generates.
 */
interface ServeProcess {
  child: ChildProcessWithoutNullStreams;
  baseUrl: string;
  client: OpenAI;
  lines: string[];
  exited: Promise<number | null>;
  /** Resolves once `count` requests in all have been held. */
  whenHeld(count: number): Promise<void>;
  stop(): Promise<void>;
}

async function startServeProcess(options: Record<string, unknown>): Promise<ServeProcess> {
  const scriptDir = await mkdtemp(join(tmpdir(), 'llm-serve-test-'));
  // .mts: outside the project there is no package.json saying ESM, and the script awaits at top level.
  const script = join(scriptDir, 'serve.mts');
  const serverUrl = pathToFileURL(fileURLToPath(new URL('../../../models/server/server.ts', import.meta.url))).href;
  const loggerUrl = pathToFileURL(fileURLToPath(new URL('../../../core/logger.ts', import.meta.url))).href;
  await writeFile(script, [
    `import { serveLlm } from ${JSON.stringify(serverUrl)};`,
    `import { createLogger } from ${JSON.stringify(loggerUrl)};`,
    'const releases = new Set();',
    'let held = 0;',
    'const beforeGeneration = (body, signal) => {',
    `  if (!JSON.stringify(body).includes(${JSON.stringify(HOLD)})) return Promise.resolve();`,
    '  return new Promise((resolve) => {',
    '    const release = () => { releases.delete(release); signal?.removeEventListener("abort", release); resolve(); };',
    '    signal?.addEventListener("abort", release, { once: true });',
    '    releases.add(release);',
    '    console.log(JSON.stringify({ held: ++held }));',
    '  });',
    '};',
    'process.on("SIGUSR2", () => { for (const release of [...releases]) release(); });',
    'const server = await serveLlm({ ...JSON.parse(process.argv[2]), beforeGeneration, logger: createLogger({ level: "warn" }) });',
    'console.log(JSON.stringify({ url: server.url }));',
    'await server.closed;',
    'console.log(JSON.stringify({ closed: true }));',
  ].join('\n'));
  const child = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify(options)], { cwd: fileURLToPath(new URL('../../..', import.meta.url)) });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stderr: string[] = [];
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  const lines: string[] = [];
  let held = 0;
  const watchers = new Set<{ count: number; resolve: () => void }>();
  const stdout = createInterface({ input: child.stdout });
  const baseUrl = await new Promise<string>((resolve, reject) => {
    stdout.on('line', (line) => {
      lines.push(line);
      const message = JSON.parse(line) as { url?: unknown; held?: unknown };
      if (typeof message.url === 'string') resolve(message.url);
      if (typeof message.held === 'number') {
        held = message.held;
        for (const w of [...watchers]) if (held >= w.count) { watchers.delete(w); w.resolve(); }
      }
    });
    void exited.then((code) => reject(new Error(`llm serve exited with ${code} before listening: ${stderr.join('')}`)));
  });
  return {
    child, baseUrl, lines, exited,
    client: new OpenAI({ baseURL: `${baseUrl}/v1`, apiKey: 'local', maxRetries: 0, timeout: 600_000 }),
    whenHeld: (count) => (held >= count ? Promise.resolve() : new Promise((resolve) => watchers.add({ count, resolve }))),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      await rm(scriptDir, { recursive: true, force: true });
    },
  };
}

const serveOptions = { host: '127.0.0.1', port: 0, llmModelPath, llmModelName: LLM, contextSize: 1024, maxQueue: 1, maxPromptTokens: 512, maxTokensCap: 512 };

describe('llm serve process: deadlines', () => {
  const requestTimeoutMs = 2000;
  let serve: ServeProcess;

  // No embedding model, for the 404 case.
  beforeAll(async () => {
    serve = await startServeProcess({ ...serveOptions, requestTimeoutMs });
  });

  afterAll(async () => {
    await serve?.stop();
  });

  it('answers 504 when a generation outlives the deadline, and aborts it', async () => {
    // Held in its slot until the deadline, then handed to the engine with the aborted signal: it
    // cannot finish in time on any machine, and had the engine ignored the abort, 512 tokens would
    // come back as a 200.
    const error = await apiError(serve.client.completions.create({ model: LLM, prompt: `${HOLD} Once upon a time`, max_tokens: 512 }));
    expect(error.status).toBe(504);
    expect(error.code).toBe('timeout');
    expect(error.message).toContain(`${requestTimeoutMs} ms`);
    // The aborted generation freed its slot before the answer went out.
    const metrics = await (await fetch(`${serve.baseUrl}/metrics`)).text();
    expect(metrics).toContain('personahub_llm_queue_running{queue="generation"} 0');
    expect(metrics).toContain('personahub_llm_queue_depth{queue="generation"} 0');
    expect(metrics).toContain('personahub_llm_requests_total{route="/v1/completions",status="504"} 1');
    expect(metrics).not.toMatch(new RegExp(`personahub_llm_tokens_generated_total\\{${LLM_LABEL}\\} [1-9]`));
  });

  it('answers 404 on embeddings when no embedding model is configured', async () => {
    const error = await apiError(serve.client.embeddings.create({ model: EMBEDDER, input: 'x' }));
    expect(error.status).toBe(404);
    expect(error.message).toContain('no embedding model');
  });
});

describe('llm serve process: graceful shutdown', () => {
  let serve: ServeProcess;

  // A deadline no generation here comes near, so the outcome cannot depend on the machine's speed.
  beforeAll(async () => {
    serve = await startServeProcess({ ...serveOptions, requestTimeoutMs: 600_000 });
  });

  afterAll(async () => {
    await serve?.stop();
  });

  it('on SIGTERM finishes the running and the queued request, refuses new ones and exits 0', async () => {
    const { client, baseUrl, child } = serve;
    const fixed = { type: 'json_schema', json_schema: { name: 's', schema: { type: 'object', properties: { text: { type: 'string', minLength: 24, maxLength: 24 } } } } } as const;
    const ask = (content: string) => client.chat.completions.create({ model: LLM, messages: [{ role: 'user', content }], max_tokens: 60, temperature: 0, response_format: fixed }).withResponse();
    // The first request runs (held in its slot), the second waits behind it.
    const running = ask(`a ${HOLD}`);
    await serve.whenHeld(1);
    const queued = ask('b');
    await untilMetrics(baseUrl, 'personahub_llm_queue_depth{queue="generation"} 1');
    child.kill('SIGTERM');
    // Readiness drops (503, or the connection is refused) while the two requests are still in flight.
    for (;;) {
      const status = await fetch(`${baseUrl}/ready`).then((response) => response.status, () => 'refused' as const);
      if (status !== 200) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    child.kill('SIGUSR2');
    const answers = await Promise.all([running, queued]);
    for (const { data, response } of answers) {
      expect(response.status).toBe(200);
      expect(JSON.parse(data.choices[0]?.message.content ?? '').text).toHaveLength(24);
      // Answered during the shutdown: the connection closes with the response, so no kept-alive
      // connection holds the exit.
      expect(response.headers.get('connection')).toBe('close');
    }
    expect(await serve.exited).toBe(0);
    expect(serve.lines).toContain(JSON.stringify({ closed: true }));
    await expect(fetch(`${baseUrl}/health`)).rejects.toThrow();
  }, 600_000);
});

const GGUF_TYPE_IDS = { uint8: 0, int8: 1, uint16: 2, int16: 3, uint32: 4, int32: 5, float32: 6, bool: 7, string: 8, array: 9, uint64: 10, int64: 11, float64: 12 } as const;
const NUMBER_WRITERS = {
  uint8: [1, (b: Buffer, v: number) => b.writeUInt8(v)],
  int8: [1, (b: Buffer, v: number) => b.writeInt8(v)],
  uint16: [2, (b: Buffer, v: number) => b.writeUInt16LE(v)],
  int16: [2, (b: Buffer, v: number) => b.writeInt16LE(v)],
  uint32: [4, (b: Buffer, v: number) => b.writeUInt32LE(v)],
  int32: [4, (b: Buffer, v: number) => b.writeInt32LE(v)],
  float32: [4, (b: Buffer, v: number) => b.writeFloatLE(v)],
  float64: [8, (b: Buffer, v: number) => b.writeDoubleLE(v)],
} as const;

/**
 * Copies a GGUF with its metadata edited: same tensors, same data, the header rewritten. Used to take
 * the chat template out of the instruct model, which turns it into "a model without a chat template"
 * (the few-shot path, for base models) without a second download.
 */
async function copyGgufWithMetadata(source: string, target: string, edit: (metadata: Map<string, GgufValue>) => void): Promise<void> {
  const file = await readGgufHeader(source);
  const chunks: Buffer[] = [];
  const fixed = (size: number, write: (buffer: Buffer) => void): void => {
    const buffer = Buffer.alloc(size);
    write(buffer);
    chunks.push(buffer);
  };
  const u32 = (v: number): void => fixed(4, (b) => b.writeUInt32LE(v));
  const u64 = (v: bigint): void => fixed(8, (b) => b.writeBigUInt64LE(v));
  const str = (v: string): void => {
    const bytes = Buffer.from(v, 'utf8');
    u64(BigInt(bytes.length));
    chunks.push(bytes);
  };
  const scalar = (kind: keyof typeof GGUF_TYPE_IDS, v: number | bigint | boolean | string): void => {
    switch (kind) {
      case 'string': return str(v as string);
      case 'bool': return fixed(1, (b) => b.writeUInt8(v ? 1 : 0));
      case 'uint64': return fixed(8, (b) => b.writeBigUInt64LE(v as bigint));
      case 'int64': return fixed(8, (b) => b.writeBigInt64LE(v as bigint));
      case 'array': throw new Error('nested GGUF arrays do not occur in llama.cpp models');
      default: {
        const [size, write] = NUMBER_WRITERS[kind];
        return fixed(size, (b) => write(b, v as number));
      }
    }
  };
  const value = (v: GgufValue): void => {
    u32(GGUF_TYPE_IDS[v.kind]);
    if (v.kind !== 'array') return scalar(v.kind, v.value);
    u32(GGUF_TYPE_IDS[v.itemKind]);
    u64(BigInt(v.values.length));
    for (const item of v.values) scalar(v.itemKind, item);
  };
  const metadata = new Map(file.metadata);
  edit(metadata);
  chunks.push(Buffer.from('GGUF', 'latin1'));
  u32(3);
  u64(BigInt(file.tensors.length));
  u64(BigInt(metadata.size));
  for (const [key, v] of metadata) {
    str(key);
    value(v);
  }
  for (const tensor of file.tensors) {
    str(tensor.name);
    u32(tensor.ne.length);
    for (const n of tensor.ne) u64(BigInt(n));
    u32(tensor.type);
    u64(BigInt(tensor.offset));
  }
  const headerLength = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  chunks.push(Buffer.alloc(Math.ceil(headerLength / file.alignment) * file.alignment - headerLength));
  await writeFile(target, Buffer.concat(chunks));
  await pipeline(createReadStream(source, { start: file.dataOffset }), createWriteStream(target, { flags: 'a' }));
}

describe('a GGUF without a chat template (a base model)', () => {
  let dir: string;
  let server: LlmServer;
  let client: OpenAI;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'llm-no-chat-template-'));
    const modelPath = join(dir, 'without-template.gguf');
    await copyGgufWithMetadata(llmModelPath, modelPath, (metadata) => {
      expect(metadata.delete('tokenizer.chat_template')).toBe(true);
    });
    server = await buildLlmServer({
      llmModelPath: modelPath, llmModelName: 'base-model', contextSize: 1024, maxQueue: 1, requestTimeoutMs: 120_000,
      maxPromptTokens: 512, maxTokensCap: 256, logger: createLogger({ level: 'warn', name: 'llm-server-test' }),
    });
    client = new OpenAI({ baseURL: `${await server.app.listen({ host: '127.0.0.1', port: 0 })}/v1`, apiKey: 'local', maxRetries: 0 });
  });

  afterAll(async () => {
    await server?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('takes the few-shot path automatically and still returns schema-valid JSON', async () => {
    const metrics = await server.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toContain('personahub_llm_model_info{model="base-model",kind="llm",chat_template="false"} 1');
    const completion = await client.chat.completions.create({ ...personaRequest('a nurse in Oslo', 3, 0), model: 'base-model' });
    expect(Persona.safeParse(JSON.parse(completion.choices[0]?.message.content ?? '')).success).toBe(true);
    expect(completion.choices[0]?.finish_reason).toBe('stop');
  });
});

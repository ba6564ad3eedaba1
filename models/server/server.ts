/**
 * `personahub llm serve`: an OpenAI-compatible HTTP server over node-llama-cpp, so the local models
 * are one more endpoint for the openai SDK (DESIGN §3, §8: node-llama-cpp has no server built in).
 *
 * Routes: POST /v1/chat/completions, POST /v1/completions, POST /v1/embeddings, GET /v1/models,
 * GET /v1/models/:id, GET /health, GET /ready, GET /metrics.
 *
 * Generation runs one request at a time through a bounded queue (one reused context sequence, 2
 * cores); a full queue answers 429 with Retry-After, a request past its deadline 504 and its
 * generation is aborted. Embeddings have a queue of their own so an indexing burst does not wait
 * behind persona drafts, and the reverse.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Llama, LlamaGrammar } from 'node-llama-cpp';
import { ConfigError, ModelError } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import { EmbeddingEngine, LlmEngine, loadLlama, type GenerationResult, type GrammarSpec, type PreparedPrompt } from './engine.ts';
import { boundJsonSchema, UnsupportedSchemaError } from './json-schema-grammar.ts';
import {
  ApiError,
  chatCompletionRequest,
  completionRequest,
  embeddingRequest,
  errorBody,
  invalidRequest,
  parseBody,
  toBase64Float32,
  type ChatCompletionResponse,
  type CompletionResponse,
  type EmbeddingResponse,
  type ModelObject,
  type ResponseFormat,
} from './openai-api.ts';
import type { ChatMessage } from '../../core/chat.ts';
import { QueueFullError, WorkQueue } from './queue.ts';
import { createLlmServerMetrics } from './metrics.ts';

export interface LlmServerOptions {
  /** GGUF of the text model. Any GGUF works: one with a chat template takes the chat path. */
  llmModelPath: string;
  /** Name clients pass as `model`; requests without `model` get this one. */
  llmModelName: string;
  embeddingModelPath?: string;
  embeddingModelName?: string;
  /** Context window of the text model, in tokens; must hold maxPromptTokens + maxTokensCap. */
  contextSize: number;
  /** Requests allowed to wait behind the running one, per queue; beyond that, 429. */
  maxQueue: number;
  /** Deadline per request, queue wait included; beyond it, 504 and the generation is aborted. */
  requestTimeoutMs: number;
  /** Longest prompt accepted, in tokens after tokenizing (chat: after rendering). */
  maxPromptTokens: number;
  /** Largest max_tokens accepted, and the value used when a request gives none. */
  maxTokensCap: number;
  logger: Logger;
  /**
   * Awaited when a generation request gets its turn in the queue, before the model runs, with the
   * request's body and its signal (aborted on the deadline or when the client leaves). For tests:
   * holding a request here keeps it running (or past its deadline) whatever the machine's speed.
   */
  beforeGeneration?: (body: unknown, signal: AbortSignal | undefined) => Promise<void>;
}

export interface LlmServer {
  app: FastifyInstance;
  /** Stops accepting, lets in-flight and queued requests finish, then frees the models. Idempotent. */
  close(): Promise<void>;
}

export interface RunningLlmServer extends LlmServer {
  /** e.g. http://127.0.0.1:8089 */
  url: string;
  port: number;
  /** Settles once the server has shut down, by signal or by close(). */
  closed: Promise<void>;
}

/** The request ran past requestTimeoutMs (waiting or generating). */
class RequestTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`the request did not complete within ${timeoutMs} ms`);
    this.name = 'RequestTimeoutError';
  }
}

/** The client went away; there is nobody to answer. */
class ClientClosedError extends Error {
  constructor() {
    super('the client closed the connection');
    this.name = 'ClientClosedError';
  }
}

/** Status logged and counted for requests whose client left first (nginx's convention). */
const CLIENT_CLOSED_STATUS = 499;

function validateOptions(opts: LlmServerOptions): void {
  const positive: (keyof LlmServerOptions)[] = ['contextSize', 'requestTimeoutMs', 'maxPromptTokens', 'maxTokensCap'];
  for (const key of positive) {
    const value = opts[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) throw new ConfigError(`llm server: ${key} must be a positive integer, got ${String(value)}`);
  }
  if (!Number.isInteger(opts.maxQueue) || opts.maxQueue < 0) throw new ConfigError(`llm server: maxQueue must be a non-negative integer, got ${opts.maxQueue}`);
  // A prompt of maxPromptTokens plus maxTokensCap new tokens must fit, or the longest allowed
  // request could not be generated in full.
  if (opts.maxPromptTokens + opts.maxTokensCap > opts.contextSize) {
    throw new ConfigError(`llm server: maxPromptTokens (${opts.maxPromptTokens}) + maxTokensCap (${opts.maxTokensCap}) exceed contextSize (${opts.contextSize})`);
  }
  if ((opts.embeddingModelPath === undefined) !== (opts.embeddingModelName === undefined)) {
    throw new ConfigError('llm server: embeddingModelPath and embeddingModelName go together');
  }
  if (opts.embeddingModelName !== undefined && opts.embeddingModelName === opts.llmModelName) {
    throw new ConfigError('llm server: the embedding model needs a name different from the text model');
  }
}

/** Loads the models and builds the app without listening (tests use app.inject or listen on port 0). */
export async function buildLlmServer(opts: LlmServerOptions): Promise<LlmServer> {
  validateOptions(opts);
  const log = opts.logger.child({ component: 'llm-server' });
  const llama = await loadLlama();
  let llm: LlmEngine | undefined;
  let embedder: { name: string; engine: EmbeddingEngine } | undefined;
  try {
    llm = await LlmEngine.load(llama, { modelPath: opts.llmModelPath, contextSize: opts.contextSize });
    if (opts.embeddingModelPath !== undefined && opts.embeddingModelName !== undefined) {
      embedder = { name: opts.embeddingModelName, engine: await EmbeddingEngine.load(llama, opts.embeddingModelPath) };
    }
  } catch (error) {
    await llm?.dispose();
    await llama.dispose();
    throw error;
  }
  log.info({
    model: opts.llmModelName, path: opts.llmModelPath, chatTemplate: llm.hasChatTemplate, contextSize: llm.contextSize,
    embeddingModel: embedder?.name, embeddingDimensions: embedder?.engine.dimensions,
  }, 'models loaded');
  return createApp(opts, log, llama, llm, embedder);
}

function createApp(
  opts: LlmServerOptions,
  log: Logger,
  llama: Llama,
  llm: LlmEngine,
  embedder: { name: string; engine: EmbeddingEngine } | undefined,
): LlmServer {
  const metrics = createLlmServerMetrics();
  metrics.modelInfo.set({ model: opts.llmModelName, kind: 'llm', chat_template: String(llm.hasChatTemplate) }, 1);
  if (embedder !== undefined) metrics.modelInfo.set({ model: embedder.name, kind: 'embedding', chat_template: 'false' }, 1);
  const queueFor = (name: string): WorkQueue => new WorkQueue({
    maxWaiting: opts.maxQueue,
    onChange: ({ waiting, running }) => {
      metrics.queueDepth.set({ queue: name }, waiting);
      metrics.queueRunning.set({ queue: name }, running);
    },
  });
  const generationQueue = queueFor('generation');
  const beforeGeneration = opts.beforeGeneration ?? (() => Promise.resolve());
  const embeddingQueue = queueFor('embedding');
  const startedAt = Math.floor(Date.now() / 1000);
  let shuttingDown = false;

  // Typed as Fastify's logger interface so the app is a plain FastifyInstance for callers.
  const loggerInstance: FastifyBaseLogger = log;
  const app = Fastify({
    loggerInstance,
    // One line per request from onResponse below, with the route and status the metrics use.
    logController: new LogController({ disableRequestLogging: true }),
    // 2,048 embedding inputs or a long few-shot prompt fit; anything bigger is not a sane request.
    bodyLimit: 4 * 1024 * 1024,
  });

  app.setErrorHandler((error, request, reply) => {
    const apiError = toApiError(error);
    if (apiError.status >= 500) request.log.error({ err: error }, 'request failed');
    void reply.code(apiError.status).headers(apiError.headers).send(errorBody(apiError));
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send(errorBody(new ApiError(404, 'invalid_request_error', 'not_found', `no route ${request.method} ${request.url}`)));
  });
  app.addHook('onSend', async (_request, reply, payload) => {
    // Node closes only the connections idle when shutdown starts; one busy then would stay open
    // until keepAliveTimeout (72 s) after its response and hold the process. Closing it with the
    // response lets the shutdown end as soon as the last request is answered.
    if (shuttingDown) void reply.header('connection', 'close');
    return payload;
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const status = reply.statusCode;
    metrics.requests.inc({ route, status: String(status) });
    metrics.requestDuration.observe({ route }, reply.elapsedTime / 1000);
    const level = status >= 500 ? 'warn' : status >= 400 ? 'info' : 'debug';
    request.log[level]({ method: request.method, route, status, ms: Math.round(reply.elapsedTime) }, 'request');
  });

  const models = (): ModelObject[] => [opts.llmModelName, ...(embedder === undefined ? [] : [embedder.name])]
    .map((id) => ({ id, object: 'model', created: startedAt, owned_by: 'personahub' }));

  /** The model a request names, or the default when it names none; 404 for any other name. */
  function resolveModel(requested: string | null | undefined, served: string, purpose: string): string {
    if (requested === undefined || requested === null || requested === served) return served;
    throw new ApiError(404, 'invalid_request_error', 'model_not_found', `model '${requested}' is not served for ${purpose}; available: ${served}`, { param: 'model' });
  }

  /** Aborts on timeout or when the client disconnects; `done` clears the timer. */
  function requestSignal(reply: FastifyReply): { signal: AbortSignal; done: () => void } {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new RequestTimeoutError(opts.requestTimeoutMs)), opts.requestTimeoutMs);
    const onClose = (): void => {
      if (!reply.raw.writableFinished) controller.abort(new ClientClosedError());
    };
    reply.raw.once('close', onClose);
    return {
      signal: controller.signal,
      done: () => {
        clearTimeout(timer);
        reply.raw.off('close', onClose);
      },
    };
  }

  async function runQueued<T>(queue: WorkQueue, reply: FastifyReply, job: (signal: AbortSignal | undefined) => Promise<T>): Promise<T> {
    const { signal, done } = requestSignal(reply);
    try {
      return await queue.run(job, signal);
    } finally {
      done();
    }
  }

  function resolveMaxTokens(maxTokens: number | null | undefined, maxCompletionTokens?: number | null): number {
    const requested = maxCompletionTokens ?? maxTokens ?? opts.maxTokensCap;
    if (requested > opts.maxTokensCap) {
      throw invalidRequest('max_tokens_too_large', `max_tokens is ${requested}; this server allows at most ${opts.maxTokensCap}`, 'max_tokens');
    }
    return requested;
  }

  function checkPromptSize(prompt: PreparedPrompt, param: string): void {
    if (prompt.tokenCount > opts.maxPromptTokens) {
      throw invalidRequest('context_length_exceeded', `the prompt is ${prompt.tokenCount} tokens; this server accepts at most ${opts.maxPromptTokens}`, param);
    }
  }

  async function grammarFor(format: ResponseFormat | null | undefined, reply: FastifyReply): Promise<LlamaGrammar | undefined> {
    if (format === undefined || format === null || format.type === 'text') return undefined;
    let spec: GrammarSpec;
    if (format.type === 'json_object') {
      spec = { kind: 'json_object' };
    } else {
      const bounded = boundJsonSchema(format.json_schema.schema);
      if (bounded.defaultsApplied.length > 0) {
        // Tells the caller which of its values got a default bound, so a description that stops at
        // 256 characters is no mystery.
        void reply.header('x-personahub-schema-defaults', bounded.defaultsApplied.join(','));
      }
      spec = { kind: 'json_schema', schema: bounded.schema };
    }
    try {
      return await llm.createGrammar(spec);
    } catch (cause) {
      throw invalidRequest('invalid_schema', `response_format: the grammar could not be built: ${(cause as Error).message}`, 'response_format');
    }
  }

  async function generate(
    reply: FastifyReply,
    prompt: PreparedPrompt,
    body: { temperature?: number | null; top_p?: number | null; seed?: number | null; stop?: string | string[] | null },
    maxTokens: number,
    grammar: LlamaGrammar | undefined,
  ): Promise<GenerationResult> {
    const result = await runQueued(generationQueue, reply, (signal) => beforeGeneration(body, signal).then(() => llm.generate(prompt, {
      maxTokens,
      // OpenAI's default temperature is 1.
      temperature: body.temperature ?? 1,
      ...(body.top_p === undefined || body.top_p === null ? {} : { topP: body.top_p }),
      // llama.cpp seeds are 32-bit; OpenAI's are any integer.
      ...(body.seed === undefined || body.seed === null ? {} : { seed: body.seed >>> 0 }),
      stop: body.stop === undefined || body.stop === null ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop,
      ...(grammar === undefined ? {} : { grammar }),
      ...(signal === undefined ? {} : { signal }),
    })));
    const labels = { model: opts.llmModelName };
    metrics.promptTokens.inc(labels, result.promptTokens);
    metrics.tokensGenerated.inc(labels, result.completionTokens);
    if (result.timeToFirstTokenMs !== null) {
      metrics.timeToFirstToken.observe(labels, result.timeToFirstTokenMs / 1000);
      const decodeSeconds = (result.durationMs - result.timeToFirstTokenMs) / 1000;
      if (result.completionTokens > 1 && decodeSeconds > 0) metrics.tokensPerSecond.observe(labels, (result.completionTokens - 1) / decodeSeconds);
    }
    return result;
  }

  const usage = (result: GenerationResult) => ({
    prompt_tokens: result.promptTokens,
    completion_tokens: result.completionTokens,
    total_tokens: result.promptTokens + result.completionTokens,
  });

  app.post('/v1/chat/completions', async (request, reply): Promise<ChatCompletionResponse> => {
    const body = parseBody(chatCompletionRequest, request.body);
    const model = resolveModel(body.model, opts.llmModelName, 'text generation');
    const maxTokens = resolveMaxTokens(body.max_tokens, body.max_completion_tokens);
    const messages: ChatMessage[] = body.messages.map((message) => ({
      role: message.role === 'developer' ? 'system' : message.role,
      content: typeof message.content === 'string' ? message.content : message.content.map((part) => part.text).join('\n'),
    }));
    const prompt = llm.prepareChat(messages);
    checkPromptSize(prompt, 'messages');
    const grammar = await grammarFor(body.response_format, reply);
    const result = await generate(reply, prompt, body, maxTokens, grammar);
    return {
      id: `chatcmpl-${randomUUID()}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model,
      choices: [{ index: 0, message: { role: 'assistant', content: result.text, refusal: null }, logprobs: null, finish_reason: result.finishReason }],
      usage: usage(result),
    };
  });

  app.post('/v1/completions', async (request, reply): Promise<CompletionResponse> => {
    const body = parseBody(completionRequest, request.body);
    const model = resolveModel(body.model, opts.llmModelName, 'text generation');
    const maxTokens = resolveMaxTokens(body.max_tokens);
    const prompt = llm.prepareCompletion(body.prompt);
    checkPromptSize(prompt, 'prompt');
    const grammar = await grammarFor(body.response_format, reply);
    const result = await generate(reply, prompt, body, maxTokens, grammar);
    return {
      id: `cmpl-${randomUUID()}`,
      object: 'text_completion',
      created: Math.floor(Date.now() / 1000),
      model,
      choices: [{ index: 0, text: result.text, logprobs: null, finish_reason: result.finishReason }],
      usage: usage(result),
    };
  });

  app.post('/v1/embeddings', async (request, reply): Promise<EmbeddingResponse> => {
    const body = parseBody(embeddingRequest, request.body);
    if (embedder === undefined) {
      throw new ApiError(404, 'invalid_request_error', 'model_not_found', 'no embedding model is configured on this server', { param: 'model' });
    }
    const { engine } = embedder;
    const model = resolveModel(body.model, embedder.name, 'embeddings');
    if (body.dimensions !== undefined && body.dimensions !== null && body.dimensions !== engine.dimensions) {
      throw invalidRequest('unsupported_dimensions', `dimensions must be ${engine.dimensions} for ${model}`, 'dimensions');
    }
    const inputs = typeof body.input === 'string' ? [body.input] : body.input;
    inputs.forEach((text, index) => {
      const tokens = engine.inputTokens(text);
      if (tokens > engine.maxInputTokens) {
        throw invalidRequest('context_length_exceeded', `input ${index} is ${tokens} tokens; ${model} accepts at most ${engine.maxInputTokens}`, 'input');
      }
    });
    const result = await runQueued(embeddingQueue, reply, (signal) => engine.embed(inputs, signal));
    metrics.embeddingInputs.inc({ model }, inputs.length);
    const base64 = body.encoding_format === 'base64';
    return {
      object: 'list',
      data: result.vectors.map((vector, index) => ({ object: 'embedding', index, embedding: base64 ? toBase64Float32(vector) : vector })),
      model,
      usage: { prompt_tokens: result.promptTokens, total_tokens: result.promptTokens },
    };
  });

  app.get('/v1/models', async () => ({ object: 'list', data: models() }));

  app.get<{ Params: { id: string } }>('/v1/models/:id', async (request) => {
    const model = models().find((candidate) => candidate.id === request.params.id);
    if (model === undefined) throw new ApiError(404, 'invalid_request_error', 'model_not_found', `model '${request.params.id}' does not exist`, { param: 'model' });
    return model;
  });

  app.get('/health', async () => ({ status: 'ok' }));

  app.get('/ready', async (_request, reply) => {
    if (shuttingDown) return reply.code(503).send({ status: 'shutting_down' });
    return { status: 'ready', models: models().map((model) => model.id) };
  });

  app.get('/metrics', async (_request, reply) => {
    void reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      shuttingDown = true;
      const inFlight = [generationQueue, embeddingQueue].reduce((sum, queue) => sum + queue.waiting + (queue.busy ? 1 : 0), 0);
      log.info({ inFlight }, 'shutting down: finishing in-flight and queued requests');
      // Fastify stops accepting connections, answers 503 to new requests on kept-alive ones and
      // resolves once every in-flight request (queued ones included) has been answered; each is
      // bounded by requestTimeoutMs.
      await app.close();
      await llm.dispose();
      await embedder?.engine.dispose();
      await llama.dispose();
      log.info('models disposed');
    })();
    return closing;
  };

  return { app, close };
}

function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof UnsupportedSchemaError) return invalidRequest('unsupported_schema', error.message, 'response_format');
  if (error instanceof QueueFullError) {
    return new ApiError(429, 'rate_limit_error', 'queue_full', `the server is busy: its request queue is full; retry after ${error.retryAfterSeconds} s`, {
      headers: { 'retry-after': String(error.retryAfterSeconds) },
    });
  }
  if (error instanceof RequestTimeoutError) return new ApiError(504, 'timeout_error', 'timeout', error.message);
  if (error instanceof ClientClosedError) return new ApiError(CLIENT_CLOSED_STATUS, 'invalid_request_error', 'client_closed', error.message);
  // Fastify's own 4xx (malformed JSON, wrong content type, body too large) keep their status.
  const status = (error as { statusCode?: unknown }).statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new ApiError(status, 'invalid_request_error', (error as { code?: string }).code ?? 'invalid_request', (error as Error).message);
  }
  return new ApiError(500, 'server_error', 'internal_error', 'the model server failed on this request; see its log');
}

/**
 * Listens and runs until SIGTERM or SIGINT, then shuts down gracefully: no new requests, in-flight
 * and queued ones finish, models are freed. A second signal during shutdown exits at once.
 */
export async function serveLlm(opts: LlmServerOptions & { host: string; port: number }): Promise<RunningLlmServer> {
  const server = await buildLlmServer(opts);
  const log = opts.logger.child({ component: 'llm-server' });
  try {
    await server.app.listen({ host: opts.host, port: opts.port });
  } catch (cause) {
    await server.close();
    throw new ModelError('PH_MODEL_SERVER_LISTEN_FAILED', `cannot listen on ${opts.host}:${opts.port}: ${(cause as Error).message}`, { cause });
  }
  const address = server.app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : opts.port;
  const url = `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}`;
  log.info({ url }, 'llm server listening');

  let resolveClosed: () => void = () => undefined;
  const closed = new Promise<void>((resolve) => {
    resolveClosed = resolve;
  });
  let shutdown: Promise<void> | undefined;
  const close = (): Promise<void> => {
    shutdown ??= server.close().finally(() => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      resolveClosed();
    });
    return shutdown;
  };
  let signalled = false;
  function onSignal(signal: NodeJS.Signals): void {
    if (signalled) {
      log.warn({ signal }, 'second signal during shutdown: exiting now');
      process.exit(1);
    }
    signalled = true;
    log.info({ signal }, 'signal received: shutting down');
    close().catch((error: unknown) => log.error({ err: error }, 'shutdown failed'));
  }
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return { app: server.app, close, url, port, closed };
}

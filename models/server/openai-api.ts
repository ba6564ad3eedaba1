/**
 * The OpenAI wire format as the model server accepts and answers it: zod schemas for request
 * bodies, response shapes, and the error envelope `{ error: { message, type, param, code } }` that
 * the openai SDK turns into typed exceptions.
 */
import { z } from 'zod';

/** An error answered in OpenAI's envelope. Thrown by handlers, rendered by the error handler. */
export class ApiError extends Error {
  readonly status: number;
  readonly type: string;
  readonly code: string;
  readonly param: string | null;
  readonly headers: Readonly<Record<string, string>>;

  constructor(status: number, type: string, code: string, message: string, options: { param?: string; headers?: Record<string, string> } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.type = type;
    this.code = code;
    this.param = options.param ?? null;
    this.headers = options.headers ?? {};
  }
}

export function invalidRequest(code: string, message: string, param?: string): ApiError {
  return new ApiError(400, 'invalid_request_error', code, message, param === undefined ? {} : { param });
}

export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

export function errorBody(error: ApiError): ErrorBody {
  return { error: { message: error.message, type: error.type, param: error.param, code: error.code } };
}

/** Parses with zod and turns the first issue into a 400 naming the field. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const param = issue === undefined || issue.path.length === 0 ? undefined : issue.path.map(String).join('.');
  const where = param === undefined ? 'request body' : `'${param}'`;
  throw invalidRequest('invalid_request', `${where}: ${issue?.message ?? 'invalid'}`, param);
}

/** Parameters whose meaning the server cannot honor; silently ignoring them would mislead. */
function unsupported(name: string, why: string) {
  return { [name]: z.unknown().refine((value) => value === undefined || value === null || value === false, `${name} is not supported: ${why}`).optional() };
}

const nullable = <T extends z.ZodType>(schema: T) => schema.nullable().optional();

const samplingFields = {
  model: nullable(z.string().min(1)),
  max_tokens: nullable(z.number().int().min(1)),
  temperature: nullable(z.number().min(0).max(2)),
  top_p: nullable(z.number().gt(0).max(1)),
  seed: nullable(z.number().int()),
  stop: nullable(z.union([z.string().min(1), z.array(z.string().min(1)).max(4)])),
  n: nullable(z.literal(1, { error: 'n must be 1: one choice per request' })),
  ...unsupported('stream', 'responses are returned whole'),
  ...unsupported('logprobs', 'log probabilities are not computed'),
};

const jsonSchemaFormat = z.object({
  type: z.literal('json_schema'),
  json_schema: z.object({
    name: nullable(z.string().max(64)),
    description: nullable(z.string()),
    schema: z.record(z.string(), z.unknown(), { error: 'json_schema.schema must be a JSON Schema object' }),
    strict: nullable(z.boolean()),
  }),
});

const responseFormat = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text') }),
  z.object({ type: z.literal('json_object') }),
  jsonSchemaFormat,
]);

export type ResponseFormat = z.infer<typeof responseFormat>;

const textPart = z.object({ type: z.literal('text', { error: 'only text content parts are supported' }), text: z.string() });

const chatMessage = z.object({
  // `developer` is OpenAI's newer name for `system`.
  role: z.enum(['system', 'developer', 'user', 'assistant'], { error: 'role must be system, developer, user or assistant (tool messages are not supported)' }),
  content: z.union([z.string(), z.array(textPart).min(1)], { error: 'content must be a string or an array of text parts' }),
  name: nullable(z.string()),
});

export const chatCompletionRequest = z.object({
  ...samplingFields,
  messages: z.array(chatMessage).min(1, 'messages must not be empty').max(256),
  max_completion_tokens: nullable(z.number().int().min(1)),
  response_format: nullable(responseFormat),
  ...unsupported('tools', 'no function calling'),
  ...unsupported('functions', 'no function calling'),
  ...unsupported('tool_choice', 'no function calling'),
  ...unsupported('function_call', 'no function calling'),
}).refine((body) => body.messages.at(-1)?.role === 'user', { message: 'the last message must have role user', path: ['messages'] });

export type ChatCompletionRequest = z.infer<typeof chatCompletionRequest>;

export const completionRequest = z.object({
  ...samplingFields,
  prompt: z.string({ error: 'prompt must be a string' }),
  // An extension: OpenAI's legacy completions have no structured output, but the same grammar
  // works on raw prompts, which is what few-shot callers want.
  response_format: nullable(responseFormat),
  ...unsupported('suffix', 'no infill'),
  ...unsupported('echo', 'the prompt is not echoed'),
  best_of: nullable(z.literal(1, { error: 'best_of must be 1' })),
});

export type CompletionRequest = z.infer<typeof completionRequest>;

/** OpenAI's own cap on inputs per embeddings request. */
export const MAX_EMBEDDING_INPUTS = 2048;

export const embeddingRequest = z.object({
  model: nullable(z.string().min(1)),
  input: z.union([
    z.string().min(1, 'input must not be empty'),
    z.array(z.string().min(1, 'input strings must not be empty')).min(1, 'input must not be empty').max(MAX_EMBEDDING_INPUTS),
  ], { error: 'input must be a string or an array of strings (token arrays are not supported)' }),
  // The openai SDK asks for base64 unless told otherwise, and decodes it itself.
  encoding_format: nullable(z.enum(['float', 'base64'])),
  dimensions: nullable(z.number().int().min(1)),
  user: nullable(z.string()),
});

export type EmbeddingRequest = z.infer<typeof embeddingRequest>;

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export type FinishReason = 'stop' | 'length';

export interface ChatCompletionResponse {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: [{ index: 0; message: { role: 'assistant'; content: string; refusal: null }; logprobs: null; finish_reason: FinishReason }];
  usage: Usage;
}

export interface CompletionResponse {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: [{ index: 0; text: string; logprobs: null; finish_reason: FinishReason }];
  usage: Usage;
}

export interface EmbeddingResponse {
  object: 'list';
  data: { object: 'embedding'; index: number; embedding: number[] | string }[];
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}

export interface ModelObject {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}

/** Little-endian float32 bytes in base64, the `encoding_format: base64` wire form. */
export function toBase64Float32(vector: readonly number[]): string {
  const floats = Float32Array.from(vector);
  return Buffer.from(floats.buffer, floats.byteOffset, floats.byteLength).toString('base64');
}

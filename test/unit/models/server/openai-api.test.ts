import { describe, expect, it } from 'vitest';
import { ApiError, chatCompletionRequest, completionRequest, embeddingRequest, parseBody, toBase64Float32 } from '../../../../models/server/openai-api.ts';

function rejection(run: () => unknown): ApiError {
  try {
    run();
  } catch (error) {
    if (error instanceof ApiError) return error;
    throw error;
  }
  throw new Error('expected ApiError');
}

describe('request parsing', () => {
  it('accepts what the openai SDK sends for a structured chat completion', () => {
    const body = parseBody(chatCompletionRequest, {
      model: 'qwen2.5-coder-1.5b',
      messages: [{ role: 'developer', content: 'be brief' }, { role: 'user', content: [{ type: 'text', text: 'hi' }] }],
      max_completion_tokens: 50,
      temperature: 0.7,
      seed: 42,
      stop: ['\n\n'],
      response_format: { type: 'json_schema', json_schema: { name: 'p', schema: { type: 'object', properties: {} }, strict: true } },
      frequency_penalty: 0,
    });
    expect(body.messages).toHaveLength(2);
    expect(body.response_format?.type).toBe('json_schema');
  });

  it.each([
    [{ messages: [] }, 'messages'],
    [{ messages: [{ role: 'tool', content: 'x' }] }, 'messages.0.role'],
    [{ messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: 'y' }] }, 'messages'],
    [{ messages: [{ role: 'user', content: 'x' }], temperature: 3 }, 'temperature'],
    [{ messages: [{ role: 'user', content: 'x' }], max_tokens: 0 }, 'max_tokens'],
    [{ messages: [{ role: 'user', content: 'x' }], stream: true }, 'stream'],
    [{ messages: [{ role: 'user', content: 'x' }], n: 2 }, 'n'],
    [{ messages: [{ role: 'user', content: 'x' }], tools: [{}] }, 'tools'],
    [{ messages: [{ role: 'user', content: 'x' }], response_format: { type: 'xml' } }, 'response_format.type'],
  ])('refuses %j with a 400 naming %s', (body, param) => {
    const error = rejection(() => parseBody(chatCompletionRequest, body));
    expect(error.status).toBe(400);
    expect(error.type).toBe('invalid_request_error');
    expect(error.param).toBe(param);
    expect(error.message).toContain(`'${param}'`);
  });

  it('explains why the last message must be the user', () => {
    const error = rejection(() => parseBody(chatCompletionRequest, { messages: [{ role: 'assistant', content: 'y' }] }));
    expect(error.message).toContain('the last message must have role user');
  });

  it('refuses a non-object body', () => {
    expect(rejection(() => parseBody(completionRequest, 'text')).message).toContain('request body');
  });

  it('parses completions and embeddings', () => {
    expect(parseBody(completionRequest, { prompt: 'Once', max_tokens: 5 }).prompt).toBe('Once');
    expect(rejection(() => parseBody(completionRequest, { prompt: 'x', suffix: 'y' })).param).toBe('suffix');
    expect(parseBody(embeddingRequest, { input: ['a', 'b'], encoding_format: 'base64' }).input).toEqual(['a', 'b']);
    expect(rejection(() => parseBody(embeddingRequest, { input: [1, 2, 3] })).message).toContain('token arrays are not supported');
    expect(rejection(() => parseBody(embeddingRequest, { input: '' })).param).toBe('input');
  });
});

describe('toBase64Float32', () => {
  it('encodes little-endian float32, as the openai SDK decodes', () => {
    const encoded = toBase64Float32([1, -0.5, 0.25]);
    const bytes = Buffer.from(encoded, 'base64');
    const floats = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    expect([...floats]).toEqual([1, -0.5, 0.25]);
  });
});

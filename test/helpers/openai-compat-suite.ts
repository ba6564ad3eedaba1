/**
 * The OpenAI-compatibility contract, shared by every server the pipeline may talk to in tests: the
 * fixture server and the real local model server must both pass it. It drives the server with the
 * `openai` SDK itself, because "compatible" means "works with that client", not "matches our reading
 * of the API reference".
 */
import { APIError, OpenAI } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { cosine } from './bert-reference.ts';

export interface CompatTarget {
  baseURL: string;
  model: string;
  embeddingModel?: string;
  close(): Promise<void>;
}

// Small enough for a 270M model under grammar-constrained decoding, yet it exercises string, integer
// and array bounds plus `required`.
const Persona = z.object({
  name: z.string().min(1).max(40),
  age: z.int().min(18).max(90),
  hobbies: z.array(z.string().min(1).max(40)).min(1).max(3),
});
const personaJsonSchema = (() => {
  // OpenAI's strict mode does not accept `$schema`; the rest of zod's output is strict-compatible.
  const { $schema: _drop, ...rest } = z.toJSONSchema(Persona);
  return rest as Record<string, unknown>;
})();

async function expectApiError(p: Promise<unknown>): Promise<APIError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'the request should have been rejected').toBeInstanceOf(APIError);
  const apiErr = err as APIError;
  expect(apiErr.status).toBeGreaterThanOrEqual(400);
  expect(apiErr.status).toBeLessThan(500);
  // The message must come from the server's error body, not the SDK's "(no body)" fallback.
  expect(apiErr.message).not.toMatch(/no body/);
  expect(apiErr.message.replace(/^\d+\s*/, '').trim().length).toBeGreaterThan(0);
  return apiErr;
}

/** Registers the compatibility tests for one server; `setup` starts it (or connects to it) once. */
export function describeOpenAiCompat(name: string, setup: () => Promise<CompatTarget>): void {
  describe(`OpenAI compatibility: ${name}`, () => {
    let target: CompatTarget;
    let client: OpenAI;

    beforeAll(async () => {
      target = await setup();
      // maxRetries 0: a compatible server must get it right the first time, and failures should be fast.
      client = new OpenAI({ baseURL: target.baseURL, apiKey: 'sk-compat-suite', maxRetries: 0, timeout: 120_000 });
    }, 300_000);

    afterAll(async () => {
      await target?.close();
    });

    it('lists its models', async () => {
      const ids: string[] = [];
      for await (const m of client.models.list()) {
        expect(m.object).toBe('model');
        expect(typeof m.id).toBe('string');
        ids.push(m.id);
      }
      expect(ids).toContain(target.model);
      if (target.embeddingModel !== undefined) expect(ids).toContain(target.embeddingModel);
    });

    it('answers a json_schema chat completion with schema-valid JSON in an OpenAI-shaped response', async () => {
      const res = await client.chat.completions.create({
        model: target.model,
        messages: [
          { role: 'system', content: 'You write short fictional persona records as JSON.' },
          { role: 'user', content: 'Invent a retired lighthouse keeper who restores old clocks and sails on weekends.' },
        ],
        response_format: { type: 'json_schema', json_schema: { name: 'persona', schema: personaJsonSchema, strict: true } },
        max_tokens: 200,
        temperature: 0,
        seed: 7,
      });
      expect(typeof res.id).toBe('string');
      expect(res.id.length).toBeGreaterThan(0);
      expect(res.object).toBe('chat.completion');
      expect(typeof res.model).toBe('string');
      expect(res.choices).toHaveLength(1);
      const choice = res.choices[0];
      expect(choice?.message.role).toBe('assistant');
      expect(choice?.finish_reason).toBe('stop');
      const content = choice?.message.content;
      expect(typeof content).toBe('string');
      const parsed = Persona.safeParse(JSON.parse(content ?? ''));
      expect(parsed.success, parsed.success ? '' : z.prettifyError(parsed.error)).toBe(true);
      expect(res.usage?.prompt_tokens).toBeGreaterThan(0);
      expect(res.usage?.completion_tokens).toBeGreaterThan(0);
      expect(res.usage?.total_tokens).toBe((res.usage?.prompt_tokens ?? 0) + (res.usage?.completion_tokens ?? 0));
    }, 180_000);

    it('embeds a batch: one vector per input, in order, of equal dimension, similar texts closer', async ({ skip }) => {
      if (target.embeddingModel === undefined) return skip('no embedding model');
      const inputs = ['The cat sat on the mat.', 'A cat was sitting on the mat.', 'Quarterly revenue grew in the semiconductor segment.'];
      const res = await client.embeddings.create({ model: target.embeddingModel, input: inputs, encoding_format: 'float' });
      expect(res.object).toBe('list');
      expect(res.data).toHaveLength(inputs.length);
      expect(res.data.map((d) => d.index)).toEqual([0, 1, 2]);
      const dims = res.data[0]?.embedding.length ?? 0;
      expect(dims).toBeGreaterThan(0);
      for (const d of res.data) {
        expect(d.embedding).toHaveLength(dims);
        expect(d.embedding.every((x) => Number.isFinite(x))).toBe(true);
      }
      const [a, b, c] = res.data.map((d) => d.embedding) as [number[], number[], number[]];
      expect(cosine(a, b)).toBeGreaterThan(cosine(a, c));
      expect(res.usage.prompt_tokens).toBeGreaterThan(0);
    }, 120_000);

    it("decodes the SDK's default base64 embedding encoding to the same vectors as float", async ({ skip }) => {
      if (target.embeddingModel === undefined) return skip('no embedding model');
      const input = ['Lighthouse keepers restore clocks.', 'Sailing on weekends.'];
      const asFloat = await client.embeddings.create({ model: target.embeddingModel, input, encoding_format: 'float' });
      // No encoding_format: the SDK requests base64 and decodes it as float32.
      const asDefault = await client.embeddings.create({ model: target.embeddingModel, input });
      expect(asDefault.data).toHaveLength(input.length);
      for (let i = 0; i < input.length; i++) {
        const f = asFloat.data[i]?.embedding ?? [];
        const d = asDefault.data[i]?.embedding ?? [];
        expect(d).toHaveLength(f.length);
        expect(cosine(f, d)).toBeGreaterThan(0.9999);
      }
    }, 120_000);

    it('rejects an unknown chat model with a 4xx APIError carrying a message', async () => {
      await expectApiError(client.chat.completions.create({ model: 'no-such-model-for-compat-suite', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 }));
    });

    it('rejects an unknown embedding model with a 4xx APIError carrying a message', async ({ skip }) => {
      if (target.embeddingModel === undefined) return skip('no embedding model');
      await expectApiError(client.embeddings.create({ model: 'no-such-embedding-model-for-compat-suite', input: ['hi'], encoding_format: 'float' }));
    });

    it('rejects a malformed chat body with a 4xx APIError carrying a message', async () => {
      // Through the SDK's generic post so the malformed body still goes over its real request path.
      await expectApiError(client.post('/chat/completions', { body: { model: target.model, messages: 'not-a-list' } }));
    });
  });
}

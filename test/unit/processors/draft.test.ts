import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../core/logger.ts';
import { loadConfig } from '../../../config/index.ts';
import { OCCUPATIONS, sampleAttributes } from '../../../persona/attributes.ts';
import { composeDescription } from '../../../persona/compose.ts';
import { draft, personaId } from '../../../processors/draft/index.ts';
import { buildDraftMessages, DRAFT_OUTPUT_SCHEMA, FEW_SHOT } from '../../../persona/prompt.ts';
import { salientTerms } from '../../../persona/text.ts';
import type { ProcessorContext } from '../../../runtime/processor.ts';
import type { ChatJsonRequest, LlmClient } from '../../../llm/client.ts';
import { sampleSeed } from '../../helpers/samples.ts';

function ctx(overrides: Partial<ProcessorContext> & { env?: Record<string, string> } = {}): ProcessorContext {
  const { env, ...rest } = overrides;
  return {
    config: loadConfig({ PERSONAHUB_MODE: 'sampler', ...env }), logger: createLogger({ level: 'silent' }), llm: undefined,
    embedder: { model: 'none', embed: async () => [] }, store: undefined as never, now: () => 42, ...rest,
  };
}

describe('attribute sampling', () => {
  it('is deterministic per (seed, index) and varies across them', () => {
    expect(sampleAttributes('s1', 0)).toEqual(sampleAttributes('s1', 0));
    const many = Array.from({ length: 200 }, (_, i) => sampleAttributes(`seed-${i}`, 0));
    expect(new Set(many.map((a) => a.occupation)).size).toBeGreaterThan(20);
    expect(new Set(many.map((a) => a.locale)).size).toBeGreaterThan(15);
  });

  it('never samples an age implausible for the occupation', () => {
    for (let i = 0; i < 500; i += 1) {
      const a = sampleAttributes(`s${i}`, i % 3);
      const spec = OCCUPATIONS.find((o) => o.title === a.occupation);
      expect(spec).toBeDefined();
      expect(a.age).toBeGreaterThanOrEqual(spec?.minAge ?? 0);
      expect(a.age).toBeLessThanOrEqual(spec?.maxAge ?? 200);
      expect(new Set(a.traits).size).toBe(3);
    }
  });
});

describe('prompt building', () => {
  it('puts the fixed few-shot prefix first and the grounded attributes and seed last', () => {
    const a = sampleAttributes('seed', 0);
    const messages = buildDraftMessages(a, 'A recipe for sourdough bread with rye flour.');
    expect(messages[0]?.role).toBe('system');
    expect(messages).toHaveLength(2 + FEW_SHOT.length * 2);
    const last = messages[messages.length - 1]?.content ?? '';
    for (const value of [a.name, String(a.age), a.occupation, a.locale, 'sourdough']) expect(last).toContain(value);
    // The prefix is identical for every persona, so a server can cache it.
    expect(buildDraftMessages(sampleAttributes('other', 1), 'x').slice(0, -1)).toEqual(messages.slice(0, -1));
  });

  it('bounds every string the model writes', () => {
    expect(DRAFT_OUTPUT_SCHEMA.properties.description.maxLength).toBeLessThanOrEqual(600);
  });
});

describe('sampler mode', () => {
  it('composes a description that states the sampled attributes and the seed terms', () => {
    const a = sampleAttributes('seed', 0);
    const text = composeDescription(a, 'Farmers in Kenya adopt drought-resistant sorghum varieties; sorghum yields rose.', 'k');
    expect(text).toContain(a.name);
    expect(text).toContain(`${a.age}`);
    expect(text).toContain(a.occupation);
    expect(text).toContain('sorghum');
  });

  it('salient terms skip stop words and rank by frequency', () => {
    expect(salientTerms('The river and the river bank flooded; the bank closed.', 2)).toEqual(['river', 'bank']);
  });

  it('draft emits personasPerSeed personas with stable ids and SAMPLER provenance', async () => {
    const out = await draft.process(sampleSeed(), ctx({ env: { PERSONAHUB_PERSONAS_PER_SEED: '3' } }));
    expect(out.map((o) => o.key)).toEqual([0, 1, 2].map((i) => personaId('a'.repeat(32), i)));
    for (const o of out) {
      expect(o.event).toBe('draft');
      expect(o.value.provenance).toMatchObject({ mode: 'SAMPLER', model: 'sampler', createdAt: 42 });
    }
  });
});

describe('LLM mode', () => {
  it('sends the grounded prompt with a JSON schema and keeps only a description that parses', async () => {
    const calls: ChatJsonRequest<unknown>[] = [];
    const llm: LlmClient = {
      async chatJson<T>(req: ChatJsonRequest<T>) {
        calls.push(req as ChatJsonRequest<unknown>);
        return { value: req.parse({ description: '  A grounded persona description that is long enough to pass the length check.  ' }), model: 'fake-model', cached: false };
      },
      embed: async () => ({ vectors: [], model: 'x', dimensions: 0 }),
      close: async () => {},
    };
    const out = await draft.process(sampleSeed(), ctx({ llm, env: { PERSONAHUB_MODE: 'llm' } }));
    expect(calls).toHaveLength(1);
    expect(calls[0]?.schema).toEqual(DRAFT_OUTPUT_SCHEMA);
    expect(out[0]?.value.description).toBe('A grounded persona description that is long enough to pass the length check.');
    expect(out[0]?.value.provenance).toMatchObject({ mode: 'LLM', model: 'fake-model' });
    expect(() => calls[0]?.parse({ description: 'too short' })).toThrow();
    expect(() => calls[0]?.parse({ text: 'wrong field' })).toThrow();
  });
});

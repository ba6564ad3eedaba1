import { describe, expect, it } from 'vitest';
import { sampleAttributes } from '../../../persona/attributes.ts';
import { buildDraftMessages, DRAFT_OUTPUT_SCHEMA, FEW_SHOT } from '../../../persona/prompt.ts';

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

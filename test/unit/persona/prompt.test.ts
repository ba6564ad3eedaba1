import { describe, expect, it } from 'vitest';
import { sampleAttributes } from '../../../persona/attributes.ts';
import { buildModalitiesMessages, MODALITIES_MAX_TOKENS, MODALITIES_OUTPUT_SCHEMA, toLastSentence } from '../../../persona/modalities-prompt.ts';
import { buildDraftMessages, DRAFT_MAX_TOKENS, DRAFT_OUTPUT_SCHEMA, FEW_SHOT } from '../../../persona/prompt.ts';
import { samplePersona } from '../../helpers/samples.ts';

type Bounded = { type: string; minLength?: number; maxLength?: number; minItems?: number; maxItems?: number; items?: Bounded };

/** The bound violations of a value under one of the output schemas' properties: what a grammar-constrained server would never write. */
function outOfBounds(name: string, schema: Bounded, value: unknown): string[] {
  if (schema.type === 'array') {
    const items = Array.isArray(value) ? value : [];
    const count = items.length < (schema.minItems ?? 0) || items.length > (schema.maxItems ?? Infinity) ? [`${name}: ${items.length} items`] : [];
    return [...count, ...items.flatMap((v, i) => (schema.items ? outOfBounds(`${name}[${i}]`, schema.items, v) : []))];
  }
  const length = typeof value === 'string' ? value.length : -1;
  return length < (schema.minLength ?? 0) || length > (schema.maxLength ?? Infinity) ? [`${name}: ${length} characters`] : [];
}

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
    for (const schema of [DRAFT_OUTPUT_SCHEMA, MODALITIES_OUTPUT_SCHEMA]) {
      expect([...schema.required].sort()).toEqual(Object.keys(schema.properties).sort());
      for (const field of Object.values(schema.properties) as Bounded[]) {
        const strings = field.type === 'array' ? field.items : field;
        expect(strings?.maxLength).toBeLessThanOrEqual(420);
        if (field.type === 'array') expect(field.maxItems).toBeLessThanOrEqual(3);
      }
    }
  });

  it('leaves room for the longest answer each schema allows, so no bounded answer is cut off at max_tokens', () => {
    // At four characters a token (the client's own estimate), plus quotes, keys and separators per field and item.
    const room = (schema: { properties: Record<string, unknown> }): number => Object.entries(schema.properties).reduce((n, [name, field]) => {
      const f = field as Bounded;
      const items = f.type === 'array' ? (f.maxItems ?? 0) : 1;
      const each = (f.type === 'array' ? f.items?.maxLength : f.maxLength) ?? 0;
      return n + name.length + 6 + items * (each + 4);
    }, 2);
    expect(DRAFT_MAX_TOKENS * 4).toBeGreaterThanOrEqual(room(DRAFT_OUTPUT_SCHEMA));
    expect(MODALITIES_MAX_TOKENS * 4).toBeGreaterThanOrEqual(room(MODALITIES_OUTPUT_SCHEMA));
  });

  it('asks for the written facets, and each few-shot answer shows all of them within the bounds', () => {
    const messages = buildDraftMessages(sampleAttributes('seed', 0), 'A recipe for sourdough bread with rye flour.');
    for (const field of ['shortPersona', 'professional', 'family', 'leisure', 'relation']) expect(messages[0]?.content).toContain(`"${field}"`);
    const answers = messages.filter((m) => m.role === 'assistant').map((m) => JSON.parse(m.content) as Record<string, unknown>);
    expect(answers).toHaveLength(FEW_SHOT.length);
    for (const answer of answers) {
      expect(Object.keys(answer)).toEqual(Object.keys(DRAFT_OUTPUT_SCHEMA.properties));
      for (const [name, schema] of Object.entries(DRAFT_OUTPUT_SCHEMA.properties)) expect(outOfBounds(name, schema, answer[name])).toEqual([]);
      expect(answer['shortPersona']).toMatch(/^An? /);
    }
  });

  it('states the sex, family and hobbies a profile drew, so pronouns and facets follow the record', () => {
    const a = sampleAttributes('seed', 0);
    const grounded = buildDraftMessages(a, 'x', { sex: 'female', maritalStatus: 'widowed', household: 'living alone', hobbies: ['chess', 'gardening'] }).at(-1)?.content ?? '';
    for (const line of ['Sex: female', 'Family: widowed, lives alone', 'Hobbies: chess, gardening']) expect(grounded).toContain(line);
    // "never married, with parents" was read by the model as the parents' status; the clause is about the person.
    expect(buildDraftMessages(a, 'x', { sex: 'male', maritalStatus: 'never married', household: 'with parents', hobbies: [] }).at(-1)?.content).toContain('Family: never married, lives with their parents');
    expect(buildDraftMessages(a, 'x').at(-1)?.content).not.toMatch(/^(?:Sex|Family|Hobbies):/m);
    // The examples show the same lines, so the model sees them used.
    expect(buildDraftMessages(a, 'x')[1]?.content).toContain(`Sex: ${FEW_SHOT[0]?.grounding.sex}`);
  });

  it('grounds the modalities call on the persona, with a worked example inside the bounds', () => {
    const p = samplePersona({
      facets: { shortPersona: 'A pediatric nurse in Lagos.', professional: 'Runs the vaccination clinic.', family: 'Lives with two daughters.', leisure: 'Sings in a choir.', seedRelation: 'Reads about exams.' },
    });
    const messages = buildModalitiesMessages(p);
    expect(messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user']);
    const last = messages[3]?.content ?? '';
    for (const value of [p.name, String(p.age), p.occupation, p.locale, p.traits.join(', '), p.description, 'Runs the vaccination clinic.', 'Lives with two daughters.']) expect(last).toContain(value);
    const example = JSON.parse(messages[2]?.content ?? '{}') as Record<string, unknown>;
    expect(Object.keys(example)).toEqual(Object.keys(MODALITIES_OUTPUT_SCHEMA.properties));
    for (const [name, schema] of Object.entries(MODALITIES_OUTPUT_SCHEMA.properties)) expect(outOfBounds(name, schema as Bounded, example[name])).toEqual([]);
    // The example persona's own facts, not this persona's: only the last message changes per persona.
    expect(buildModalitiesMessages(samplePersona({ id: 'c'.repeat(32) })).slice(0, 3)).toEqual(messages.slice(0, 3));
  });
});

describe('bounded prose', () => {
  it('cuts a string the grammar closed mid-sentence back to its last full sentence, and leaves the rest', () => {
    expect(toLastSentence('He grew up in Jakarta. Patient and anxious, he still')).toBe('He grew up in Jakarta.');
    expect(toLastSentence('He grew up in Jakarta. He moved twice! ')).toBe('He grew up in Jakarta. He moved twice!');
    expect(toLastSentence('short graying hair and a tidy uniform')).toBe('short graying hair and a tidy uniform');
    expect(toLastSentence('She says "never again."')).toBe('She says "never again."');
  });
});

import { describe, expect, it } from 'vitest';
import { boundJsonSchema, DEFAULT_SCHEMA_BOUNDS, MAX_GRAMMAR_REPETITIONS, UnsupportedSchemaError } from '../../../../models/server/json-schema-grammar.ts';

function unsupported(schema: unknown): UnsupportedSchemaError {
  try {
    boundJsonSchema(schema);
  } catch (error) {
    if (error instanceof UnsupportedSchemaError) return error;
    throw error;
  }
  throw new Error('expected UnsupportedSchemaError');
}

const persona = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 40 },
    age: { type: 'integer', minimum: 18, maximum: 90 },
    occupation: { type: 'string' },
    description: { type: 'string', maxLength: 300, description: 'two sentences' },
    tags: { type: 'array', items: { type: 'string', maxLength: 20 } },
  },
  required: ['name', 'age', 'occupation', 'description', 'tags'],
  additionalProperties: false,
};

describe('boundJsonSchema', () => {
  it('bounds unbounded strings and arrays with the documented defaults and reports where', () => {
    const { schema, defaultsApplied } = boundJsonSchema(persona);
    expect(schema).toMatchObject({
      type: 'object',
      additionalProperties: false,
      properties: {
        name: { type: 'string', maxLength: 40 },
        occupation: { type: 'string', maxLength: DEFAULT_SCHEMA_BOUNDS.stringMaxLength },
        description: { type: 'string', maxLength: 300 },
        tags: { type: 'array', maxItems: DEFAULT_SCHEMA_BOUNDS.arrayMaxItems, items: { type: 'string', maxLength: 20 } },
      },
    });
    expect(defaultsApplied).toEqual(['/properties/occupation', '/properties/tags']);
  });

  it('drops annotations the grammar does not use', () => {
    const { schema } = boundJsonSchema(persona);
    expect(JSON.stringify(schema)).not.toContain('two sentences');
    expect(schema).not.toHaveProperty('required');
  });

  it('enforces an integer range by listing its values', () => {
    const { schema } = boundJsonSchema({ type: 'integer', minimum: 18, maximum: 90 });
    expect(schema).toEqual({ enum: Array.from({ length: 73 }, (_, i) => 18 + i) });
    expect(boundJsonSchema({ type: 'integer', exclusiveMinimum: 0, exclusiveMaximum: 4 }).schema).toEqual({ enum: [1, 2, 3] });
    expect(boundJsonSchema({ type: 'integer', minimum: 0, maximum: 100, multipleOf: 25 }).schema).toEqual({ enum: [0, 25, 50, 75, 100] });
  });

  it('refuses integer ranges it cannot list, naming the keyword', () => {
    expect(unsupported({ type: 'integer', minimum: 0 }).keyword).toBe('maximum');
    expect(unsupported({ type: 'integer', maximum: 10 }).keyword).toBe('minimum');
    expect(unsupported({ type: 'integer', minimum: 0, maximum: 1_000_000 }).message).toContain('at most 1000 values');
    expect(unsupported({ type: 'integer', minimum: 5, maximum: 4 }).keyword).toBe('minimum');
  });

  it('refuses numeric bounds on type number', () => {
    const error = unsupported({ type: 'object', properties: { openness: { type: 'number', minimum: 0, maximum: 1 } } });
    expect(error.keyword).toBe('minimum');
    expect(error.path).toBe('/properties/openness');
  });

  it.each([
    ['$ref', { $ref: '#/$defs/person' }],
    ['$defs', { type: 'object', properties: {}, $defs: {} }],
    ['patternProperties', { type: 'object', properties: {}, patternProperties: { '^x': { type: 'string' } } }],
    ['pattern', { type: 'string', pattern: '^[a-z]+$' }],
    ['allOf', { allOf: [{ type: 'string' }] }],
    ['uniqueItems', { type: 'array', items: { type: 'string' }, uniqueItems: true }],
    ['additionalProperties', { type: 'object', properties: {}, additionalProperties: { type: 'string' } }],
    ['format', { type: 'string', format: 'email' }],
    ['x-custom', { type: 'string', 'x-custom': 1 }],
    ['properties', { type: 'object' }],
    ['items', { type: 'array' }],
    ['type', {}],
  ])('refuses %s with a 400-worthy message naming it', (keyword, schema) => {
    const error = unsupported(schema);
    expect(error.keyword).toBe(keyword);
    expect(error.message).toContain(`'${keyword}'`);
    expect(error.code).toBe('PH_MODEL_SCHEMA_UNSUPPORTED');
  });

  it('names the path of a nested offender', () => {
    const error = unsupported({ type: 'object', properties: { friends: { type: 'array', items: { $ref: '#/$defs/p' } } } });
    expect(error.path).toBe('/properties/friends/items');
    expect(error.message).toContain('/properties/friends/items');
  });

  it('turns type lists (OpenAI strict-mode optionals) into one branch per type', () => {
    const { schema, defaultsApplied } = boundJsonSchema({ type: ['string', 'null'] });
    expect(schema).toEqual({ oneOf: [{ type: 'string', maxLength: 256 }, { type: 'null' }] });
    expect(defaultsApplied).toEqual(['/']);
  });

  it('keeps enum, const, anyOf and date formats', () => {
    expect(boundJsonSchema({ type: 'string', enum: ['a', 'b'] }).schema).toEqual({ enum: ['a', 'b'] });
    expect(boundJsonSchema({ const: 3 }).schema).toEqual({ const: 3 });
    expect(boundJsonSchema({ anyOf: [{ type: 'boolean' }, { type: 'string', maxLength: 3 }] }).schema)
      .toEqual({ oneOf: [{ type: 'boolean' }, { type: 'string', maxLength: 3 }] });
    expect(boundJsonSchema({ type: 'string', format: 'date' }).schema).toEqual({ type: 'string', format: 'date' });
  });

  it('raises a default bound to a larger declared minimum', () => {
    expect(boundJsonSchema({ type: 'string', minLength: 400 }).schema).toEqual({ type: 'string', minLength: 400, maxLength: 400 });
    expect(boundJsonSchema({ type: 'array', items: { type: 'boolean' }, minItems: 12 }).schema)
      .toEqual({ type: 'array', items: { type: 'boolean' }, minItems: 12, maxItems: 12 });
  });

  it('treats prefixItems without items as a closed tuple', () => {
    expect(boundJsonSchema({ type: 'array', prefixItems: [{ type: 'integer' }, { type: 'boolean' }] }).schema)
      .toEqual({ type: 'array', prefixItems: [{ type: 'integer' }, { type: 'boolean' }], maxItems: 2 });
  });

  it('refuses contradictory or nonsensical bounds', () => {
    expect(unsupported({ type: 'string', minLength: 5, maxLength: 2 }).keyword).toBe('maxLength');
    expect(unsupported({ type: 'array', items: { type: 'null' }, minItems: 3, maxItems: 1 }).keyword).toBe('maxItems');
    expect(unsupported({ type: 'string', maxLength: -1 }).keyword).toBe('maxLength');
    expect(unsupported({ type: 'object', properties: { a: { type: 'null' } }, required: ['b'] }).keyword).toBe('required');
  });

  it('refuses lengths and counts beyond what a llama.cpp grammar can repeat', () => {
    expect(boundJsonSchema({ type: 'string', maxLength: MAX_GRAMMAR_REPETITIONS }).schema).toEqual({ type: 'string', maxLength: 999 });
    const error = unsupported({ type: 'string', maxLength: MAX_GRAMMAR_REPETITIONS + 1 });
    expect(error.keyword).toBe('maxLength');
    expect(error.message).toContain('at most 999');
    expect(unsupported({ type: 'array', items: { type: 'null' }, minItems: 5000 }).keyword).toBe('minItems');
  });

  it('refuses schemas nested deeper than the limit', () => {
    let schema: Record<string, unknown> = { type: 'null' };
    for (let i = 0; i < DEFAULT_SCHEMA_BOUNDS.maxDepth + 1; i++) schema = { type: 'array', items: schema, maxItems: 1 };
    expect(unsupported(schema).message).toContain('deeper');
  });
});

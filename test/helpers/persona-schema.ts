/**
 * The persona JSON schema the model-server tests and benchmark ask for: small enough for a 270M
 * model under a grammar, and it exercises string and integer bounds and `required`.
 */
export const PERSONA_JSON_SCHEMA = {
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 40 },
    age: { type: 'integer', minimum: 18, maximum: 90 },
    occupation: { type: 'string', minLength: 1, maxLength: 60 },
    description: { type: 'string', minLength: 1, maxLength: 300 },
  },
  required: ['name', 'age', 'occupation', 'description'],
  additionalProperties: false,
} as const;

/**
 * Turns a client's JSON Schema (OpenAI `response_format: json_schema`) into the schema subset that
 * node-llama-cpp's `llama.createGrammarForJsonSchema` compiles to a GBNF grammar, with every string
 * and array bounded.
 *
 * Why bound everything: a grammar only says what the model may write, not when to stop. A small
 * base model inside an unbounded string keeps writing until max_tokens and the JSON comes back
 * truncated (DESIGN §8); with `maxLength`/`maxItems` the grammar itself closes the value.
 *
 * Why refuse some keywords: a keyword the grammar cannot enforce would make the server return JSON
 * that the client's own validator then rejects. Refusing with a 400 that names the keyword tells the
 * caller at once what to change, instead of failing later and only sometimes.
 */
import type { GbnfJsonSchema } from 'node-llama-cpp';
import { ModelError } from '../../core/errors.ts';

/** Bounds applied where the request schema leaves a value unbounded. */
export interface SchemaBounds {
  /** `maxLength` for strings that declare none (raised to `minLength` when that is larger). */
  stringMaxLength: number;
  /** `maxItems` for arrays that declare none (raised to `minItems` / the tuple length when larger). */
  arrayMaxItems: number;
  /**
   * Widest integer range (`minimum`..`maximum`) enforced exactly, by listing the allowed values as
   * alternatives in the grammar; node-llama-cpp's grammar has no numeric range rule. Measured on the
   * Gemma 3 270M (the local model then): 1,000 alternatives cost nothing noticeable per token.
   */
  integerRangeMaxValues: number;
  /** Deepest nesting of objects and arrays accepted, against stack exhaustion and runaway schemas. */
  maxDepth: number;
}

/**
 * Largest `maxLength`/`minLength`/`maxItems`/`minItems` the grammar can hold. llama.cpp's grammar
 * parser refuses a repetition whose count times the symbols repeated reaches 2000
 * (MAX_REPETITION_THRESHOLD), and the string and array rules repeat two symbols: measured, 999 compiles
 * and 1000 does not.
 */
export const MAX_GRAMMAR_REPETITIONS = 999;

export const DEFAULT_SCHEMA_BOUNDS: Readonly<SchemaBounds> = Object.freeze({
  stringMaxLength: 256,
  arrayMaxItems: 8,
  integerRangeMaxValues: 1000,
  maxDepth: 16,
});

/** The request schema uses something the grammar cannot express or enforce. Maps to HTTP 400. */
export class UnsupportedSchemaError extends ModelError {
  /** The offending keyword, e.g. `$ref`. */
  readonly keyword: string;
  /** JSON Pointer of the schema node holding it, e.g. `/properties/tags`. */
  readonly path: string;

  constructor(keyword: string, path: string, detail: string) {
    super('PH_MODEL_SCHEMA_UNSUPPORTED', `response_format schema at '${path || '/'}': '${keyword}' ${detail}`);
    this.keyword = keyword;
    this.path = path;
  }
}

export interface BoundedSchema {
  schema: GbnfJsonSchema;
  /** JSON Pointers of the nodes that received a default bound, for logging and response headers. */
  defaultsApplied: string[];
}

/** Keywords that only describe a value; they constrain nothing and are dropped. */
const ANNOTATIONS = new Set([
  '$schema', '$id', '$comment', 'title', 'description', 'default', 'examples', 'deprecated', 'readOnly', 'writeOnly',
]);

/** Why each known-but-unenforceable keyword is refused; the text follows the keyword name. */
const UNSUPPORTED: Readonly<Record<string, string>> = {
  $ref: 'is not supported: inline the referenced schema',
  $defs: 'is not supported: inline the definitions where they are used',
  definitions: 'is not supported: inline the definitions where they are used',
  $anchor: 'is not supported: inline the referenced schema',
  $dynamicRef: 'is not supported: inline the referenced schema',
  allOf: 'is not supported: merge the subschemas into one',
  not: 'cannot be expressed by the grammar',
  if: 'cannot be expressed by the grammar',
  then: 'cannot be expressed by the grammar',
  else: 'cannot be expressed by the grammar',
  pattern: 'cannot be expressed by the grammar: use enum or drop it and validate client-side',
  patternProperties: 'cannot be expressed by the grammar: declare each property under properties',
  propertyNames: 'cannot be expressed by the grammar',
  dependentRequired: 'cannot be expressed by the grammar',
  dependentSchemas: 'cannot be expressed by the grammar',
  dependencies: 'cannot be expressed by the grammar',
  unevaluatedProperties: 'cannot be expressed by the grammar',
  unevaluatedItems: 'cannot be expressed by the grammar',
  minProperties: 'is not supported: every declared property is always generated',
  maxProperties: 'is not supported: every declared property is always generated',
  uniqueItems: 'cannot be enforced by the grammar',
  contains: 'cannot be expressed by the grammar',
  minContains: 'cannot be expressed by the grammar',
  maxContains: 'cannot be expressed by the grammar',
  contentEncoding: 'cannot be expressed by the grammar',
  contentMediaType: 'cannot be expressed by the grammar',
  contentSchema: 'cannot be expressed by the grammar',
  nullable: 'is OpenAPI 3.0, not JSON Schema: use type: [..., "null"]',
};

/** Keywords handled below, per the type they apply to. */
const STRUCTURAL = new Set(['type', 'enum', 'const', 'oneOf', 'anyOf']);
const STRING_KEYWORDS = new Set(['minLength', 'maxLength', 'format']);
const NUMBER_KEYWORDS = new Set(['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf']);
const OBJECT_KEYWORDS = new Set(['properties', 'required', 'additionalProperties']);
const ARRAY_KEYWORDS = new Set(['items', 'prefixItems', 'minItems', 'maxItems']);
const GRAMMAR_FORMATS = new Set(['date', 'time', 'date-time']);
const TYPES = new Set(['string', 'number', 'integer', 'boolean', 'null', 'object', 'array']);

type Primitive = string | number | boolean | null;
type SchemaNode = Readonly<Record<string, unknown>>;

function isPlainObject(value: unknown): value is SchemaNode {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isPrimitive(value: unknown): value is Primitive {
  return value === null || typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value));
}

function pointer(path: string, ...segments: (string | number)[]): string {
  return path + segments.map((s) => '/' + String(s).replaceAll('~', '~0').replaceAll('/', '~1')).join('');
}

/**
 * Checks `input` and returns the bounded grammar schema. Throws UnsupportedSchemaError naming the
 * first keyword the grammar cannot express.
 */
export function boundJsonSchema(input: unknown, bounds: SchemaBounds = DEFAULT_SCHEMA_BOUNDS): BoundedSchema {
  const defaultsApplied: string[] = [];
  const schema = convert(input, '', 0, bounds, defaultsApplied);
  return { schema, defaultsApplied };
}

function convert(node: unknown, path: string, depth: number, bounds: SchemaBounds, defaults: string[]): GbnfJsonSchema {
  if (depth > bounds.maxDepth) {
    throw new UnsupportedSchemaError('nesting', path, `is deeper than ${bounds.maxDepth} levels of subschemas`);
  }
  if (!isPlainObject(node)) {
    throw new UnsupportedSchemaError('type', path, 'must be given by a schema object (boolean schemas cannot be bounded)');
  }
  for (const key of Object.keys(node)) {
    const reason = UNSUPPORTED[key];
    if (reason !== undefined) throw new UnsupportedSchemaError(key, path, reason);
    const known = ANNOTATIONS.has(key) || STRUCTURAL.has(key) || STRING_KEYWORDS.has(key) || NUMBER_KEYWORDS.has(key)
      || OBJECT_KEYWORDS.has(key) || ARRAY_KEYWORDS.has(key);
    if (!known) throw new UnsupportedSchemaError(key, path, 'is not a supported JSON Schema keyword');
  }

  if ('const' in node) {
    if (!isPrimitive(node.const)) throw new UnsupportedSchemaError('const', path, 'must be a string, number, boolean or null');
    return { const: node.const };
  }
  if ('enum' in node) {
    const values = node.enum;
    if (!Array.isArray(values) || values.length === 0 || !values.every(isPrimitive)) {
      throw new UnsupportedSchemaError('enum', path, 'must be a non-empty array of strings, numbers, booleans or nulls');
    }
    return { enum: values };
  }
  for (const keyword of ['oneOf', 'anyOf'] as const) {
    if (!(keyword in node)) continue;
    const branches = node[keyword];
    if (!Array.isArray(branches) || branches.length === 0) {
      throw new UnsupportedSchemaError(keyword, path, 'must be a non-empty array of schemas');
    }
    const siblings = Object.keys(node).filter((key) => key !== keyword && !ANNOTATIONS.has(key));
    if (siblings.length > 0) {
      throw new UnsupportedSchemaError(siblings[0] ?? keyword, path, `beside ${keyword} is not supported: move it into each branch`);
    }
    // The grammar generates exactly one branch, so the output satisfies anyOf, and oneOf too unless
    // the branches overlap, which the grammar cannot rule out either way.
    return { oneOf: branches.map((branch, i) => convert(branch, pointer(path, keyword, i), depth + 1, bounds, defaults)) };
  }

  const types = resolveTypes(node, path);
  if (types.length > 1) {
    // `type: ["string", "null"]` (how OpenAI strict mode spells optional) becomes one branch per
    // type, each keeping the keywords that apply to it.
    return { oneOf: types.map((type) => convertTyped(node, type, path, depth, bounds, defaults)) };
  }
  const [type] = types;
  if (type === undefined) throw new UnsupportedSchemaError('type', path, 'must list at least one type');
  return convertTyped(node, type, path, depth, bounds, defaults);
}

function resolveTypes(node: SchemaNode, path: string): string[] {
  const declared = node.type;
  if (declared === undefined) {
    // JSON Schema allows leaving the type implicit; infer it where the keywords leave no doubt.
    if ('properties' in node) return ['object'];
    if ('items' in node || 'prefixItems' in node) return ['array'];
    throw new UnsupportedSchemaError('type', path, 'is required: the grammar needs a type (or enum/const/oneOf) to bound the value');
  }
  const list = Array.isArray(declared) ? declared : [declared];
  for (const type of list) {
    if (typeof type !== 'string' || !TYPES.has(type)) {
      throw new UnsupportedSchemaError('type', path, `has unknown type ${JSON.stringify(type)}`);
    }
  }
  return [...new Set(list as string[])];
}

function convertTyped(node: SchemaNode, type: string, path: string, depth: number, bounds: SchemaBounds, defaults: string[]): GbnfJsonSchema {
  switch (type) {
    case 'string':
      return convertString(node, path, bounds, defaults);
    case 'integer':
      return convertInteger(node, path, bounds);
    case 'number':
      for (const keyword of NUMBER_KEYWORDS) {
        if (keyword in node) {
          throw new UnsupportedSchemaError(keyword, path, 'cannot be enforced on type number: use type integer with a range, or drop it and validate client-side');
        }
      }
      return { type: 'number' };
    case 'object':
      return convertObject(node, path, depth, bounds, defaults);
    case 'array':
      return convertArray(node, path, depth, bounds, defaults);
    case 'boolean':
      return { type: 'boolean' };
    default:
      return { type: 'null' };
  }
}

/** A length or item count: a non-negative integer the grammar can repeat. */
function repetitionBound(node: SchemaNode, keyword: string, path: string): number | undefined {
  const value = node[keyword];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new UnsupportedSchemaError(keyword, path, 'must be a non-negative integer');
  }
  if (value > MAX_GRAMMAR_REPETITIONS) {
    throw new UnsupportedSchemaError(keyword, path, `is ${value}; llama.cpp grammars repeat at most ${MAX_GRAMMAR_REPETITIONS} times`);
  }
  return value;
}

function convertString(node: SchemaNode, path: string, bounds: SchemaBounds, defaults: string[]): GbnfJsonSchema {
  if ('format' in node) {
    const format = node.format;
    if (format !== 'date' && format !== 'time' && format !== 'date-time') {
      throw new UnsupportedSchemaError('format', path, `${JSON.stringify(format)} cannot be expressed by the grammar (supported: ${[...GRAMMAR_FORMATS].join(', ')})`);
    }
    if ('minLength' in node || 'maxLength' in node) {
      throw new UnsupportedSchemaError('maxLength', path, 'cannot be combined with format: a formatted string is already bounded');
    }
    return { type: 'string', format };
  }
  const minLength = repetitionBound(node, 'minLength', path) ?? 0;
  let maxLength = repetitionBound(node, 'maxLength', path);
  if (maxLength === undefined) {
    maxLength = Math.max(bounds.stringMaxLength, minLength);
    defaults.push(path || '/');
  } else if (maxLength < minLength) {
    throw new UnsupportedSchemaError('maxLength', path, `(${maxLength}) is below minLength (${minLength})`);
  }
  return minLength > 0 ? { type: 'string', minLength, maxLength } : { type: 'string', maxLength };
}

function finiteNumber(node: SchemaNode, keyword: string, path: string): number | undefined {
  const value = node[keyword];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new UnsupportedSchemaError(keyword, path, 'must be a finite number');
  return value;
}

function convertInteger(node: SchemaNode, path: string, bounds: SchemaBounds): GbnfJsonSchema {
  const minimum = finiteNumber(node, 'minimum', path);
  const maximum = finiteNumber(node, 'maximum', path);
  const exclusiveMinimum = finiteNumber(node, 'exclusiveMinimum', path);
  const exclusiveMaximum = finiteNumber(node, 'exclusiveMaximum', path);
  const multipleOf = finiteNumber(node, 'multipleOf', path);
  if (minimum === undefined && maximum === undefined && exclusiveMinimum === undefined && exclusiveMaximum === undefined && multipleOf === undefined) {
    return { type: 'integer' };
  }
  const lowCandidates = [minimum, exclusiveMinimum === undefined ? undefined : Math.floor(exclusiveMinimum) + 1]
    .filter((v): v is number => v !== undefined).map(Math.ceil);
  const highCandidates = [maximum, exclusiveMaximum === undefined ? undefined : Math.ceil(exclusiveMaximum) - 1]
    .filter((v): v is number => v !== undefined).map(Math.floor);
  if (lowCandidates.length === 0 || highCandidates.length === 0) {
    const missing = lowCandidates.length === 0 ? 'minimum' : 'maximum';
    throw new UnsupportedSchemaError(missing, path, `is required with a one-sided range: the grammar enforces integer ranges by listing at most ${bounds.integerRangeMaxValues} values`);
  }
  const low = Math.max(...lowCandidates);
  const high = Math.min(...highCandidates);
  if (multipleOf !== undefined && (!Number.isInteger(multipleOf) || multipleOf <= 0)) {
    throw new UnsupportedSchemaError('multipleOf', path, 'must be a positive integer on type integer');
  }
  const step = multipleOf ?? 1;
  const first = Math.ceil(low / step) * step;
  const count = first > high ? 0 : Math.floor((high - first) / step) + 1;
  if (count === 0) throw new UnsupportedSchemaError('minimum', path, `leaves no integer in range ${low}..${high}`);
  if (count > bounds.integerRangeMaxValues) {
    throw new UnsupportedSchemaError('maximum', path, `allows ${count} values; the grammar enforces integer ranges of at most ${bounds.integerRangeMaxValues} values`);
  }
  return { enum: Array.from({ length: count }, (_, i) => first + i * step) };
}

function convertObject(node: SchemaNode, path: string, depth: number, bounds: SchemaBounds, defaults: string[]): GbnfJsonSchema {
  const properties = node.properties;
  if (properties === undefined) {
    throw new UnsupportedSchemaError('properties', path, 'is required on objects: free-form keys cannot be bounded (use response_format json_object for free-form JSON)');
  }
  if (!isPlainObject(properties)) throw new UnsupportedSchemaError('properties', path, 'must be an object of schemas');
  const additional = node.additionalProperties;
  if (additional !== undefined && typeof additional !== 'boolean') {
    throw new UnsupportedSchemaError('additionalProperties', path, 'as a schema cannot be bounded: declare each property under properties');
  }
  const required = node.required;
  if (required !== undefined) {
    if (!Array.isArray(required) || !required.every((name) => typeof name === 'string')) {
      throw new UnsupportedSchemaError('required', path, 'must be an array of property names');
    }
    const unknown = required.find((name) => !Object.hasOwn(properties, name));
    if (unknown !== undefined) {
      throw new UnsupportedSchemaError('required', path, `names '${unknown}', which is not under properties`);
    }
  }
  // The grammar writes every declared property and no other (node-llama-cpp's object rule), which
  // satisfies any `required` subset and any `additionalProperties` setting.
  const converted: Record<string, GbnfJsonSchema> = {};
  for (const [name, child] of Object.entries(properties)) {
    converted[name] = convert(child, pointer(path, 'properties', name), depth + 1, bounds, defaults);
  }
  return { type: 'object', properties: converted, additionalProperties: false };
}

function convertArray(node: SchemaNode, path: string, depth: number, bounds: SchemaBounds, defaults: string[]): GbnfJsonSchema {
  const prefixSource = node.prefixItems;
  if (prefixSource !== undefined && !Array.isArray(prefixSource)) {
    throw new UnsupportedSchemaError('prefixItems', path, 'must be an array of schemas');
  }
  const prefixItems = prefixSource?.map((item, i) => convert(item, pointer(path, 'prefixItems', i), depth + 1, bounds, defaults));
  const itemsSource = node.items;
  if (Array.isArray(itemsSource)) {
    throw new UnsupportedSchemaError('items', path, 'as an array (draft-04 tuples) is not supported: use prefixItems');
  }
  if (itemsSource === undefined && prefixItems === undefined) {
    throw new UnsupportedSchemaError('items', path, 'is required on arrays: the grammar needs an item schema to bound the items');
  }
  if (typeof itemsSource === 'boolean' && itemsSource) {
    throw new UnsupportedSchemaError('items', path, 'true allows any item, which cannot be bounded: give an item schema');
  }
  // `items: false` (or no items beside prefixItems) closes the tuple.
  const items = itemsSource === undefined || itemsSource === false ? undefined : convert(itemsSource, pointer(path, 'items'), depth + 1, bounds, defaults);
  const tupleLength = prefixItems?.length ?? 0;
  const minItems = repetitionBound(node, 'minItems', path) ?? 0;
  let maxItems = repetitionBound(node, 'maxItems', path);
  if (maxItems !== undefined && maxItems < Math.max(minItems, tupleLength)) {
    throw new UnsupportedSchemaError('maxItems', path, `(${maxItems}) is below minItems or the prefixItems length (${Math.max(minItems, tupleLength)})`);
  }
  if (items === undefined) {
    // A tuple without further items: its length is the bound. The grammar writes every tuple item.
    if (minItems > tupleLength) throw new UnsupportedSchemaError('minItems', path, `(${minItems}) exceeds the closed tuple length (${tupleLength})`);
    maxItems = tupleLength;
  } else if (maxItems === undefined) {
    maxItems = Math.max(bounds.arrayMaxItems, minItems, tupleLength);
    defaults.push(path || '/');
  }
  const result: { type: 'array'; items?: GbnfJsonSchema; prefixItems?: GbnfJsonSchema[]; minItems?: number; maxItems: number } = {
    type: 'array',
    maxItems,
  };
  if (items !== undefined) result.items = items;
  if (prefixItems !== undefined) result.prefixItems = prefixItems;
  if (minItems > 0) result.minItems = minItems;
  return result;
}

/**
 * GBNF for `response_format: json_object`: any JSON object, bounded. Free-form JSON has no schema to
 * carry bounds, and node-llama-cpp's built-in JSON grammar leaves strings, keys and arrays unbounded,
 * so this grammar fixes them: at most 16 members of which values nest two levels deep (an object or
 * array of scalars), keys up to 64 characters, strings up to 256, arrays up to 16 items.
 */
export const BOUNDED_JSON_OBJECT_GBNF = String.raw`
root ::= "{" ws ( member ( ws "," ws member ){0,15} )? ws "}"
member ::= key ws ":" ws value
key ::= "\"" char{1,64} "\""
value ::= scalar | "[" ws ( scalar ( ws "," ws scalar ){0,15} )? ws "]" | "{" ws ( key ws ":" ws scalar ( ws "," ws key ws ":" ws scalar ){0,15} )? ws "}"
scalar ::= string | number | "true" | "false" | "null"
string ::= "\"" char{0,256} "\""
char ::= [^"\\\x7F\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} )
number ::= "-"? ( "0" | [1-9] [0-9]{0,15} ) ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?
ws ::= [ \t\n]{0,16}
`.trim();

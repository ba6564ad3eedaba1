import { PersonaHubError } from '../core/errors.ts';

/**
 * The filter language of attribute-targeted generation (`personahub generate --where`) and of the
 * API: comma-separated clauses `attribute op value`, all of which must hold, e.g.
 * `occupation=nurse,age>=30,country=Nigeria`. One grammar for both, so a filter that selects stored
 * personas also targets the sampler.
 */
export type FilterOp = '=' | '!=' | '>=' | '<=' | '>' | '<';

export interface WhereClause {
  attribute: FilterAttribute;
  op: FilterOp;
  value: string | number;
}

/**
 * Every filterable attribute and its kind, in one place: `number` takes all six operators, `string`
 * takes `=` and `!=` (case-insensitive), `list` (a persona has several: languages, hobbies...) takes
 * `=` for "has this one" and `!=` for "has not this one". The sampler and the API read this table.
 */
export const FILTER_ATTRIBUTES = {
  age: 'number',
  sex: 'string',
  maritalStatus: 'string',
  household: 'string',
  educationLevel: 'string',
  educationField: 'string',
  occupation: 'string',
  industry: 'string',
  city: 'string',
  region: 'string',
  country: 'string',
  culturalBackground: 'string',
  seedRelation: 'string',
  language: 'list',
  hobby: 'list',
  skill: 'list',
  trait: 'list',
} as const satisfies Record<string, 'number' | 'string' | 'list'>;

export type FilterAttribute = keyof typeof FILTER_ATTRIBUTES;
export type FilterKind = (typeof FILTER_ATTRIBUTES)[FilterAttribute];

/** A persona's attributes as the filter sees them; an attribute a persona lacks never matches `=` and always matches `!=`. */
export type FilterableAttributes = { [A in FilterAttribute]?: (typeof FILTER_ATTRIBUTES)[A] extends 'number' ? number : (typeof FILTER_ATTRIBUTES)[A] extends 'list' ? readonly string[] : string };

export type FilterErrorCode = 'PH_FILTER_SYNTAX' | 'PH_FILTER_ATTRIBUTE' | 'PH_FILTER_OPERATOR' | 'PH_FILTER_VALUE';

/** A filter expression that cannot be parsed or names what does not exist; the message points at the clause. */
export class FilterError extends PersonaHubError {
  constructor(code: FilterErrorCode, message: string) {
    super(code, message);
  }
}

const ORDERING_OPS: readonly FilterOp[] = ['>=', '<=', '>', '<'];
// Longest operators first, so ">=" is not read as ">" followed by a value starting with "=".
const OPERATORS: readonly FilterOp[] = ['!=', '>=', '<=', '=', '>', '<'];

export function isFilterAttribute(name: string): name is FilterAttribute {
  return Object.hasOwn(FILTER_ATTRIBUTES, name);
}

/** Splits on commas outside double quotes; inside quotes `\"` and `\\` escape. */
function splitClauses(expr: string): string[] {
  const clauses: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < expr.length; i += 1) {
    const ch = expr[i] as string;
    if (quoted && ch === '\\' && i + 1 < expr.length) {
      current += ch + (expr[i + 1] as string);
      i += 1;
    } else if (ch === '"') {
      quoted = !quoted;
      current += ch;
    } else if (ch === ',' && !quoted) {
      clauses.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  if (quoted) throw new FilterError('PH_FILTER_SYNTAX', `unterminated quote in filter "${expr}"`);
  clauses.push(current);
  return clauses;
}

function unquote(raw: string, clause: string): string {
  if (!raw.startsWith('"')) {
    if (raw.includes('"')) throw new FilterError('PH_FILTER_SYNTAX', `clause "${clause}": a quote may only enclose the whole value`);
    return raw;
  }
  if (!raw.endsWith('"') || raw.length < 2) throw new FilterError('PH_FILTER_SYNTAX', `clause "${clause}": a quote may only enclose the whole value`);
  return raw.slice(1, -1).replace(/\\(["\\])/g, '$1');
}

/**
 * Parses `attribute op value[,attribute op value...]`. Whitespace around names, operators and
 * values is ignored; a value containing a comma or surrounding spaces is written in double quotes.
 * An empty expression is no filter at all.
 */
export function parseWhere(expr: string): WhereClause[] {
  if (expr.trim() === '') return [];
  return splitClauses(expr).map((part) => {
    const clause = part.trim();
    if (clause === '') throw new FilterError('PH_FILTER_SYNTAX', `empty clause in filter "${expr}" (clauses are separated by single commas)`);
    const match = /^([A-Za-z][A-Za-z0-9]*)\s*(!=|>=|<=|=|>|<)\s*(.*)$/s.exec(clause);
    if (!match) throw new FilterError('PH_FILTER_SYNTAX', `clause "${clause}" is not "attribute op value" with op one of ${OPERATORS.join(' ')}`);
    const [, name = '', op = '=', rawValue = ''] = match;
    if (!isFilterAttribute(name)) {
      throw new FilterError('PH_FILTER_ATTRIBUTE', `unknown attribute "${name}" in clause "${clause}"; filterable attributes: ${Object.keys(FILTER_ATTRIBUTES).join(', ')}`);
    }
    const kind: FilterKind = FILTER_ATTRIBUTES[name];
    const operator = op as FilterOp;
    if (kind !== 'number' && ORDERING_OPS.includes(operator)) {
      throw new FilterError('PH_FILTER_OPERATOR', `clause "${clause}": ${name} is a ${kind} attribute and takes only = and !=`);
    }
    const text = unquote(rawValue.trim(), clause);
    if (text === '') throw new FilterError('PH_FILTER_SYNTAX', `clause "${clause}" has no value`);
    if (kind === 'number') {
      if (!/^-?\d+(?:\.\d+)?$/.test(text)) throw new FilterError('PH_FILTER_VALUE', `clause "${clause}": ${name} takes a number, not "${text}"`);
      return { attribute: name, op: operator, value: Number(text) };
    }
    return { attribute: name, op: operator, value: text };
  });
}

function compareNumber(actual: number, op: FilterOp, wanted: number): boolean {
  switch (op) {
    case '=': return actual === wanted;
    case '!=': return actual !== wanted;
    case '>=': return actual >= wanted;
    case '<=': return actual <= wanted;
    case '>': return actual > wanted;
    case '<': return actual < wanted;
  }
}

/** Case-insensitive, accent-preserving equality: "nigeria" selects "Nigeria". */
export function sameValue(a: string, b: string): boolean {
  return a.localeCompare(b, 'en', { sensitivity: 'accent' }) === 0;
}

/** Whether one clause holds for a value of its attribute (undefined: the persona lacks it). */
export function clauseHolds(clause: WhereClause, actual: string | number | readonly string[] | undefined): boolean {
  if (actual === undefined) return clause.op === '!=';
  if (typeof actual === 'number') return typeof clause.value === 'number' && compareNumber(actual, clause.op, clause.value);
  const wanted = String(clause.value);
  const has = typeof actual === 'string' ? sameValue(actual, wanted) : actual.some((v) => sameValue(v, wanted));
  return clause.op === '=' ? has : clause.op === '!=' ? !has : false;
}

/** Whether every clause holds (an empty filter matches everything). */
export function matches(attrs: FilterableAttributes, clauses: readonly WhereClause[]): boolean {
  return clauses.every((c) => clauseHolds(c, attrs[c.attribute]));
}

/** The filter written back in the language, so a parsed filter can be shown, logged or sent on. */
export function formatWhere(clauses: readonly WhereClause[]): string {
  return clauses.map((c) => {
    const text = String(c.value);
    const value = typeof c.value === 'number' || /^[^",\s][^",]*(?<!\s)$/.test(text) ? text : `"${text.replace(/(["\\])/g, '\\$1')}"`;
    return `${c.attribute}${c.op}${value}`;
  }).join(',');
}

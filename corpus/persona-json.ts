import { PersonaHubError } from '../core/errors.ts';
import { conform, ConformError, recordSchema } from '../schemas/conform.ts';
import type { Persona } from '../schemas/types.generated.ts';

/** A corpus file (JSONL or Parquet) that cannot be read, or an export that cannot go on. */
export class CorpusError extends PersonaHubError {
  constructor(code: `PH_CORPUS_${string}`, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
  }
}

/**
 * The exported persona, field for field the `Persona` of schemas/persona.avsc: the same names, the same
 * nesting, enums as their symbols, timestamps as epoch milliseconds, keys in the schema's field order at
 * every level (whatever order the value was built or stored in: jsonb sorts keys its own way), so the same
 * persona always serializes to the same bytes. Read from the .avsc, so a field added there is exported too.
 */
export const PERSONA_SCHEMA = recordSchema('persona.avsc');

/**
 * The persona in the schema's shape. Values that went through `conform` fit the schema the `Persona` type
 * is generated from, which is what makes the type assertions below sound.
 */
export function canonicalPersona(p: Persona): Persona {
  return conform(p, PERSONA_SCHEMA) as Persona;
}

/** One JSONL line (without its newline). */
export function personaLine(p: Persona): string {
  return JSON.stringify(canonicalPersona(p));
}

/**
 * A decoded record checked against the persona's schema; a field it lacks gets the schema's default (a
 * file exported before the field existed), anything else that does not fit is refused with the field
 * named, so a hand-edited or foreign file is never half-stored. `where` names the line or row.
 */
export function checkPersona(value: unknown, where: string): Persona {
  try {
    return conform(value, PERSONA_SCHEMA) as Persona;
  } catch (cause) {
    if (cause instanceof ConformError) throw new CorpusError('PH_CORPUS_RECORD', `${where}: not a persona (${cause.message})`, { cause });
    throw cause;
  }
}

export function parsePersonaLine(line: string, where: string): Persona {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (cause) {
    throw new CorpusError('PH_CORPUS_RECORD', `${where}: not JSON (${(cause as Error).message})`, { cause });
  }
  return checkPersona(value, where);
}

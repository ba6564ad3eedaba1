import type { Persona, Seed } from '../schemas/types.generated.ts';

/**
 * What makes two input records the same input to a stage, whatever offset they arrive at: a seed is
 * its id (hash of its text and source), a persona its id at a version, so a modified persona (a new
 * version) is new work while a re-ingested seed or a replayed persona is not.
 */
export function inputIdentity(value: Seed | Persona): string {
  return 'version' in value ? `${value.id}@v${value.version}` : value.id;
}

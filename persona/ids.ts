import { createHash } from 'node:crypto';
import { hashId, normalizeText } from './text.ts';

/**
 * Deterministic ids (DESIGN §2): the same input always yields the same key, so re-delivery and re-runs
 * are idempotent end to end.
 */

/** Seed id = hash of normalized text + source: the same text from the same source is one seed, however often ingested. */
export function seedId(text: string, source: string): string {
  return hashId('seed', normalizeText(text), source);
}

/** Persona id = hash of seed id + generation index: the same seed always yields the same persona ids. */
export function personaId(seedId: string, generationIndex: number): string {
  return hashId('persona', seedId, generationIndex);
}

/** The exact-duplicate signature: sha-256 of the normalized description. */
export function textHash(description: string): string {
  return createHash('sha256').update(normalizeText(description)).digest('hex');
}

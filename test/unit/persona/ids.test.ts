import { describe, expect, it } from 'vitest';
import { personaId, seedId, textHash } from '../../../persona/ids.ts';

describe('ids', () => {
  it('hashes normalized text for exact-duplicate detection', () => {
    expect(textHash('Hello   World')).toBe(textHash('hello world'));
    expect(textHash('hello world')).not.toBe(textHash('hello world!'));
  });

  it('derives seed and persona ids deterministically, distinct across inputs', () => {
    expect(seedId('Some  text', 'src')).toBe(seedId('some text', 'src'));
    expect(seedId('some text', 'src')).not.toBe(seedId('some text', 'other'));
    expect(personaId('s', 0)).toBe(personaId('s', 0));
    expect(personaId('s', 0)).not.toBe(personaId('s', 1));
    expect(personaId('s', 0)).toMatch(/^[0-9a-f]{32}$/);
  });
});

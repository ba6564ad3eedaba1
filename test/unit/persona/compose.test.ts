import { describe, expect, it } from 'vitest';
import { sampleAttributes } from '../../../persona/attributes.ts';
import { composeDescription } from '../../../persona/compose.ts';
import { salientTerms } from '../../../persona/text.ts';

describe('sampler-mode composition', () => {
  it('composes a description that states the sampled attributes and the seed terms', () => {
    const a = sampleAttributes('seed', 0);
    const text = composeDescription(a, 'Farmers in Kenya adopt drought-resistant sorghum varieties; sorghum yields rose.', 'k');
    expect(text).toContain(a.name);
    expect(text).toContain(`${a.age}`);
    expect(text).toContain(a.occupation);
    expect(text).toContain('sorghum');
  });

  it('salient terms skip stop words and rank by frequency', () => {
    expect(salientTerms('The river and the river bank flooded; the bank closed.', 2)).toEqual(['river', 'bank']);
  });
});

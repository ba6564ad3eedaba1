import { describe, expect, it } from 'vitest';
import { dot } from '../../../core/vector.ts';
import { hashEmbed } from '../../../llm/embedder.ts';

describe('hash embedder', () => {
  it('hash embeddings are unit vectors, closer for texts sharing words', () => {
    const a = hashEmbed('a nurse who loves chess', 384);
    const b = hashEmbed('a nurse who plays chess', 384);
    const c = hashEmbed('quarterly tax filing deadlines', 384);
    expect(Math.hypot(...a)).toBeCloseTo(1, 6);
    expect(dot(a, b)).toBeGreaterThan(dot(a, c) + 0.3);
  });
});

import { describe, expect, it } from 'vitest';
import { RequestGate } from '../../../llm/limiter.ts';

describe('RequestGate concurrency (AIMD on 429)', () => {
  it('halves the requests in flight on a rate limit and grows back by one per window of successes', async () => {
    const gate = new RequestGate(8, 0);
    gate.rateLimited();
    expect(gate.currentLimit).toBe(4);
    gate.rateLimited();
    gate.rateLimited();
    gate.rateLimited();
    expect(gate.currentLimit).toBe(1);
    // At limit 1, one success grows it to 2; then two successes to 3.
    gate.succeeded();
    expect(gate.currentLimit).toBe(2);
    gate.succeeded();
    expect(gate.currentLimit).toBe(2);
    gate.succeeded();
    expect(gate.currentLimit).toBe(3);
    for (let i = 0; i < 100; i += 1) gate.succeeded();
    expect(gate.currentLimit).toBe(8);
  });

  it('admits only as many requests as the current limit', async () => {
    const gate = new RequestGate(4, 0);
    gate.rateLimited();
    const admitted: number[] = [];
    const releases = await Promise.all([0, 1].map(async (i) => {
      const release = await gate.acquire(1);
      admitted.push(i);
      return release;
    }));
    let third = false;
    const waiting = gate.acquire(1).then((release) => {
      third = true;
      return release;
    });
    await new Promise((r) => setImmediate(r));
    expect(admitted).toEqual([0, 1]);
    expect(third).toBe(false);
    releases[0]?.();
    (await waiting)();
    expect(third).toBe(true);
    releases[1]?.();
    gate.close();
  });
});

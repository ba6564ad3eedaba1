import { describe, expect, it } from 'vitest';
import { PersonaHubError } from '../../../core/errors.ts';
import { GroupCommit } from '../../../core/group-commit.ts';

/** A served batch's inputs, in the order served; each batch waits on `gate` when one is set. */
function recorder(answer: (n: number) => number = (n) => n * 10) {
  const batches: number[][] = [];
  let gate: Promise<void> | undefined;
  const group = new GroupCommit(async (inputs: number[]) => {
    batches.push([...inputs]);
    if (gate) await gate;
    return inputs.map(answer);
  }, 4, 1);
  return { batches, group, hold: (p: Promise<void> | undefined) => { gate = p; } };
}

describe('GroupCommit', () => {
  it('serves calls made together as one batch, each caller getting its own result', async () => {
    const { batches, group } = recorder();
    expect(await Promise.all([1, 2, 3].map((n) => group.call(n)))).toEqual([10, 20, 30]);
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it('with one batch at a time, groups the calls that arrive while a batch is served into the next, at most maxBatch at a time', async () => {
    const { batches, group, hold } = recorder();
    let open!: () => void;
    hold(new Promise<void>((resolve) => { open = resolve; }));
    const first = group.call(1);
    // The first batch is being served (and held) before the others arrive.
    while (batches.length === 0) await new Promise((r) => setImmediate(r));
    const later = [2, 3, 4, 5, 6, 7].map((n) => group.call(n));
    hold(undefined);
    open();
    expect(await Promise.all([first, ...later])).toEqual([10, 20, 30, 40, 50, 60, 70]);
    expect(batches).toEqual([[1], [2, 3, 4, 5], [6, 7]]);
  });

  it('serves at most maxConcurrent batches at once; the calls arriving meanwhile wait for one to finish', async () => {
    const batches: number[][] = [];
    const gates: (() => void)[] = [];
    const group = new GroupCommit(async (inputs: number[]) => {
      batches.push([...inputs]);
      await new Promise<void>((resolve) => gates.push(resolve));
      return inputs;
    }, 64, 2);
    const first = group.call(1);
    while (batches.length < 1) await new Promise((r) => setImmediate(r));
    const second = group.call(2);
    while (batches.length < 2) await new Promise((r) => setImmediate(r));
    const rest = [3, 4, 5].map((n) => group.call(n));
    for (let i = 0; i < 5; i += 1) await new Promise((r) => setImmediate(r));
    // Two batches held, the third waits for a free slot.
    expect(batches).toEqual([[1], [2]]);
    gates.shift()?.();
    while (batches.length < 3) await new Promise((r) => setImmediate(r));
    expect(batches[2]).toEqual([3, 4, 5]);
    for (const open of gates.splice(0)) open();
    expect(await Promise.all([first, second, ...rest])).toEqual([1, 2, 3, 4, 5]);
  });

  it('serves each input of a failed batch alone, so only the bad one fails, with its own error', async () => {
    const batches: number[][] = [];
    const group = new GroupCommit(async (inputs: number[]) => {
      batches.push([...inputs]);
      if (inputs.includes(13)) throw new Error(`unlucky ${inputs.join(',')}`);
      return inputs.map((n) => n + 1);
    });
    const results = await Promise.allSettled([12, 13, 14].map((n) => group.call(n)));
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual([13, 'unlucky 13', 15]);
    expect(batches).toEqual([[12, 13, 14], [12], [13], [14]]);
  });

  it('fails every input of a batch at once when the dependency is unavailable, instead of asking it again for each', async () => {
    const batches: number[][] = [];
    const down = new PersonaHubError('PH_LLM_UNAVAILABLE', 'the embedding server is down', { transient: true, dependency: 'llm' });
    const group = new GroupCommit(async (inputs: number[]) => {
      batches.push([...inputs]);
      throw down;
    });
    const results = await Promise.allSettled([1, 2, 3].map((n) => group.call(n)));
    expect(results.map((r) => (r.status === 'rejected' ? r.reason : r.value))).toEqual([down, down, down]);
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it('fails a batch answered with the wrong number of results rather than handing out wrong ones', async () => {
    const group = new GroupCommit(async (inputs: number[]) => inputs.slice(1));
    await expect(group.call(1)).rejects.toThrow(/a batch of 1 was answered with 0 results/);
  });
});

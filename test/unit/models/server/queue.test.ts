import { describe, expect, it } from 'vitest';
import { QueueFullError, WorkQueue } from '../../../../models/server/queue.ts';

/** A job that finishes when the test says so. */
function gate<T>(value: T): { job: () => Promise<T>; open: () => void; started: () => boolean } {
  let release: () => void = () => undefined;
  let started = false;
  const opened = new Promise<void>((resolve) => {
    release = resolve;
  });
  return {
    job: async () => {
      started = true;
      await opened;
      return value;
    },
    open: () => release(),
    started: () => started,
  };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('WorkQueue', () => {
  it('runs one job at a time, in arrival order', async () => {
    const queue = new WorkQueue({ maxWaiting: 5 });
    const order: string[] = [];
    const a = gate('a');
    const b = gate('b');
    const c = gate('c');
    const results = [a, b, c].map((g) => queue.run(async () => {
      const value = await g.job();
      order.push(value);
      return value;
    }));
    await tick();
    expect([a.started(), b.started(), c.started()]).toEqual([true, false, false]);
    expect(queue.waiting).toBe(2);
    c.open();
    b.open();
    a.open();
    expect(await Promise.all(results)).toEqual(['a', 'b', 'c']);
    expect(order).toEqual(['a', 'b', 'c']);
    expect(queue.busy).toBe(false);
  });

  it('refuses beyond maxWaiting with a Retry-After estimate from the work ahead', async () => {
    const queue = new WorkQueue({ maxWaiting: 1, initialJobSeconds: 2 });
    const running = gate(1);
    const waiting = gate(2);
    const first = queue.run(running.job);
    const second = queue.run(waiting.job);
    const third = queue.run(async () => 3);
    await expect(third).rejects.toBeInstanceOf(QueueFullError);
    // One running plus one waiting, at 2 s each.
    await expect(third).rejects.toMatchObject({ retryAfterSeconds: 4 });
    running.open();
    waiting.open();
    expect(await Promise.all([first, second])).toEqual([1, 2]);
  });

  it('accepts only the running job when maxWaiting is 0', async () => {
    const queue = new WorkQueue({ maxWaiting: 0 });
    const running = gate('x');
    const first = queue.run(running.job);
    await expect(queue.run(async () => 'y')).rejects.toBeInstanceOf(QueueFullError);
    running.open();
    expect(await first).toBe('x');
    expect(await queue.run(async () => 'z')).toBe('z');
  });

  it('drops a waiting job whose signal aborts, and it never starts', async () => {
    const queue = new WorkQueue({ maxWaiting: 2 });
    const running = gate('a');
    const first = queue.run(running.job);
    const controller = new AbortController();
    let started = false;
    const second = queue.run(async () => {
      started = true;
      return 'b';
    }, controller.signal);
    await tick();
    expect(queue.waiting).toBe(1);
    controller.abort(new Error('deadline'));
    await expect(second).rejects.toThrow('deadline');
    expect(queue.waiting).toBe(0);
    running.open();
    await first;
    expect(started).toBe(false);
  });

  it('passes the signal to the running job and frees the slot when the job fails', async () => {
    const queue = new WorkQueue({ maxWaiting: 1 });
    const controller = new AbortController();
    let seen: AbortSignal | undefined;
    await expect(queue.run(async (signal) => {
      seen = signal;
      throw new Error('boom');
    }, controller.signal)).rejects.toThrow('boom');
    expect(seen).toBe(controller.signal);
    expect(await queue.run(async () => 'next')).toBe('next');
  });

  it('rejects at once when the signal is already aborted', async () => {
    const queue = new WorkQueue({ maxWaiting: 1 });
    const controller = new AbortController();
    controller.abort(new Error('too late'));
    await expect(queue.run(async () => 1, controller.signal)).rejects.toThrow('too late');
  });

  it('reports waiting and running counts for the gauges', async () => {
    const states: string[] = [];
    const queue = new WorkQueue({ maxWaiting: 1, onChange: ({ waiting, running }) => states.push(`${waiting}/${running}`) });
    const a = gate(1);
    const b = gate(2);
    const first = queue.run(a.job);
    const second = queue.run(b.job);
    await tick();
    a.open();
    await first;
    b.open();
    await second;
    expect(states[0]).toBe('0/1');
    expect(states).toContain('1/1');
    expect(states.at(-1)).toBe('0/0');
  });

  it('rejects an invalid bound', () => {
    expect(() => new WorkQueue({ maxWaiting: -1 })).toThrow(RangeError);
  });
});

/**
 * A bounded FIFO work queue that runs one job at a time.
 *
 * Why one at a time: on a 2-core machine a second llama.cpp job only halves the speed of the first
 * (DESIGN §8: extra context sequences give nothing), so concurrency buys latency, never throughput.
 * Why bounded: a request that would wait longer than a client is willing to is better refused at
 * once (HTTP 429 with Retry-After) than accepted and timed out, and the bound caps memory.
 */

/** Thrown by `run` when `maxWaiting` jobs are already waiting. */
export class QueueFullError extends Error {
  /** Seconds until a slot is likely free, for the Retry-After header. */
  readonly retryAfterSeconds: number;

  constructor(retryAfterSeconds: number) {
    super('the request queue is full');
    this.name = 'QueueFullError';
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export interface WorkQueueOptions {
  /** Jobs allowed to wait behind the running one; 0 means only the running job is accepted. */
  maxWaiting: number;
  /** Called whenever the number of waiting or running jobs changes (for a metrics gauge). */
  onChange?: (state: { waiting: number; running: number }) => void;
  /** Assumed duration of one job before any has finished, for the first Retry-After estimates. */
  initialJobSeconds?: number;
}

export class WorkQueue {
  private readonly maxWaiting: number;
  private readonly onChange: ((state: { waiting: number; running: number }) => void) | undefined;
  /** Starters of the waiting jobs, oldest first. */
  private readonly waiters: (() => void)[] = [];
  private running = false;
  /** Exponentially weighted mean job duration in seconds, for Retry-After. */
  private meanJobSeconds: number;

  constructor(options: WorkQueueOptions) {
    if (!Number.isInteger(options.maxWaiting) || options.maxWaiting < 0) {
      throw new RangeError(`maxWaiting must be a non-negative integer, got ${options.maxWaiting}`);
    }
    this.maxWaiting = options.maxWaiting;
    this.onChange = options.onChange;
    this.meanJobSeconds = options.initialJobSeconds ?? 1;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  get busy(): boolean {
    return this.running;
  }

  /**
   * Runs `job` when its turn comes. Rejects with QueueFullError at once when the queue is full, and
   * with `signal.reason` if the signal aborts while the job is still waiting (the job then never
   * starts). Once started, the job gets the signal and is responsible for honoring it.
   */
  async run<T>(job: (signal: AbortSignal | undefined) => Promise<T>, signal?: AbortSignal): Promise<T> {
    signal?.throwIfAborted();
    if (this.running) {
      if (this.waiters.length >= this.maxWaiting) throw new QueueFullError(this.retryAfterSeconds());
      await this.waitForTurn(signal);
    }
    this.running = true;
    this.notify();
    const started = performance.now();
    try {
      return await job(signal);
    } finally {
      const seconds = (performance.now() - started) / 1000;
      this.meanJobSeconds = 0.8 * this.meanJobSeconds + 0.2 * seconds;
      this.running = false;
      this.next();
    }
  }

  /** Seconds until the queue would have a free slot again: the work ahead, at the mean job duration. */
  retryAfterSeconds(): number {
    const jobsAhead = this.waiters.length + (this.running ? 1 : 0);
    return Math.max(1, Math.ceil(jobsAhead * this.meanJobSeconds));
  }

  private waitForTurn(signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const start = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        const index = this.waiters.indexOf(start);
        if (index >= 0) this.waiters.splice(index, 1);
        this.notify();
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(start);
      this.notify();
    });
  }

  private next(): void {
    const start = this.waiters.shift();
    // Claim the slot synchronously so a job submitted in between cannot overtake the waiter.
    if (start !== undefined) this.running = true;
    this.notify();
    start?.();
  }

  private notify(): void {
    this.onChange?.({ waiting: this.waiters.length, running: this.running ? 1 : 0 });
  }
}

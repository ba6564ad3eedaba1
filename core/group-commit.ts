import { PersonaHubError } from './errors.ts';

/**
 * Group commit: calls that arrive while batches are being served wait, and go together as the next
 * batch, so N concurrent callers cost a few round trips instead of N, and a lone caller waits for
 * nobody (no timer, no window). The runner processes a chunk's events concurrently
 * (PERSONAHUB_MAX_IN_FLIGHT), so their store writes and embeddings meet here.
 *
 * Up to `maxConcurrent` batches are served at once: with one, the partitions of a stage (or the stages
 * of a process) that reach the same store call take turns and each waits for the others' round trips.
 *
 * `serve` answers a batch in order, one result per input. When a batch of several fails, each input is
 * served again on its own, so one bad input fails alone with its own error and its batch mates
 * succeed. A failure that reports its dependency unavailable (a transient PersonaHubError naming it: an
 * outage, a rate limit) is about the dependency, not an input: every caller gets it at once, rather than
 * N more requests being sent to a server that is down or asking for fewer.
 */
const unavailable = (error: unknown): boolean => error instanceof PersonaHubError && error.transient && error.dependency !== undefined;

export class GroupCommit<I, O> {
  private queue: { input: I; resolve: (value: O) => void; reject: (error: unknown) => void }[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(private readonly serve: (inputs: I[]) => Promise<O[]>, private readonly maxBatch = 64, private readonly maxConcurrent = 2) {}

  call(input: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      this.schedule();
    });
  }

  /** Callers that start in the same turn of the event loop (a chunk's events) share a batch. */
  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.maxConcurrent) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      while (this.inFlight < this.maxConcurrent && this.queue.length > 0) void this.run(this.queue.splice(0, this.maxBatch));
    });
  }

  private async run(batch: GroupCommit<I, O>['queue']): Promise<void> {
    this.inFlight += 1;
    try {
      const out = await this.serve(batch.map((b) => b.input));
      if (out.length !== batch.length) throw new Error(`a batch of ${batch.length} was answered with ${out.length} results`);
      batch.forEach((b, i) => b.resolve(out[i] as O));
    } catch (error) {
      if (batch.length === 1 || unavailable(error)) for (const b of batch) b.reject(error);
      else await Promise.all(batch.map((b) => this.serve([b.input]).then(([out]) => b.resolve(out as O), b.reject)));
    } finally {
      this.inFlight -= 1;
      this.schedule();
    }
  }
}

/**
 * Group commit: calls that arrive while a batch is being served wait, and go together as the next
 * batch, so N concurrent callers cost about one round trip instead of N, and a lone caller waits for
 * nobody (no timer, no window). The runner processes a chunk's events concurrently
 * (PERSONAHUB_MAX_IN_FLIGHT), so their store writes and embeddings meet here.
 *
 * `serve` answers a batch in order, one result per input. When a batch of several fails, each input is
 * served again on its own, so one bad input fails alone with its own error and its batch mates
 * succeed; an outage fails each of them, with the error of its own attempt.
 */
export class GroupCommit<I, O> {
  private queue: { input: I; resolve: (value: O) => void; reject: (error: unknown) => void }[] = [];
  private serving = false;

  constructor(private readonly serve: (inputs: I[]) => Promise<O[]>, private readonly maxBatch = 64) {}

  call(input: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      if (!this.serving) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.serving = true;
    // Callers that start in the same turn of the event loop (a chunk's events) share the first batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      try {
        const out = await this.serve(batch.map((b) => b.input));
        if (out.length !== batch.length) throw new Error(`a batch of ${batch.length} was answered with ${out.length} results`);
        batch.forEach((b, i) => b.resolve(out[i] as O));
      } catch (error) {
        if (batch.length === 1) batch[0]?.reject(error);
        else await Promise.all(batch.map((b) => this.serve([b.input]).then(([out]) => b.resolve(out as O), b.reject)));
      }
    }
    this.serving = false;
  }
}

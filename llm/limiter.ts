import { ClosedError } from './errors.ts';

interface Waiter {
  cost: number;
  resolve: (release: () => void) => void;
  reject: (err: Error) => void;
}

/**
 * Admits requests FIFO when a concurrency slot is free, the token bucket holds the request's
 * estimate, and no 429 pause is in force. Waiting is one timer for the head of the queue (or a
 * release), never polling. FIFO means a large request is not starved by a stream of small ones.
 */
export class RequestGate {
  private inFlight = 0;
  /**
   * Requests allowed in flight now: starts at the configured concurrency, halves on a 429, and grows
   * back by one after as many successes as the current limit (additive increase, multiplicative
   * decrease, as NeMo Data Designer does), so a rate-limited endpoint is not hammered at full width.
   */
  private limit: number;
  private successes = 0;
  private tokens: number;
  private refilledAt = performance.now();
  private pausedUntil = 0;
  private readonly queue: Waiter[] = [];
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly concurrency: number,
    private readonly tokensPerMinute: number,
  ) {
    this.tokens = tokensPerMinute;
    this.limit = concurrency;
  }

  /** The concurrency the gate currently allows. */
  get currentLimit(): number {
    return this.limit;
  }

  /** The endpoint said 429: halve the concurrency. */
  rateLimited(): void {
    this.limit = Math.max(1, Math.floor(this.limit / 2));
    this.successes = 0;
  }

  /** A request succeeded: after `limit` of them in a row, allow one more in flight. */
  succeeded(): void {
    if (this.limit >= this.concurrency) return;
    this.successes += 1;
    if (this.successes >= this.limit) {
      this.limit += 1;
      this.successes = 0;
      this.pump();
    }
  }

  acquire(cost: number): Promise<() => void> {
    if (this.closed) return Promise.reject(new ClosedError());
    return new Promise((resolve, reject) => {
      this.queue.push({ cost, resolve, reject });
      this.pump();
    });
  }

  /** Corrects the bucket once the real usage is known (positive = refund). */
  adjust(delta: number): void {
    if (this.tokensPerMinute <= 0 || delta === 0) return;
    this.refill(performance.now());
    // Debt is bounded so one huge mis-estimate cannot stall the client for more than a minute.
    this.tokens = Math.max(-this.tokensPerMinute, Math.min(this.tokensPerMinute, this.tokens + delta));
    this.pump();
  }

  /** Holds every new admission for `ms`: a 429 means the endpoint is saturated for everyone, not just one request. */
  pause(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, performance.now() + ms);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    for (const w of this.queue.splice(0)) w.reject(new ClosedError());
  }

  private refill(now: number): void {
    if (this.tokensPerMinute <= 0) return;
    this.tokens = Math.min(this.tokensPerMinute, this.tokens + ((now - this.refilledAt) * this.tokensPerMinute) / 60_000);
    this.refilledAt = now;
  }

  private pump(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.queue.length > 0 && this.inFlight < this.limit) {
      const head = this.queue[0] as Waiter;
      const now = performance.now();
      if (now < this.pausedUntil) return this.wakeIn(this.pausedUntil - now);
      if (this.tokensPerMinute > 0) {
        this.refill(now);
        // A request larger than the whole bucket would otherwise wait forever; it waits for a full bucket instead.
        const need = Math.min(head.cost, this.tokensPerMinute);
        if (this.tokens < need) return this.wakeIn(((need - this.tokens) * 60_000) / this.tokensPerMinute);
        this.tokens -= need;
      }
      this.queue.shift();
      this.inFlight++;
      let released = false;
      head.resolve(() => {
        if (released) return;
        released = true;
        this.inFlight--;
        this.pump();
      });
    }
  }

  private wakeIn(ms: number): void {
    this.timer = setTimeout(() => this.pump(), Math.max(1, Math.ceil(ms)));
  }
}

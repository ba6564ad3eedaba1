import { backoffDelayMs, type BackoffPolicy } from '../core/backoff.ts';
import type { Dependency } from '../core/errors.ts';

export type BreakerState = 'closed' | 'open' | 'half_open';

export interface BreakerOptions {
  /** Consecutive transient failures of the dependency that open the breaker. */
  failureThreshold: number;
  /** How long it stays open before a probe: doubles on every failed probe, jittered, capped. */
  openBackoff: BackoffPolicy;
  /** A Retry-After longer than the open period is honoured, up to this ceiling. */
  retryAfterCeilingMs: number;
  now?: () => number;
  random?: () => number;
  onStateChange?: (dependency: Dependency, state: BreakerState) => void;
}

/**
 * A circuit breaker for one dependency: an outage becomes one state (open) rather than many failed
 * events. Closed: calls go through. Open: nobody calls until the open period ends. Half-open: one probe
 * goes through; its success closes the breaker, its failure opens it again for longer.
 */
export class CircuitBreaker {
  private stateNow: BreakerState = 'closed';
  private consecutiveFailures = 0;
  private openings = 0;
  private openUntil = 0;
  private probing = false;
  private readonly now: () => number;

  constructor(readonly dependency: Dependency, private readonly o: BreakerOptions) {
    this.now = o.now ?? Date.now;
  }

  get state(): BreakerState {
    return this.stateNow;
  }

  /**
   * May a call go out now? `{ ok: true, probe }` when closed, or when this caller becomes the one
   * probe of a breaker whose open period ended; otherwise how long to wait before asking again.
   */
  admit(): { ok: true; probe: boolean } | { ok: false; waitMs: number } {
    if (this.stateNow === 'closed') return { ok: true, probe: false };
    if (this.stateNow === 'open') {
      const wait = this.openUntil - this.now();
      if (wait > 0) return { ok: false, waitMs: wait };
      this.set('half_open');
    }
    if (this.probing) return { ok: false, waitMs: 250 };
    this.probing = true;
    return { ok: true, probe: true };
  }

  /** The dependency answered (whatever the event's fate): a probe's success closes the breaker. */
  success(): void {
    this.consecutiveFailures = 0;
    this.probing = false;
    if (this.stateNow !== 'closed') {
      this.openings = 0;
      this.set('closed');
    }
  }

  /** The dependency failed transiently. */
  failure(retryAfterMs?: number): void {
    this.consecutiveFailures += 1;
    const probeFailed = this.stateNow === 'half_open';
    this.probing = false;
    if (!probeFailed && this.consecutiveFailures < this.o.failureThreshold) return;
    const backoff = backoffDelayMs(this.openings, this.o.openBackoff, this.o.random);
    const hint = retryAfterMs === undefined ? 0 : Math.min(retryAfterMs, this.o.retryAfterCeilingMs);
    this.openings += 1;
    this.openUntil = this.now() + Math.max(backoff, hint);
    this.set('open');
  }

  /** A probe that ended without saying anything about this dependency lets the next caller probe. */
  release(): void {
    this.probing = false;
  }

  private set(state: BreakerState): void {
    if (state === this.stateNow) return;
    this.stateNow = state;
    this.o.onStateChange?.(this.dependency, state);
  }
}

/**
 * One stage's breakers, one per dependency, created as failures name them. Per stage rather than per
 * process: a stage's own successes are what prove a dependency it uses is back, and in a process that
 * runs every stage the index stage's store writes say nothing about the LLM the draft stage calls.
 */
export class Breakers {
  private readonly byDependency = new Map<Dependency, CircuitBreaker>();

  constructor(private readonly o: BreakerOptions) {}

  get(dependency: Dependency): CircuitBreaker {
    let breaker = this.byDependency.get(dependency);
    if (!breaker) {
      breaker = new CircuitBreaker(dependency, this.o);
      this.byDependency.set(dependency, breaker);
    }
    return breaker;
  }

  /** Dependencies whose breaker is not closed: while any is, the stage pauses and reports not ready. */
  get unavailable(): Dependency[] {
    return [...this.byDependency.values()].filter((b) => b.state !== 'closed').map((b) => b.dependency);
  }

  /**
   * May an attempt go out? Every breaker must admit it; an attempt admitted as the probe of some
   * breakers carries them in `probes`, to report back through `settle`.
   */
  admit(): { ok: true; probes: CircuitBreaker[] } | { ok: false; waitMs: number } {
    const probes: CircuitBreaker[] = [];
    for (const breaker of this.byDependency.values()) {
      const verdict = breaker.admit();
      if (!verdict.ok) {
        for (const p of probes) p.release();
        return verdict;
      }
      if (verdict.probe) probes.push(breaker);
    }
    return { ok: true, probes };
  }

  /** Reports an attempt's outcome: `failed` names the dependency a transient failure blamed, if any. */
  settle(probes: readonly CircuitBreaker[], failed: { dependency: Dependency; retryAfterMs: number | undefined } | undefined): void {
    if (failed) this.get(failed.dependency).failure(failed.retryAfterMs);
    for (const breaker of this.byDependency.values()) {
      if (breaker.dependency === failed?.dependency) continue;
      // Whatever else happened, the attempt got past this dependency (or never needed it).
      if (probes.includes(breaker) || breaker.state === 'closed') breaker.success();
    }
  }
}

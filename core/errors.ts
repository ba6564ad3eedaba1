/**
 * Errors with stable codes. Callers branch on `code`, never on message text, so messages can
 * improve without breaking error policies, DLQ consumers or alert rules.
 */
/**
 * The outside services a stage depends on. A transient failure names the one that failed, so the
 * runner can treat an outage as one state of that dependency (a circuit breaker) rather than as
 * many failed events.
 */
export const DEPENDENCIES = ['llm', 'store', 'registry', 'broker'] as const;
export type Dependency = (typeof DEPENDENCIES)[number];

export interface ErrorOptions {
  cause?: unknown;
  transient?: boolean;
  /** The dependency whose unavailability this error reports (transient errors only). */
  dependency?: Dependency;
  /** The dependency's own hint of when to try again (e.g. an HTTP Retry-After). */
  retryAfterMs?: number;
}

export class PersonaHubError extends Error {
  readonly code: string;
  /** Transient errors are waited out by the runner; permanent ones go to the DLQ (or fail start-up). */
  readonly transient: boolean;
  readonly dependency: Dependency | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(code: string, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.transient = options.transient ?? false;
    this.dependency = options.transient ? options.dependency : undefined;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** Invalid configuration: names the key and what it allows. Stops the process at start. */
export class ConfigError extends PersonaHubError {
  constructor(message: string) {
    super('PH_CONFIG_INVALID', message);
  }
}

/** A local stack service (broker, registry, database, model server) could not be installed or started. */
export class StackError extends PersonaHubError {
  constructor(code: `PH_STACK_${string}`, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
  }
}

/** A model could not be fetched, converted, loaded or run. */
export class ModelError extends PersonaHubError {
  constructor(code: `PH_MODEL_${string}`, message: string, options: { cause?: unknown; transient?: boolean } = {}) {
    super(code, message, options);
  }
}

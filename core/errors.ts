/**
 * Errors with stable codes. Callers branch on `code`, never on message text, so messages can
 * improve without breaking error policies, DLQ consumers or alert rules.
 */
export class PersonaHubError extends Error {
  readonly code: string;
  /** Transient errors are retried by the runner; permanent ones go to the DLQ (or fail start-up). */
  readonly transient: boolean;

  constructor(code: string, message: string, options: { cause?: unknown; transient?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.transient = options.transient ?? false;
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

import { pino, type DestinationStream, type Logger } from 'pino';
import { maskSecret, SECRET_FIELDS } from './secrets.ts';

export type { Logger };

/** A secret field is masked at the top level of a log line and one or two objects down (`{ config }`, `{ options: { headers } }`). */
const REDACT_PATHS = SECRET_FIELDS.flatMap((f) => [f, `*.${f}`, `*.*.${f}`]);

/**
 * One JSON logger per process; components take a child with their own `component` field.
 * The level comes from config (PERSONAHUB_LOG_LEVEL), passed in so this module reads no env.
 */
export function createLogger(options: { level?: string; name?: string; destination?: DestinationStream } = {}): Logger {
  return pino({
    name: options.name ?? 'personahub',
    level: options.level ?? 'info',
    // Secrets must never reach the logs, whichever component logs a config or request object.
    redact: { paths: REDACT_PATHS, censor: (value) => maskSecret(value) },
  },
  // stderr, so a command's results on stdout (ingest summary, search hits, status JSON) stay parseable;
  // container runtimes collect both streams. Synchronous writes: the CLI often exits right after
  // logging, and an asynchronous destination was seen to lose those last lines when output is a file.
  options.destination ?? pino.destination({ dest: 2, sync: true }));
}

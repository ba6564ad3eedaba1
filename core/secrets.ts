/**
 * What counts as a secret, written once: the logger's redaction, `personahub config check` and every
 * error message that names a URL use these, so a new secret key is protected everywhere by adding it here.
 */

/** Field names whose values are secrets wherever they appear: configuration keys, client options, headers. */
export const SECRET_FIELDS = ['llmApiKey', 'apiKey', 'postgresPassword', 'password', 'authorization', 'databaseUrl', 'connectionString', 'kafkaSaslPassword', 'registryPassword'] as const;

const SECRET_SET: ReadonlySet<string> = new Set(SECRET_FIELDS.map((f) => f.toLowerCase()));

export function isSecretField(name: string): boolean {
  return SECRET_SET.has(name.toLowerCase());
}

export const REDACTED = '[redacted]';

/** A URL with its user and password replaced (`postgres://***@host/db`), so where it points stays readable. */
export function maskUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

/** What a secret field's value becomes in output: URLs keep host and path, anything else is replaced whole. */
export function maskSecret(value: unknown): unknown {
  if (typeof value === 'string' && /^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return maskUrl(value);
  return REDACTED;
}

/** A copy of a flat record with every secret field masked (for printing a configuration). */
export function redactRecord<T extends Record<string, unknown>>(record: T): T {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, isSecretField(k) ? maskSecret(v) : v])) as T;
}

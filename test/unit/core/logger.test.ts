import { describe, expect, it } from 'vitest';
import { keys, loadConfig } from '../../../config/index.ts';
import { createLogger } from '../../../core/logger.ts';
import { isSecretField, redactRecord } from '../../../core/secrets.ts';

const SECRETS = { llm: 'sk-live-SECRET-llm-key', pg: 'SECRET-pg-password', url: 'SECRET-url-password' };

function configWithSecrets() {
  return loadConfig({
    PERSONAHUB_LLM_API_KEY: SECRETS.llm,
    PERSONAHUB_POSTGRES_PASSWORD: SECRETS.pg,
    PERSONAHUB_DATABASE_URL: `postgres://reader:${SECRETS.url}@db.internal:5432/personas`,
  });
}

function captured(): { lines: string[]; logger: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, logger: createLogger({ level: 'info', destination: { write: (line: string) => void lines.push(line) } }) };
}

describe('logger redaction', () => {
  it('logs a whole configuration, at any depth, without a secret in the output', () => {
    const config = configWithSecrets();
    const { lines, logger } = captured();
    logger.info(config, 'config at the top level');
    logger.info({ config }, 'config one level down');
    logger.info({ startup: { config } }, 'config two levels down');
    logger.child({ component: 'x' }).info({ options: { apiKey: SECRETS.llm, headers: { authorization: `Bearer ${SECRETS.llm}` } } }, 'client options');
    const out = lines.join('');
    expect(lines).toHaveLength(4);
    for (const secret of Object.values(SECRETS)) expect(out).not.toContain(secret);
    // Where a URL points stays readable; only its credentials go.
    expect(out).toContain('postgres://***@db.internal:5432/personas');
    expect(out).toContain('"llmApiKey":"[redacted]"');
  });

  it('every configuration key documented as a secret is a secret field', () => {
    const documented = Object.entries(keys).filter(([, k]) => /never logged|password/i.test(k.doc)).map(([name]) => name);
    expect(documented.length).toBeGreaterThan(0);
    for (const name of documented) expect(isSecretField(name)).toBe(true);
  });

  it('`config check` output (redactRecord) holds no secret', () => {
    const printed = JSON.stringify(redactRecord(configWithSecrets()));
    for (const secret of Object.values(SECRETS)) expect(printed).not.toContain(secret);
    expect(printed).toContain('db.internal');
  });
});

import { describe, expect, it } from 'vitest';
import { configDocs, keys, loadConfig } from '../../../config/index.ts';
import { ConfigError } from '../../../core/errors.ts';

describe('config', () => {
  it('has a default for every key and freezes the result', () => {
    const config = loadConfig({});
    expect(Object.keys(config).sort()).toEqual(Object.keys(keys).sort());
    expect(Object.isFrozen(config)).toBe(true);
    expect(config.kafkaBrokers).toBe('127.0.0.1:19092');
    expect(config.mode).toBe('llm');
  });

  it('derives dependent defaults from other keys', () => {
    const config = loadConfig({ PERSONAHUB_KAFKA_PORT: '29092', PERSONAHUB_POSTGRES_PORT: '25432' });
    expect(config.kafkaBrokers).toBe('127.0.0.1:29092');
    expect(config.databaseUrl).toContain(':25432/');
  });

  it('names the key and the allowed values of an enum', () => {
    expect(() => loadConfig({ PERSONAHUB_MODE: 'magic' })).toThrow(ConfigError);
    expect(() => loadConfig({ PERSONAHUB_MODE: 'magic' })).toThrow(/PERSONAHUB_MODE="magic": allowed values are "llm", "sampler"/);
  });

  it('reports every bad key at once, including unknown ones', () => {
    try {
      loadConfig({ PERSONAHUB_PARTITIONS: '0', PERSONAHUB_LLM_BASE_URL: 'not a url', PERSONAHUB_TYPO: 'x' });
      expect.unreachable();
    } catch (error) {
      const message = (error as ConfigError).message;
      expect((error as ConfigError).code).toBe('PH_CONFIG_INVALID');
      expect(message).toMatch(/PERSONAHUB_PARTITIONS="0"/);
      expect(message).toMatch(/PERSONAHUB_LLM_BASE_URL="not a url"/);
      expect(message).toMatch(/PERSONAHUB_TYPO: unknown key/);
    }
  });

  it('applies overrides (CLI flags) on top of the environment, with the same validation', () => {
    expect(loadConfig({ PERSONAHUB_MODE: 'llm' }, { PERSONAHUB_MODE: 'sampler', PERSONAHUB_LLM_BASE_URL: undefined }).mode).toBe('sampler');
    expect(() => loadConfig({}, { PERSONAHUB_MODE: 'fast' })).toThrow(/PERSONAHUB_MODE="fast": allowed values/);
  });

  it('documents every key in the generated table', () => {
    const docs = configDocs();
    for (const spec of Object.values(keys)) expect(docs).toContain(`\`${spec.env}\``);
  });
});

describe('README', () => {
  it('carries the configuration table exactly as `personahub config docs` prints it', async () => {
    const { readFileSync } = await import('node:fs');
    expect(readFileSync('README.md', 'utf8')).toContain(configDocs());
  });
});

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

  // One realistic mistake per key. Every key must appear here or in freeForm, so a new key needs a bad example too.
  const badValues: Partial<Record<keyof typeof keys, string>> = {
    home: '',
    modalities: 'model',
    cacheDir: '',
    modelsDir: '',
    logLevel: 'verbose',
    topicPrefix: 'persona hub',
    kafkaBrokers: 'localhost',
    kafkaPort: '',
    kafkaControllerPort: '70000',
    kafkaNodes: '2',
    kafkaSsl: 'on',
    kafkaSslCaFile: '/nonexistent/kafka-ca.pem',
    kafkaSslCertFile: '/nonexistent/client.pem',
    kafkaSslKeyFile: '/nonexistent/client.key',
    kafkaSaslMechanism: 'SCRAM',
    partitions: '1e3',
    replicationFactor: '0',
    minInsyncReplicas: 'two',
    registryUrl: 'ftp://x',
    registryPort: '0x10',
    registryManagementPort: '18081 ',
    registryCaFile: '/nonexistent/registry-ca.pem',
    registryUsername: 'key:secret',
    postgresPort: '5432.0',
    postgresUser: '',
    postgresPassword: '',
    postgresDatabase: '',
    store: 'sqlite',
    databaseUrl: 'mysql://u:p@127.0.0.1/personahub',
    databaseSsl: 'true',
    databaseSslCaFile: '/nonexistent/root.crt',
    pgliteDir: '',
    mode: 'magic',
    llmBaseUrl: 'localhost:11434/v1',
    localLlm: 'gemma-3-270m',
    llmModel: '',
    embeddingModel: '',
    embedder: 'openai',
    embeddingDimensions: '0',
    llmTimeoutMs: '30s',
    llmMaxRetries: '-1',
    llmConcurrency: '0',
    llmTokensPerMinute: '1e6',
    llmPort: '65536',
    llmQueue: '',
    llmContextSize: '8k',
    llmModelPath: 'models/gemma.gguf',
    personasPerSeed: '2.5',
    maxSeedChars: '4,000',
    maxDescriptionChars: '39',
    nearDuplicateCosine: '',
    retryMaxDelayMs: '10',
    retryAfterMaxMs: '1e6',
    breakerFailureThreshold: '0',
    breakerOpenMs: '',
    fetchMaxBytesPerPartition: '1024',
    maxEventBytes: '1MB',
    shutdownTimeoutMs: '-1',
    partitionConcurrency: '0x10',
    maxInFlight: '1e1',
    sessionTimeoutMs: '1000',
    metricsPort: '-1',
    apiHost: 'local host',
    apiPort: 'http',
    apiBodyLimit: '1MB',
    apiRateLimit: '0',
    startLocalLlm: 'yes',
    dedupJaccard: '0',
    minhashPermutations: '8',
    minhashShingle: '0',
    dedupNeighbours: '-1',
    llmJudge: 'true',
    llmJudgeThreshold: '0',
    latticeDepth: '7',
    latticeFanout: '0',
    latticeBudget: '0',
    relationKinds: 'family,cousin',
    profile: 'atlantis',
  };
  // Any string is a valid value: an API key has no common format (local servers ignore it), and the LLM cache
  // directory takes any path, empty meaning no disk cache. SASL usernames and passwords and the registry's
  // password are opaque to us (SCRAM escapes any character); only their combinations are checked
  // (test/unit/config/security.test.ts).
  const freeForm: (keyof typeof keys)[] = ['llmApiKey', 'llmCacheDir', 'kafkaSaslUsername', 'kafkaSaslPassword', 'registryPassword'];

  it.each(Object.keys(keys) as (keyof typeof keys)[])('refuses a bad value of %s, naming its variable', (key) => {
    const bad = badValues[key];
    if (freeForm.includes(key)) {
      expect(bad, `${key} is listed as free-form and has a bad example`).toBeUndefined();
      return;
    }
    expect(bad, `${key} needs a bad example in badValues (or a reason to be free-form)`).toBeDefined();
    const env = keys[key].env;
    expect(() => loadConfig({ [env]: bad })).toThrow(ConfigError);
    expect(() => loadConfig({ [env]: bad })).toThrow(`${env}=${JSON.stringify(bad)}: `);
  });

  it.each([
    ['PERSONAHUB_PARTITIONS', '1e1', 'expected a whole number from 1 to 1024 written in decimal digits'],
    ['PERSONAHUB_PARTITIONS', '1e3', 'expected a whole number from 1 to 1024 written in decimal digits'],
    ['PERSONAHUB_PARTITIONS', '0x10', 'expected a whole number from 1 to 1024 written in decimal digits'],
    ['PERSONAHUB_PARTITIONS', ' 12', 'expected a whole number from 1 to 1024 written in decimal digits'],
    ['PERSONAHUB_PARTITIONS', '12.0', 'expected a whole number from 1 to 1024 written in decimal digits'],
    ['PERSONAHUB_PARTITIONS', '2000', 'expected a whole number from 1 to 1024 written in decimal digits'],
    ['PERSONAHUB_LLM_MAX_RETRIES', '', 'expected a whole number from 0 to 20 written in decimal digits'],
    ['PERSONAHUB_LLM_TOKENS_PER_MINUTE', '', 'expected a whole number of at least 0 written in decimal digits'],
    ['PERSONAHUB_MAX_DESCRIPTION_CHARS', '39', 'expected a whole number from 40 to 100000 written in decimal digits'],
    ['PERSONAHUB_MAX_DESCRIPTION_CHARS', '2k', 'expected a whole number from 40 to 100000 written in decimal digits'],
    ['PERSONAHUB_NEAR_DUPLICATE_COSINE', '', 'expected a number from 0 to 1 written in decimal digits, like 0.97'],
    ['PERSONAHUB_NEAR_DUPLICATE_COSINE', '9.7e-1', 'expected a number from 0 to 1 written in decimal digits, like 0.97'],
    ['PERSONAHUB_NEAR_DUPLICATE_COSINE', '1.5', 'expected a number from 0 to 1 written in decimal digits, like 0.97'],
    ['PERSONAHUB_LLM_JUDGE_THRESHOLD', '3.5', 'expected a whole number from 1 to 5 written in decimal digits'],
    ['PERSONAHUB_LLM_JUDGE_THRESHOLD', '6', 'expected a whole number from 1 to 5 written in decimal digits'],
    ['PERSONAHUB_PROFILE', 'Global', 'expected one of the profiles in config/profiles: global, nigeria'],
    ['PERSONAHUB_RELATION_KINDS', 'family,cousin', 'expected a comma-separated list of family, colleague, client, patient, mentor, student, neighbour, rival, community'],
    ['PERSONAHUB_RELATION_KINDS', 'family,family', 'expected a comma-separated list of family, colleague, client, patient, mentor, student, neighbour, rival, community'],
    ['PERSONAHUB_RELATION_KINDS', ' , ', 'expected a comma-separated list of family, colleague, client, patient, mentor, student, neighbour, rival, community'],
    ['PERSONAHUB_REGISTRY_URL', 'ftp://x', 'expected an http:// or https:// URL'],
    ['PERSONAHUB_LLM_BASE_URL', 'ftp://x', 'expected an http:// or https:// URL, or empty for the local model server'],
    ['PERSONAHUB_DATABASE_URL', 'http://127.0.0.1:15432/personahub', 'expected a postgres:// or postgresql:// URL'],
  ])('refuses %s=%j, saying what is allowed', (env, value, allowed) => {
    expect(() => loadConfig({ [env]: value })).toThrow(`invalid configuration:\n  ${env}=${JSON.stringify(value)}: ${allowed}`);
  });

  it('still accepts plain values', () => {
    const config = loadConfig({
      PERSONAHUB_PARTITIONS: '12',
      PERSONAHUB_LLM_MAX_RETRIES: '0',
      PERSONAHUB_METRICS_PORT: '0',
      PERSONAHUB_NEAR_DUPLICATE_COSINE: '0.9',
      PERSONAHUB_REGISTRY_URL: 'https://registry.example.com/apis/ccompat/v7',
      PERSONAHUB_LLM_BASE_URL: 'http://localhost:11434/v1',
      PERSONAHUB_DATABASE_URL: 'postgresql://u:p@db:5432/personahub',
      PERSONAHUB_PGLITE_DIR: 'memory://',
      PERSONAHUB_LLM_MODEL_PATH: '/models/gemma-3-4b-it.gguf',
    });
    expect(config).toMatchObject({ partitions: 12, llmMaxRetries: 0, metricsPort: 0, nearDuplicateCosine: 0.9, llmModelPath: '/models/gemma-3-4b-it.gguf' });
    expect(loadConfig({ PERSONAHUB_NEAR_DUPLICATE_COSINE: '1' }).nearDuplicateCosine).toBe(1);
    expect(loadConfig({ PERSONAHUB_NEAR_DUPLICATE_COSINE: '0' }).nearDuplicateCosine).toBe(0);
    expect(loadConfig({ PERSONAHUB_NEAR_DUPLICATE_COSINE: '.5' }).nearDuplicateCosine).toBe(0.5);
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

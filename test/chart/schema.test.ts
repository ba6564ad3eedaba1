import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { CHART, helmTemplate, HelmError, tool } from './helpers.ts';

/**
 * values.schema.json refuses the mistakes people make in a values file, each with a message that names
 * the value and says what is wrong (Helm's own format: `at '/path': ...`).
 */
let helm: string;

beforeAll(() => {
  helm = tool('helm');
});

function refusal(values: string): string {
  try {
    helmTemplate(helm, { values });
  } catch (error) {
    if (error instanceof HelmError) return error.message;
    throw error;
  }
  throw new Error(`values were accepted:\n${values}`);
}

describe('values.schema.json refuses realistic mistakes', () => {
  it.each([
    ['a replica count written as a string', 'stageDefaults:\n  replicas: "two"\n', "at '/stageDefaults/replicas': got string, want integer"],
    ['a negative partition count', 'config:\n  partitions: -3\n', "at '/config/partitions': minimum: got -3, want 1"],
    ['an unknown key in a profile (typo)', 'stageDefaults:\n  replcias: 2\n', "at '/stageDefaults': additional properties 'replcias' not allowed"],
    ['the broker list missing', 'config:\n  kafkaBrokers: null\n', "at '/config': missing property 'kafkaBrokers'"],
    ['an empty broker list', 'config:\n  kafkaBrokers: ""\n', "at '/config/kafkaBrokers': '' does not match pattern"],
    ['a bad resource quantity', 'stageDefaults:\n  resources:\n    requests:\n      memory: "2 GB"\n', "at '/stageDefaults/resources/requests/memory': '2 GB' does not match pattern"],
    ['a stage that does not exist', 'stages:\n  drafts:\n    replicas: 2\n', "at '/stages': additional properties 'drafts' not allowed"],
    ['a configuration key that does not exist', 'config:\n  kafkaBroker: "kafka:9092"\n', "at '/config': additional properties 'kafkaBroker' not allowed"],
    ['a local-stack key on Kubernetes', 'config:\n  kafkaPort: 9092\n', "at '/config': additional properties 'kafkaPort' not allowed"],
    ['a password in the ConfigMap section', 'config:\n  kafkaSaslPassword: hunter2\n', "at '/config': additional properties 'kafkaSaslPassword' not allowed"],
    ['a SASL mechanism Kafka does not have', 'config:\n  kafkaSaslMechanism: kerberos\n', "at '/config/kafkaSaslMechanism': value must be one of 'none', 'plain', 'scram-sha-256', 'scram-sha-512'"],
    ['a broker list without ports', 'config:\n  kafkaBrokers: "kafka-0,kafka-1"\n', "at '/config/kafkaBrokers': 'kafka-0,kafka-1' does not match pattern"],
    ['an alert duration without a unit', 'prometheusRule:\n  stalledFor: 15\n', "at '/prometheusRule/stalledFor': got number, want string"],
    ['a per-stage config typo', 'stages:\n  draft:\n    config:\n      llmConcurency: 8\n', "at '/stages/draft/config': additional properties 'llmConcurency' not allowed"],
  ])('%s', (_what, values, message) => {
    expect(refusal(values)).toContain(message);
  });

  it('accepts what the profiles set, and every value of values.yaml has a description', () => {
    for (const profile of ['values-small.yaml', 'values-large.yaml']) {
      expect(() => helmTemplate(helm, { values: readFileSync(join(CHART, profile), 'utf8') })).not.toThrow();
    }
    const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8')) as { properties: Record<string, { description?: string; $ref?: string }> };
    const values = parseYaml(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as Record<string, unknown>;
    for (const key of Object.keys(values)) expect(schema.properties[key]?.description ?? schema.properties[key]?.$ref, key).toBeTruthy();
  });
});

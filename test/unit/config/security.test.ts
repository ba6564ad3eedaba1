/**
 * The security keys (Kafka TLS and SASL, registry TLS and basic auth, PostgreSQL TLS): each value alone, the
 * combinations that are refused at start, and that no secret reaches an error message or `config check`.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../config/index.ts';
import { ConfigError } from '../../../core/errors.ts';
import { createLogger } from '../../../core/logger.ts';
import { redactRecord } from '../../../core/secrets.ts';

// The configuration only checks that a file holds a PEM block of the right kind; these need not be real keys.
const dir = mkdtempSync(join(tmpdir(), 'personahub-security-config-'));
const file = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const ca = file('ca.pem', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
const cert = file('client.pem', '-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n');
const key = file('client.key', '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n');
const rsaKey = file('client-rsa.key', '-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n');
const encryptedKey = file('encrypted.key', '-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIF\n-----END ENCRYPTED PRIVATE KEY-----\n');
const notPem = file('ca.der', 'binary junk');
const aDirectory = join(dir, 'certs');
mkdirSync(aDirectory);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SECRET = 'hunter2-SECRET-value';

/** The ConfigError's message, failing the test if loadConfig accepts `env`. */
function refusal(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).message;
  }
  return expect.unreachable(`accepted ${JSON.stringify(env)}`);
}

describe('security configuration', () => {
  it('is off by default: no TLS, no SASL, no registry credentials, no PostgreSQL TLS', () => {
    expect(loadConfig({})).toMatchObject({
      kafkaSsl: false, kafkaSslCaFile: '', kafkaSslCertFile: '', kafkaSslKeyFile: '',
      kafkaSaslMechanism: 'none', kafkaSaslUsername: '', kafkaSaslPassword: '',
      registryCaFile: '', registryUsername: '', registryPassword: '',
      databaseSsl: 'disable', databaseSslCaFile: '',
    });
  });

  it('accepts a SASL_SSL cluster with mutual TLS, a registry over https with basic auth, and verified PostgreSQL TLS', () => {
    const config = loadConfig({
      PERSONAHUB_KAFKA_BROKERS: 'b1.example.com:9093,b2.example.com:9093',
      PERSONAHUB_KAFKA_SSL: 'true',
      PERSONAHUB_KAFKA_SSL_CA_FILE: ca,
      PERSONAHUB_KAFKA_SSL_CERT_FILE: cert,
      PERSONAHUB_KAFKA_SSL_KEY_FILE: key,
      PERSONAHUB_KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
      PERSONAHUB_KAFKA_SASL_USERNAME: 'alice',
      PERSONAHUB_KAFKA_SASL_PASSWORD: SECRET,
      PERSONAHUB_REGISTRY_URL: 'https://registry.example.com/apis/ccompat/v7',
      PERSONAHUB_REGISTRY_CA_FILE: ca,
      PERSONAHUB_REGISTRY_USERNAME: 'api-key',
      PERSONAHUB_REGISTRY_PASSWORD: SECRET,
      PERSONAHUB_DATABASE_SSL: 'verify-full',
      PERSONAHUB_DATABASE_SSL_CA_FILE: ca,
    });
    // Kafka spells mechanisms in capitals; the configuration holds them as kafkajs does.
    expect(config).toMatchObject({ kafkaSsl: true, kafkaSaslMechanism: 'scram-sha-512', kafkaSslKeyFile: key, databaseSsl: 'verify-full' });
  });

  it.each(['plain', 'PLAIN', 'scram-sha-256', 'Scram-Sha-256', 'scram-sha-512'])('takes SASL mechanism %s', (mechanism) => {
    const config = loadConfig({ PERSONAHUB_KAFKA_SASL_MECHANISM: mechanism, PERSONAHUB_KAFKA_SASL_USERNAME: 'alice', PERSONAHUB_KAFKA_SASL_PASSWORD: 'x' });
    expect(config.kafkaSaslMechanism).toBe(mechanism.toLowerCase());
  });

  it('takes an RSA ("traditional") private key as well as PKCS#8, and TLS with Node\'s own CAs', () => {
    expect(loadConfig({ PERSONAHUB_KAFKA_SSL: 'true', PERSONAHUB_KAFKA_SSL_CERT_FILE: cert, PERSONAHUB_KAFKA_SSL_KEY_FILE: rsaKey }).kafkaSslKeyFile).toBe(rsaKey);
    expect(loadConfig({ PERSONAHUB_KAFKA_SSL: 'true' }).kafkaSslCaFile).toBe('');
    expect(loadConfig({ PERSONAHUB_DATABASE_SSL: 'require' }).databaseSslCaFile).toBe('');
  });

  it.each([
    ['PERSONAHUB_KAFKA_SASL_MECHANISM', 'gssapi', 'allowed values are "none", "plain", "scram-sha-256", "scram-sha-512"'],
    ['PERSONAHUB_KAFKA_SASL_MECHANISM', 'oauthbearer', 'allowed values are "none", "plain", "scram-sha-256", "scram-sha-512"'],
    ['PERSONAHUB_KAFKA_SSL', 'yes', 'allowed values are "true", "false"'],
    ['PERSONAHUB_DATABASE_SSL', 'prefer', 'allowed values are "disable", "require", "verify-full"'],
    ['PERSONAHUB_DATABASE_SSL', 'verify-ca', 'allowed values are "disable", "require", "verify-full"'],
    ['PERSONAHUB_REGISTRY_USERNAME', 'key:secret', 'a basic-auth username cannot contain ":"'],
  ])('refuses %s=%j, saying what is allowed', (env, value, allowed) => {
    expect(refusal({ [env]: value })).toContain(`${env}=${JSON.stringify(value)}: ${allowed}`);
  });

  it.each([
    ['PERSONAHUB_KAFKA_SSL_CA_FILE', join(dir, 'missing.pem'), 'no such file'],
    ['PERSONAHUB_KAFKA_SSL_CA_FILE', aDirectory, 'it is a directory'],
    ['PERSONAHUB_KAFKA_SSL_CA_FILE', notPem, 'no -----BEGIN CERTIFICATE----- block in it'],
    ['PERSONAHUB_KAFKA_SSL_CERT_FILE', key, 'no -----BEGIN CERTIFICATE----- block in it'],
    ['PERSONAHUB_KAFKA_SSL_KEY_FILE', cert, 'no -----BEGIN PRIVATE KEY----- block in it'],
    ['PERSONAHUB_KAFKA_SSL_KEY_FILE', encryptedKey, 'the key is encrypted'],
    ['PERSONAHUB_REGISTRY_CA_FILE', join(dir, 'missing.pem'), 'no such file'],
    ['PERSONAHUB_DATABASE_SSL_CA_FILE', join(dir, 'missing.crt'), 'no such file'],
  ])('refuses %s=<%s>: %s', (env, path, why) => {
    // With every other key of the combination set right, so only the file itself is wrong.
    const message = refusal({ PERSONAHUB_KAFKA_SSL: 'true', PERSONAHUB_REGISTRY_URL: 'https://r.example.com', PERSONAHUB_DATABASE_SSL: 'require', [env]: path });
    expect(message).toContain(`${env}=${JSON.stringify(path)}: expected the path of a readable PEM file`);
    expect(message).toContain(why);
  });

  it.each<{ case: string; env: Record<string, string>; says: string }>([
    {
      case: 'a SASL mechanism without credentials',
      env: { PERSONAHUB_KAFKA_SASL_MECHANISM: 'scram-sha-256' },
      says: 'PERSONAHUB_KAFKA_SASL_MECHANISM="scram-sha-256": needs PERSONAHUB_KAFKA_SASL_USERNAME and PERSONAHUB_KAFKA_SASL_PASSWORD (not set: PERSONAHUB_KAFKA_SASL_USERNAME, PERSONAHUB_KAFKA_SASL_PASSWORD)',
    },
    {
      case: 'a SASL mechanism with a username but no password',
      env: { PERSONAHUB_KAFKA_SASL_MECHANISM: 'plain', PERSONAHUB_KAFKA_SASL_USERNAME: 'alice' },
      says: 'PERSONAHUB_KAFKA_SASL_MECHANISM="plain": needs PERSONAHUB_KAFKA_SASL_USERNAME and PERSONAHUB_KAFKA_SASL_PASSWORD (not set: PERSONAHUB_KAFKA_SASL_PASSWORD)',
    },
    {
      case: 'SASL credentials that no mechanism would use',
      env: { PERSONAHUB_KAFKA_SASL_USERNAME: 'alice', PERSONAHUB_KAFKA_SASL_PASSWORD: SECRET },
      says: 'PERSONAHUB_KAFKA_SASL_USERNAME and PERSONAHUB_KAFKA_SASL_PASSWORD set, but PERSONAHUB_KAFKA_SASL_MECHANISM is "none"',
    },
    {
      case: 'a Kafka CA file with TLS off',
      env: { PERSONAHUB_KAFKA_SSL_CA_FILE: ca },
      says: 'PERSONAHUB_KAFKA_SSL_CA_FILE set, but PERSONAHUB_KAFKA_SSL is false: set PERSONAHUB_KAFKA_SSL=true',
    },
    {
      case: 'a client certificate without its key',
      env: { PERSONAHUB_KAFKA_SSL: 'true', PERSONAHUB_KAFKA_SSL_CERT_FILE: cert },
      says: 'PERSONAHUB_KAFKA_SSL_CERT_FILE set without PERSONAHUB_KAFKA_SSL_KEY_FILE: a client certificate and its key go together',
    },
    {
      case: 'a client key without its certificate',
      env: { PERSONAHUB_KAFKA_SSL: 'true', PERSONAHUB_KAFKA_SSL_KEY_FILE: key },
      says: 'PERSONAHUB_KAFKA_SSL_KEY_FILE set without PERSONAHUB_KAFKA_SSL_CERT_FILE',
    },
    {
      case: 'a registry CA file for an http:// registry',
      env: { PERSONAHUB_REGISTRY_CA_FILE: ca },
      says: 'PERSONAHUB_REGISTRY_CA_FILE set, but PERSONAHUB_REGISTRY_URL is not an https:// URL',
    },
    {
      case: 'a registry username without a password',
      env: { PERSONAHUB_REGISTRY_USERNAME: 'api-key' },
      says: 'PERSONAHUB_REGISTRY_USERNAME set without PERSONAHUB_REGISTRY_PASSWORD: basic auth needs both',
    },
    {
      case: 'a registry password without a username',
      env: { PERSONAHUB_REGISTRY_PASSWORD: SECRET },
      says: 'PERSONAHUB_REGISTRY_PASSWORD set without PERSONAHUB_REGISTRY_USERNAME: basic auth needs both',
    },
    {
      case: 'a PostgreSQL CA file with TLS disabled',
      env: { PERSONAHUB_DATABASE_SSL_CA_FILE: ca },
      says: 'PERSONAHUB_DATABASE_SSL_CA_FILE set, but PERSONAHUB_DATABASE_SSL is "disable"',
    },
    {
      case: 'PostgreSQL TLS set both by the key and in the URL',
      env: { PERSONAHUB_DATABASE_SSL: 'verify-full', PERSONAHUB_DATABASE_URL: `postgres://app:${SECRET}@db.example.com/personas?sslmode=require&sslrootcert=/ca.pem` },
      says: 'PERSONAHUB_DATABASE_SSL="verify-full" and PERSONAHUB_DATABASE_URL (sslmode, sslrootcert) both set TLS',
    },
  ])('refuses $case, naming the keys', ({ env, says }) => {
    const message = refusal(env);
    expect(message).toContain(says);
    expect(message).not.toContain(SECRET);
  });

  it('reports a bad combination together with the other bad keys', () => {
    const message = refusal({ PERSONAHUB_KAFKA_SASL_MECHANISM: 'scram-sha-512', PERSONAHUB_PARTITIONS: '0', PERSONAHUB_REGISTRY_USERNAME: 'k' });
    expect(message).toMatch(/PERSONAHUB_PARTITIONS="0"/);
    expect(message).toMatch(/PERSONAHUB_KAFKA_SASL_MECHANISM="scram-sha-512": needs/);
    expect(message).toMatch(/PERSONAHUB_REGISTRY_USERNAME set without PERSONAHUB_REGISTRY_PASSWORD/);
  });

  it('does not report a combination twice when one of its keys is already refused', () => {
    const message = refusal({ PERSONAHUB_KAFKA_SSL_CA_FILE: join(dir, 'missing.pem') });
    expect(message).toContain('PERSONAHUB_KAFKA_SSL_CA_FILE="');
    expect(message).not.toContain('PERSONAHUB_KAFKA_SSL is false');
  });

  it('keeps an sslmode in the URL working when PERSONAHUB_DATABASE_SSL is left at disable', () => {
    expect(loadConfig({ PERSONAHUB_DATABASE_URL: 'postgres://u:p@db.example.com/personas?sslmode=verify-full' }).databaseSsl).toBe('disable');
  });

  it('`config check` (redactRecord) shows neither password, and keeps usernames and file paths', () => {
    const config = loadConfig({
      PERSONAHUB_KAFKA_SASL_MECHANISM: 'scram-sha-256', PERSONAHUB_KAFKA_SASL_USERNAME: 'alice', PERSONAHUB_KAFKA_SASL_PASSWORD: SECRET,
      PERSONAHUB_REGISTRY_URL: 'https://registry.example.com', PERSONAHUB_REGISTRY_CA_FILE: ca,
      PERSONAHUB_REGISTRY_USERNAME: 'api-key', PERSONAHUB_REGISTRY_PASSWORD: `${SECRET}-registry`,
    });
    const printed = redactRecord(config);
    expect(JSON.stringify(printed)).not.toContain(SECRET);
    expect(printed).toMatchObject({ kafkaSaslPassword: '[redacted]', registryPassword: '[redacted]', kafkaSaslUsername: 'alice', registryUsername: 'api-key', registryCaFile: ca });
  });

  it('the logger redacts both passwords, in a logged configuration and in client options as kafkajs takes them', () => {
    const config = loadConfig({
      PERSONAHUB_KAFKA_SASL_MECHANISM: 'plain', PERSONAHUB_KAFKA_SASL_USERNAME: 'alice', PERSONAHUB_KAFKA_SASL_PASSWORD: SECRET,
      PERSONAHUB_REGISTRY_USERNAME: 'api-key', PERSONAHUB_REGISTRY_PASSWORD: `${SECRET}-registry`,
    });
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', destination: { write: (line: string) => void lines.push(line) } });
    logger.info({ config }, 'starting');
    logger.info({ kafka: { sasl: { mechanism: 'plain', username: 'alice', password: SECRET } } }, 'client options');
    logger.info({ registry: { auth: { username: 'api-key', password: `${SECRET}-registry` } } }, 'registry options');
    expect(lines).toHaveLength(3);
    expect(lines.join('')).not.toContain(SECRET);
    expect(lines.join('')).toContain('"username":"alice"');
  });
});

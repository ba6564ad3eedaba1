/**
 * The real local stack, as configured (PERSONAHUB_HOME and the PERSONAHUB_*_PORT settings, or their
 * defaults), as every developer and CI run it. Every port and URL expected here comes from that
 * configuration, so the suite passes against a stack moved to other ports.
 * Starting a second stack would cost about 1 GB and half a minute, so this suite shares the one
 * that is running (or starts it) and never stops it: other suites use it after this one.
 */
import { randomUUID } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PersonaHubError } from '../../core/errors.ts';
import { createLogger } from '../../core/logger.ts';
import { loadConfig } from '../../config/index.ts';
import { stackOptions } from '../../cli/wiring.ts';
import { stackLogs, stackStatus, stackUp, stackUrls, type StackOptions, type StackStatus } from '../../stack/index.ts';

// The stack the suite's global setup started, as configured (defaults, or PERSONAHUB_* overrides).
const config = loadConfig({ ...process.env, PERSONAHUB_START_LOCAL_LLM: 'false' });
const options: StackOptions = {
  ...stackOptions(config, createLogger({ level: 'warn', name: 'stack-test' })),
  readyTimeoutMs: 120_000,
};
const urls = stackUrls(options);

/** The configuration the pipeline gets when it names no broker, registry or database of its own: the local stack's. */
const pipelineDefaults = loadConfig(Object.fromEntries(Object.entries({ ...process.env, PERSONAHUB_START_LOCAL_LLM: 'false' })
  .filter(([k]) => !['PERSONAHUB_KAFKA_BROKERS', 'PERSONAHUB_REGISTRY_URL', 'PERSONAHUB_DATABASE_URL'].includes(k))));

/** A cold install downloads about 230 MB and starts three JVM-or-postgres services. */
const COLD_START_MS = 15 * 60_000;

let first: StackStatus;

beforeAll(async () => {
  first = await stackUp(options);
}, COLD_START_MS);

const pidsOf = (s: StackStatus): Record<string, number | null> => Object.fromEntries(s.services.map((x) => [x.name, x.pid]));

async function expectStackError(p: Promise<unknown>, code: string): Promise<PersonaHubError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(PersonaHubError);
  expect((err as PersonaHubError).code).toBe(code);
  return err as PersonaHubError;
}

describe('local stack', () => {
  it('reports every core service running and ready', async () => {
    expect(first.allReady).toBe(true);
    const status = await stackStatus(options);
    expect(status.services.map((s) => s.name)).toEqual(['postgres', 'kafka', 'registry']);
    for (const s of status.services) {
      expect(s, s.name).toMatchObject({ running: true, ready: true });
      expect(s.pid).toBeGreaterThan(0);
      expect(s.logFile).toBe(path.join(options.home, 'logs', `${s.name}.log`));
    }
    expect(status.services.map((s) => s.port)).toEqual([config.postgresPort, config.kafkaPort, config.registryPort]);
  });

  it('gives the URLs the pipeline connects to', () => {
    const { postgresUser: user, postgresPassword: password, postgresDatabase: database } = config;
    expect(urls).toEqual({
      kafkaBrokers: [`127.0.0.1:${config.kafkaPort}`],
      registryUrl: `http://127.0.0.1:${config.registryPort}/apis/ccompat/v7`,
      postgresUrl: `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${config.postgresPort}/${encodeURIComponent(database)}`,
    });
    // The pipeline's defaults point at this stack.
    expect(urls).toEqual({
      kafkaBrokers: pipelineDefaults.kafkaBrokers.split(','),
      registryUrl: pipelineDefaults.registryUrl,
      postgresUrl: pipelineDefaults.databaseUrl,
    });
  });

  it('kafka accepts an admin connection', async () => {
    const kafka = new Kafka({ clientId: 'stack-test', brokers: urls.kafkaBrokers, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    try {
      expect(Array.isArray(await admin.listTopics())).toBe(true);
      const cluster = await admin.describeCluster();
      expect(cluster.brokers).toHaveLength(1);
    } finally {
      await admin.disconnect();
    }
  });

  it('the registry registers a schema and reads it back through the Confluent-compatible API', async () => {
    const subject = `personahub.stack-test-${randomUUID()}-value`;
    const base = urls.registryUrl;
    const json = { 'Content-Type': 'application/vnd.schemaregistry.v1+json' };
    const schema = JSON.stringify({ type: 'record', name: 'StackProbe', namespace: 'personahub.test', fields: [{ name: 'id', type: 'string' }] });
    try {
      const put = await fetch(`${base}/config/${subject}`, { method: 'PUT', headers: json, body: JSON.stringify({ compatibility: 'BACKWARD' }), signal: AbortSignal.timeout(30_000) });
      expect(put.status).toBe(200);
      const reg = await fetch(`${base}/subjects/${subject}/versions`, { method: 'POST', headers: json, body: JSON.stringify({ schema }), signal: AbortSignal.timeout(30_000) });
      expect(reg.status).toBe(200);
      const { id } = (await reg.json()) as { id: number };
      expect(typeof id).toBe('number');

      const byId = await fetch(`${base}/schemas/ids/${id}`, { signal: AbortSignal.timeout(30_000) });
      expect(byId.status).toBe(200);
      expect(JSON.parse(((await byId.json()) as { schema: string }).schema)).toEqual(JSON.parse(schema));

      const latest = await fetch(`${base}/subjects/${subject}/versions/latest`, { signal: AbortSignal.timeout(30_000) });
      expect(latest.status).toBe(200);
      expect((await latest.json()) as { id: number; version: number }).toMatchObject({ id, version: 1 });
    } finally {
      // Soft then permanent delete, so that test subjects do not pile up in the shared registry.
      await fetch(`${base}/subjects/${subject}`, { method: 'DELETE', signal: AbortSignal.timeout(30_000) }).catch(() => undefined);
      await fetch(`${base}/subjects/${subject}?permanent=true`, { method: 'DELETE', signal: AbortSignal.timeout(30_000) }).catch(() => undefined);
    }
  });

  it('postgres answers with pgvector through pg, with the configured password', async () => {
    const client = new pg.Client({ connectionString: urls.postgresUrl, connectionTimeoutMillis: 30_000 });
    await client.connect();
    try {
      const r = await client.query<{ v: string; d: number }>("SELECT '[1,2]'::vector::text AS v, '[1,2]'::vector <-> '[1,3]'::vector AS d");
      expect(r.rows[0]).toEqual({ v: '[1,2]', d: 1 });
    } finally {
      await client.end();
    }
    const wrongUrl = new URL(urls.postgresUrl);
    wrongUrl.password = `wrong-${config.postgresPassword}`;
    const wrong = new pg.Client({ connectionString: wrongUrl.toString(), connectionTimeoutMillis: 30_000 });
    await expect(wrong.connect()).rejects.toThrow(/password authentication failed/);
    await wrong.end().catch(() => undefined);
  });

  it('a second stackUp restarts nothing', async () => {
    const again = await stackUp(options);
    expect(again.allReady).toBe(true);
    expect(pidsOf(again)).toEqual(pidsOf(first));
  }, 60_000);

  it('tails a service log, and refuses an unknown service', async () => {
    const tail = await stackLogs(options, 'postgres', 5);
    expect(tail.split('\n').length).toBeLessThanOrEqual(5);
    expect(tail.length).toBeGreaterThan(0);
    await expectStackError(stackLogs(options, 'zookeeper', 5), 'PH_STACK_UNKNOWN_SERVICE');
  });
});

describe('extra services and failures', () => {
  // Each case uses its own service name, so nothing it leaves behind meets another case.
  // The deadline is long (it only stops a hang) except where running out of it is the case under
  // test; processes that must still be running when checked sleep far longer than any check takes.
  const extra = (name: string, spec: Partial<NonNullable<StackOptions['extraServices']>[number]>, readyTimeoutMs = 60_000): StackOptions => ({
    ...options,
    readyTimeoutMs,
    extraServices: [{ name, command: 'sh', args: ['-c', 'exit 0'], ready: {}, ...spec }],
  });
  const suffix = randomUUID().slice(0, 8);
  const names = ['echo', 'dies', 'slow', 'clash'].map((n) => `test-${n}-${suffix}`);

  afterAll(async () => {
    // The shared home keeps no trace of these cases: their processes, pid files and logs go.
    for (const name of names) {
      const pidFile = path.join(options.home, 'run', `${name}.pid`);
      const rec = await readFile(pidFile, 'utf8').then((t) => JSON.parse(t) as { pid: number }, () => null);
      if (rec) {
        try {
          process.kill(rec.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await rm(pidFile, { force: true });
      await rm(path.join(options.home, 'logs', `${name}.log`), { force: true });
    }
  });

  it('starts an extra service after the core ones and waits for its log line', async () => {
    const o = extra(`test-echo-${suffix}`, { args: ['-c', 'echo "extra service is up: $GREETING"; exec sleep 600'], env: { GREETING: 'hi' }, ready: { logLine: 'extra service is up: hi' } });
    const status = await stackUp(o);
    const svc = status.services.find((s) => s.name === `test-echo-${suffix}`);
    expect(svc).toMatchObject({ running: true, ready: true });
    expect(await stackLogs(o, `test-echo-${suffix}`, 1)).toBe('extra service is up: hi');
    expect(pidsOf(status)).toMatchObject(pidsOf(first));
    if (svc?.pid) process.kill(svc.pid, 'SIGTERM');
  }, 120_000);

  it('says PH_STACK_EXITED with the log tail when a service dies while starting', async () => {
    const err = await expectStackError(
      stackUp(extra(`test-dies-${suffix}`, { args: ['-c', 'echo "fatal: no model file"; exit 3'], ready: { logLine: 'never printed' } })),
      'PH_STACK_EXITED',
    );
    expect(err.message).toContain('fatal: no model file');
  }, 120_000);

  it('says PH_STACK_NOT_READY with the log tail when a service never gets ready', async () => {
    // It never logs the line and never exits (afterAll kills it), so only the 3 s deadline can end the wait.
    const err = await expectStackError(
      stackUp(extra(`test-slow-${suffix}`, { args: ['-c', 'echo "still loading"; exec sleep 600'], ready: { logLine: 'loaded' } }, 3000)),
      'PH_STACK_NOT_READY',
    );
    expect(err.message).toContain('still loading');
    expect(err.message).toContain('within 3 s');
  }, 120_000);

  it('says PH_STACK_PORT_IN_USE, naming the port and the service, when its port is taken', async () => {
    const err = await expectStackError(
      stackUp(extra(`test-clash-${suffix}`, { args: ['-c', 'exec sleep 600'], ready: { tcp: options.kafka.port } })),
      'PH_STACK_PORT_IN_USE',
    );
    expect(err.message).toContain(`port ${options.kafka.port}`);
    expect(err.message).toContain(`test-clash-${suffix}`);
    const kafkaPid = first.services.find((s) => s.name === 'kafka')?.pid;
    expect(err.message).toContain(`pid ${kafkaPid}`);
  }, 120_000);
});

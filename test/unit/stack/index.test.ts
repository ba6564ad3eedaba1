import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stackOptions } from '../../../cli/wiring.ts';
import { loadConfig } from '../../../config/index.ts';
import { createLogger } from '../../../core/logger.ts';
import { checkPorts, stackDown, stackLogs, stackStatus, stackUrls, type StackOptions } from '../../../stack/index.ts';
import { isAlive, spawnDetached, startTicksOf, writePidFile } from '../../../stack/process.ts';

// A home of its own with ports nobody uses: nothing here touches the shared dev stack.
let home: string;
let o: StackOptions;
beforeEach(async () => {
  home = await mkdtemp(path.join(tmpdir(), 'ph-stack-home-'));
  o = {
    home,
    cacheDir: path.join(home, 'cache'),
    kafka: { port: 1, controllerPort: 2 },
    registry: { port: 3, managementPort: 4 },
    postgres: { port: 5, user: 'u s', password: 'p@ss:/word', database: 'db' },
    readyTimeoutMs: 1000,
    logger: createLogger({ level: 'silent' }),
  };
});
afterEach(async () => {
  await rm(home, { recursive: true, force: true });
});

describe('stack API without services', () => {
  it('builds URLs, escaping the credentials', () => {
    expect(stackUrls(o)).toEqual({
      kafkaBrokers: ['127.0.0.1:1'],
      registryUrl: 'http://127.0.0.1:3/apis/ccompat/v7',
      postgresUrl: 'postgres://u%20s:p%40ss%3A%2Fword@127.0.0.1:5/db',
    });
  });

  it('reports nothing running in an empty home', async () => {
    const status = await stackStatus({ ...o, extraServices: [{ name: 'llm', command: 'x', args: [], ready: { http: 'http://127.0.0.1:6/health' } }] });
    expect(status.allReady).toBe(false);
    expect(status.services.map((s) => [s.name, s.running, s.ready, s.port])).toEqual([
      ['postgres', false, false, 5],
      ['kafka', false, false, 1],
      ['registry', false, false, 3],
      ['llm', false, false, 6],
    ]);
  });

  it('refuses two services with one name', async () => {
    await expect(stackStatus({ ...o, extraServices: [{ name: 'kafka', command: 'x', args: [], ready: {} }] })).rejects.toMatchObject({ code: 'PH_STACK_CONFIG' });
  });

  it('stackDown also stops a service that an earlier stackUp started with other extraServices', async () => {
    await mkdir(path.join(home, 'run'), { recursive: true });
    await mkdir(path.join(home, 'logs'), { recursive: true });
    const { pid, logOffset } = await spawnDetached('old-extra', { command: 'sleep', args: ['30'] }, path.join(home, 'logs', 'old-extra.log'));
    const rec = { pid, startTicks: await startTicksOf(pid), logOffset, command: 'sleep 30', startedAt: new Date().toISOString() };
    await writePidFile(path.join(home, 'run', 'old-extra.pid'), rec);
    await stackDown(o);
    expect(await isAlive(rec)).toBe(false);
    expect(await readdir(path.join(home, 'run'))).toEqual([]);
    await expect(stackDown(o)).resolves.toBeUndefined();
  });

  it('refuses logs of a service it does not know', async () => {
    await expect(stackLogs(o, 'zookeeper', 10)).rejects.toMatchObject({ code: 'PH_STACK_UNKNOWN_SERVICE' });
    expect(await stackLogs(o, 'kafka', 10)).toBe('');
  });
});

describe('port in use', () => {
  it('says PH_STACK_PORT_IN_USE, naming the port, the service, the holder and the setting to change', async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('no port');
      const port = address.port;
      const settings = [{ port, setting: 'PERSONAHUB_POSTGRES_PORT' }, { port: port + 1, setting: 'PERSONAHUB_KAFKA_PORT' }];
      const err = await checkPorts({ name: 'postgres', ports: [port] }, settings).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'PH_STACK_PORT_IN_USE' });
      const message = (err as Error).message;
      expect(message).toContain(`port ${port}, needed by postgres`);
      expect(message).toContain(`pid ${process.pid}`);
      expect(message).toContain('set PERSONAHUB_POSTGRES_PORT to a free port');
      expect(message).not.toContain('PERSONAHUB_KAFKA_PORT');
      // Two settings on one port: either can be changed.
      const both = await checkPorts({ name: 'kafka', ports: [port] }, [...settings, { port, setting: 'PERSONAHUB_KAFKA_PORT' }]).catch((e: unknown) => e);
      expect((both as Error).message).toContain('set PERSONAHUB_POSTGRES_PORT or PERSONAHUB_KAFKA_PORT to a free port');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('gets from the CLI the setting behind every port the stack binds', () => {
    const config = loadConfig({ PERSONAHUB_POSTGRES_PORT: '25432', PERSONAHUB_LLM_PORT: '28434' });
    const so = stackOptions(config, createLogger({ level: 'silent' }));
    const llmPort = Number(new URL(so.extraServices?.[0]?.ready.http ?? '').port);
    const bound = [so.kafka.port, so.kafka.controllerPort, so.registry.port, so.registry.managementPort, so.postgres.port, llmPort];
    expect(so.portSettings?.map((p) => p.port).sort()).toEqual(bound.sort());
    expect(so.portSettings).toContainEqual({ port: 25432, setting: 'PERSONAHUB_POSTGRES_PORT' });
    expect(so.portSettings).toContainEqual({ port: 28434, setting: 'PERSONAHUB_LLM_PORT' });
  });
});

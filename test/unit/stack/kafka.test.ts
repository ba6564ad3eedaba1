import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkJarSet, jarSetDigest, newClusterId, renderLog4j2, renderServerProperties } from '../../../stack/kafka.ts';

function parse(props: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of props.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.indexOf('=');
    m.set(line.slice(0, i), line.slice(i + 1));
  }
  return m;
}

describe('server.properties', () => {
  const props = parse(renderServerProperties({ port: 19092, controllerPort: 19093, dataDir: '/var/tmp/ph/kafka/data' }));

  it('is a single-node KRaft broker and controller on loopback', () => {
    expect(props.get('process.roles')).toBe('broker,controller');
    expect(props.get('node.id')).toBe('1');
    expect(props.get('controller.quorum.voters')).toBe('1@127.0.0.1:19093');
    expect(props.get('listeners')).toBe('PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093');
    expect(props.get('advertised.listeners')).toBe('PLAINTEXT://127.0.0.1:19092');
    expect(props.get('controller.listener.names')).toBe('CONTROLLER');
    expect(props.get('inter.broker.listener.name')).toBe('PLAINTEXT');
    expect(props.get('log.dirs')).toBe('/var/tmp/ph/kafka/data');
  });

  it('has one replica for every internal topic and the project defaults', () => {
    expect(props.get('auto.create.topics.enable')).toBe('false');
    expect(props.get('num.partitions')).toBe('3');
    expect(props.get('offsets.topic.replication.factor')).toBe('1');
    expect(props.get('transaction.state.log.replication.factor')).toBe('1');
    expect(props.get('transaction.state.log.min.isr')).toBe('1');
    expect(props.get('share.coordinator.state.topic.replication.factor')).toBe('1');
    expect(props.get('share.coordinator.state.topic.min.isr')).toBe('1');
    expect(props.get('group.initial.rebalance.delay.ms')).toBe('0');
  });

  it('follows the configured ports', () => {
    const other = parse(renderServerProperties({ port: 29092, controllerPort: 29093, dataDir: '/d' }));
    expect(other.get('listeners')).toBe('PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093');
    expect(other.get('controller.quorum.voters')).toBe('1@127.0.0.1:29093');
  });
});

describe('kafka install helpers', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ph-stack-kafka-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('logs to stdout only (the service log file)', () => {
    const xml = renderLog4j2();
    expect(xml).toContain('<Console name="STDOUT" target="SYSTEM_OUT">');
    expect(xml).not.toContain('RollingFile');
  });

  it('makes cluster ids like `kafka-storage random-uuid`', () => {
    const id = newClusterId();
    expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(newClusterId()).not.toBe(id);
  });

  it('digests the jar set independently of order', () => {
    const a = new Map([['x.jar', '1'.repeat(64)], ['y.jar', '2'.repeat(64)]]);
    const b = new Map([['y.jar', '2'.repeat(64)], ['x.jar', '1'.repeat(64)]]);
    expect(jarSetDigest(a)).toBe(jarSetDigest(b));
    expect(jarSetDigest(new Map([['x.jar', '3'.repeat(64)]]))).not.toBe(jarSetDigest(a));
  });

  it('refuses a jar set with a missing or an unexpected jar', async () => {
    await writeFile(path.join(dir, 'a.jar'), 'a');
    await writeFile(path.join(dir, 'extra.jar'), 'e');
    const pins = new Map([['a.jar', 'ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb'], ['b.jar', '0'.repeat(64)]]);
    await expect(checkJarSet(dir, pins)).rejects.toMatchObject({
      code: 'PH_STACK_CHECKSUM',
      message: expect.stringContaining('missing [b.jar], unexpected [extra.jar]'),
    });
  });

  it('refuses a jar whose content differs from its pin', async () => {
    await writeFile(path.join(dir, 'a.jar'), 'not a');
    await expect(checkJarSet(dir, new Map([['a.jar', '0'.repeat(64)]]))).rejects.toMatchObject({
      code: 'PH_STACK_CHECKSUM',
      message: expect.stringContaining(path.join(dir, 'a.jar')),
    });
  });

  it('accepts the pinned set', async () => {
    await writeFile(path.join(dir, 'a.jar'), 'a');
    await expect(checkJarSet(dir, new Map([['a.jar', 'ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb']]))).resolves.toBeUndefined();
  });
});

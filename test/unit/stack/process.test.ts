import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  acquireLock,
  isAlive,
  liveProcess,
  LogWatcher,
  parseProcStat,
  readPidFile,
  sleep,
  spawnDetached,
  startTicksOf,
  stopProcess,
  tailFile,
  writePidFile,
  type PidRecord,
} from '../../../stack/process.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'ph-stack-proc-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A pid that is certainly not running: a process that ran and was reaped. */
async function deadPid(): Promise<number> {
  const { spawnSync } = await import('node:child_process');
  const r = spawnSync('true');
  return r.pid ?? 999_999;
}

describe('/proc/<pid>/stat', () => {
  it('reads state and start time even when the command name has spaces and parentheses', () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
    fields[0] = 'S';
    fields[19] = '123456';
    expect(parseProcStat(`4242 (java (main) x) ${fields.join(' ')}`)).toEqual({ state: 'S', startTicks: '123456' });
    expect(parseProcStat('garbage')).toBeNull();
  });
});

describe('pid files', () => {
  it('knows this process is alive and a reaped one is not', async () => {
    expect(await isAlive({ pid: process.pid, startTicks: await startTicksOf(process.pid) })).toBe(true);
    expect(await isAlive({ pid: await deadPid(), startTicks: null })).toBe(false);
  });

  it('tells a reused pid from ours by its start time', async () => {
    expect(await isAlive({ pid: process.pid, startTicks: '1' })).toBe(false);
  });

  it('removes a stale pid file and keeps a live one', async () => {
    const stale = path.join(dir, 'stale.pid');
    const live = path.join(dir, 'live.pid');
    const base = { logOffset: 0, command: 'x', startedAt: new Date().toISOString() };
    await writePidFile(stale, { pid: await deadPid(), startTicks: null, ...base });
    await writePidFile(live, { pid: process.pid, startTicks: await startTicksOf(process.pid), ...base });
    expect(await liveProcess(stale)).toBeNull();
    await expect(readFile(stale)).rejects.toThrow();
    expect((await liveProcess(live))?.pid).toBe(process.pid);
  });

  it('treats an unreadable pid file as stale', async () => {
    const f = path.join(dir, 'bad.pid');
    await writeFile(f, 'not json');
    expect(await readPidFile(f)).toBeNull();
    expect(await liveProcess(f)).toBeNull();
  });
});

describe('detached processes', () => {
  it('starts a process with its output in the log, then stops it with the signal', async () => {
    const log = path.join(dir, 'svc.log');
    const { pid, logOffset } = await spawnDetached('svc', { command: 'sh', args: ['-c', 'echo "hello $GREETING"; exec sleep 30'], env: { GREETING: 'world' } }, log);
    const rec: PidRecord = { pid, startTicks: await startTicksOf(pid), logOffset, command: 'sh', startedAt: '' };
    const watcher = new LogWatcher(log, logOffset, 'hello world');
    for (let i = 0; i < 50 && !(await watcher.seen()); i++) await sleep(50);
    expect(await watcher.seen()).toBe(true);
    expect(await isAlive(rec)).toBe(true);
    expect(await stopProcess(rec, 'SIGTERM', 5000)).toBe(false);
    expect(await isAlive(rec)).toBe(false);
  });

  it('kills a process that ignores the stop signal once the grace period is over', async () => {
    const log = path.join(dir, 'stubborn.log');
    const { pid, logOffset } = await spawnDetached('stubborn', { command: 'sh', args: ['-c', "trap '' TERM; echo trapped; while :; do sleep 1; done"] }, log);
    const rec: PidRecord = { pid, startTicks: await startTicksOf(pid), logOffset, command: 'sh', startedAt: '' };
    const watcher = new LogWatcher(log, logOffset, 'trapped');
    for (let i = 0; i < 50 && !(await watcher.seen()); i++) await sleep(50);
    expect(await stopProcess(rec, 'SIGTERM', 300)).toBe(true);
    expect(await isAlive(rec)).toBe(false);
  });

  it('reports a command that cannot be started', async () => {
    await expect(spawnDetached('nope', { command: path.join(dir, 'no-such-binary'), args: [] }, path.join(dir, 'nope.log'))).rejects.toMatchObject({ code: 'PH_STACK_SPAWN' });
  });
});

describe('logs', () => {
  it('tails the last lines, from an offset on', async () => {
    const f = path.join(dir, 'a.log');
    await writeFile(f, 'old 1\nold 2\n');
    const offset = (await readFile(f)).length;
    await appendFile(f, 'new 1\nnew 2\nnew 3\n');
    expect(await tailFile(f, 2)).toBe('new 2\nnew 3');
    expect(await tailFile(f, 10, offset)).toBe('new 1\nnew 2\nnew 3');
    expect(await tailFile(path.join(dir, 'missing.log'), 5)).toBe('');
  });

  it('finds a line written in pieces, and only after the offset', async () => {
    const f = path.join(dir, 'b.log');
    await writeFile(f, 'Kafka Server started (previous run)\n');
    const offset = (await readFile(f)).length;
    const w = new LogWatcher(f, offset, 'Kafka Server started');
    expect(await w.seen()).toBe(false);
    await appendFile(f, '[..] INFO [KafkaRaftServer nodeId=1] Kafka Ser');
    expect(await w.seen()).toBe(false);
    await appendFile(f, 'ver started (kafka.server.KafkaRaftServer)\n');
    expect(await w.seen()).toBe(true);
  });
});

describe('lock', () => {
  it('is exclusive, and a lock left by a dead process is taken over', async () => {
    const lock = path.join(dir, 'stack.lock');
    await writeFile(lock, JSON.stringify({ pid: await deadPid(), startTicks: null }));
    const release = await acquireLock(lock, 2000);
    await expect(acquireLock(lock, 300)).rejects.toMatchObject({ code: 'PH_STACK_LOCKED' });
    await release();
    const again = await acquireLock(lock, 300);
    await again();
  });
});

import { spawn } from 'node:child_process';
import { open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { StackError } from '../core/errors.ts';
import { withEnv } from './exec.ts';

export interface PidRecord {
  pid: number;
  /** Kernel start time of the process (clock ticks since boot): tells a reused pid from ours. */
  startTicks: string | null;
  /** Size of the log file when the process started: readiness looks only at what came after. */
  logOffset: number;
  command: string;
  startedAt: string;
  /** Set once the service passed its readiness check after this start. */
  readyAt?: string;
}

export interface LaunchSpec {
  command: string;
  args: string[];
  env?: Record<string, string>;
  cwd?: string;
  uid?: number;
  gid?: number;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Fields 3 (state) and 22 (starttime) of /proc/<pid>/stat; the command name may hold spaces and ')'. */
export function parseProcStat(text: string): { state: string; startTicks: string } | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const rest = text.slice(close + 2).split(' ');
  const state = rest[0];
  const startTicks = rest[19];
  return state && startTicks ? { state, startTicks } : null;
}

async function procStat(pid: number): Promise<{ state: string; startTicks: string } | null | 'no-proc'> {
  try {
    return parseProcStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      try {
        await stat('/proc/self/stat');
        return null;
      } catch {
        return 'no-proc';
      }
    }
    return null;
  }
}

export async function startTicksOf(pid: number): Promise<string | null> {
  const s = await procStat(pid);
  return s === null || s === 'no-proc' ? null : s.startTicks;
}

/** Alive means: the pid exists, is not a zombie, and is still the process we started. */
export async function isAlive(rec: Pick<PidRecord, 'pid' | 'startTicks'>): Promise<boolean> {
  const s = await procStat(rec.pid);
  if (s === 'no-proc') {
    try {
      process.kill(rec.pid, 0);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EPERM';
    }
  }
  if (s === null || s.state === 'Z' || s.state === 'X') return false;
  return rec.startTicks === null || s.startTicks === rec.startTicks;
}

export async function readPidFile(file: string): Promise<PidRecord | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return null;
  }
  try {
    const v = JSON.parse(text) as Partial<PidRecord>;
    if (typeof v.pid !== 'number' || !Number.isInteger(v.pid) || v.pid <= 0) return null;
    return {
      pid: v.pid,
      startTicks: typeof v.startTicks === 'string' ? v.startTicks : null,
      logOffset: typeof v.logOffset === 'number' ? v.logOffset : 0,
      command: typeof v.command === 'string' ? v.command : '',
      startedAt: typeof v.startedAt === 'string' ? v.startedAt : '',
      ...(typeof v.readyAt === 'string' ? { readyAt: v.readyAt } : {}),
    };
  } catch {
    return null;
  }
}

export async function writePidFile(file: string, rec: PidRecord): Promise<void> {
  // Written whole then renamed, so a reader never sees half a record.
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(rec)}\n`);
  await rename(tmp, file);
}

/** The live process recorded in the pid file, or null; a stale file (process gone) is removed. */
export async function liveProcess(pidFile: string): Promise<PidRecord | null> {
  const rec = await readPidFile(pidFile);
  if (rec === null) {
    await rm(pidFile, { force: true });
    return null;
  }
  if (await isAlive(rec)) return rec;
  await rm(pidFile, { force: true });
  return null;
}

const ROTATE_AT_BYTES = 64 * 1024 * 1024;

/** Logs are appended across restarts; past 64 MB the old one moves to `.1` when a service starts. */
export async function rotateLogIfLarge(logFile: string): Promise<void> {
  try {
    if ((await stat(logFile)).size > ROTATE_AT_BYTES) await rename(logFile, `${logFile}.1`);
  } catch {
    // no log yet
  }
}

/**
 * Starts a long-running service in its own session (detached), stdout and stderr appended to its
 * log file, not tied to this process: it outlives the CLI that started it.
 */
export async function spawnDetached(name: string, launch: LaunchSpec, logFile: string): Promise<{ pid: number; logOffset: number }> {
  const handle = await open(logFile, 'a');
  try {
    await handle.write(`\n=== personahub stack: starting ${name} at ${new Date().toISOString()} ===\n`);
    const logOffset = (await handle.stat()).size;
    const line = withEnv(launch.env, launch.command, launch.args);
    const child = spawn(line.command, line.args, {
      detached: true,
      stdio: ['ignore', handle.fd, handle.fd],
      cwd: launch.cwd,
      uid: launch.uid,
      gid: launch.gid,
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', (err) => reject(new StackError('PH_STACK_SPAWN', `could not start ${name} (\`${launch.command}\`): ${err.message}`, { cause: err })));
    });
    child.unref();
    if (child.pid === undefined) throw new StackError('PH_STACK_SPAWN', `could not start ${name}: no pid`);
    return { pid: child.pid, logOffset };
  } finally {
    await handle.close();
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/**
 * Sends the stop signal to the service, then SIGKILL to its whole process group after the grace
 * period (it was started as a group leader, so helpers it forked go too). True if it had to be killed.
 */
export async function stopProcess(rec: PidRecord, stopSignal: NodeJS.Signals, graceMs: number): Promise<boolean> {
  if (!(await isAlive(rec))) return false;
  signal(rec.pid, stopSignal);
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!(await isAlive(rec))) return false;
    await sleep(100);
  }
  signal(-rec.pid, 'SIGKILL');
  signal(rec.pid, 'SIGKILL');
  const killDeadline = Date.now() + 10_000;
  while (Date.now() < killDeadline && (await isAlive(rec))) await sleep(100);
  return true;
}

/** The last `n` lines of a file from `fromOffset` on (reads at most the last 1 MB). */
export async function tailFile(file: string, n: number, fromOffset = 0): Promise<string> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch {
    return '';
  }
  try {
    const { size } = await handle.stat();
    // A log rotated or truncated since the offset was taken: read it from the start.
    const from = Math.max(fromOffset <= size ? fromOffset : 0, size - 1024 * 1024);
    const buf = Buffer.alloc(size - from);
    await handle.read(buf, 0, buf.length, from);
    const lines = buf.toString('utf8').replace(/\s+$/, '').split('\n');
    return n <= 0 ? '' : lines.slice(Math.max(0, lines.length - n)).join('\n');
  } finally {
    await handle.close();
  }
}

/** Incremental search for a line in a growing log, from a byte offset on. */
export class LogWatcher {
  private offset: number;
  private carry = '';
  private found = false;

  constructor(private readonly file: string, fromOffset: number, private readonly needle: string) {
    this.offset = fromOffset;
  }

  async seen(): Promise<boolean> {
    if (this.found) return true;
    let handle;
    try {
      handle = await open(this.file, 'r');
    } catch {
      return false;
    }
    try {
      const { size } = await handle.stat();
      if (size < this.offset) this.offset = 0;
      while (this.offset < size) {
        const buf = Buffer.alloc(Math.min(1024 * 1024, size - this.offset));
        const { bytesRead } = await handle.read(buf, 0, buf.length, this.offset);
        if (bytesRead === 0) break;
        this.offset += bytesRead;
        const text = this.carry + buf.subarray(0, bytesRead).toString('utf8');
        if (text.includes(this.needle)) {
          this.found = true;
          return true;
        }
        this.carry = text.slice(Math.max(0, text.length - this.needle.length));
      }
      return false;
    } finally {
      await handle.close();
    }
  }
}

/**
 * A lock file per home so that two CLIs (or test workers) calling stackUp at once cannot start a
 * service twice. A lock whose owner died is taken over.
 */
export async function acquireLock(lockFile: string, timeoutMs: number): Promise<() => Promise<void>> {
  const deadline = Date.now() + timeoutMs;
  const me: Pick<PidRecord, 'pid' | 'startTicks'> = { pid: process.pid, startTicks: await startTicksOf(process.pid) };
  for (;;) {
    try {
      const handle = await open(lockFile, 'wx');
      await handle.write(JSON.stringify(me));
      await handle.close();
      return async () => {
        await rm(lockFile, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = await readPidFile(lockFile);
    if (owner === null || !(await isAlive(owner))) {
      // Either a dead owner or a lock caught between create and write; only the first is stale
      // for sure, so a fresh unreadable one gets a moment before it is taken over.
      const age = await stat(lockFile).then((s) => Date.now() - s.mtimeMs, () => Infinity);
      if (owner !== null || age > 2000) {
        await rm(lockFile, { force: true });
        continue;
      }
    }
    if (Date.now() > deadline) {
      throw new StackError('PH_STACK_LOCKED', `another process (pid ${owner?.pid ?? '?'}) has held ${lockFile} for over ${Math.round(timeoutMs / 1000)} s; if it is stuck, stop it`);
    }
    await sleep(200);
  }
}

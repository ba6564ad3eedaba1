import { spawn } from 'node:child_process';
import { StackError } from '../core/errors.ts';

export interface RunOptions {
  cwd?: string;
  /** Added to the inherited environment (see withEnv). */
  env?: Record<string, string>;
  uid?: number;
  gid?: number;
  timeoutMs?: number;
  /** Error code when the tool fails, e.g. PH_STACK_DOWNLOAD. */
  failCode: `PH_STACK_${string}`;
  /** What the tool was doing, for the error message ("downloading the Kafka jars"). */
  what: string;
  /** How to get the tool when it is missing. */
  installHint?: string;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

const KEEP_OUTPUT_CHARS = 64 * 1024;

/**
 * Runs a child's command line through `env NAME=value ... cmd`: the child keeps the caller's
 * whole environment (PATH, proxies, pip and Maven settings) plus ours, and this module never
 * reads or copies process.env. `env` execs the command, so the pid is the command's own.
 */
export function withEnv(extra: Record<string, string> | undefined, command: string, args: readonly string[]): { command: string; args: string[] } {
  const pairs = Object.entries(extra ?? {});
  if (pairs.length === 0) return { command, args: [...args] };
  for (const [name] of pairs) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new StackError('PH_STACK_CONFIG', `invalid environment variable name ${JSON.stringify(name)}`);
  }
  // `--` first: env stops option parsing there, so no value or command is read as an env option.
  return { command: 'env', args: ['--', ...pairs.map(([k, v]) => `${k}=${v}`), command, ...args] };
}

const ANSI_ESCAPE = /\x1b\[[0-9;]*[A-Za-z]/g;

/** The last `n` lines, without terminal colour codes (Maven prints some even in batch mode). */
export function lastLines(text: string, n: number): string {
  const lines = text.replace(ANSI_ESCAPE, '').replace(/\s+$/, '').split('\n');
  return lines.slice(Math.max(0, lines.length - n)).join('\n');
}

/** Runs a tool to completion; a non-zero exit becomes a StackError with the tail of its stderr. */
export async function runTool(command: string, args: readonly string[], o: RunOptions): Promise<RunResult> {
  const line = withEnv(o.env, command, args);
  return new Promise<RunResult>((resolve, reject) => {
    const child = spawn(line.command, line.args, {
      cwd: o.cwd,
      uid: o.uid,
      gid: o.gid,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const keep = (acc: string, chunk: Buffer): string => {
      const next = acc + chunk.toString('utf8');
      return next.length > KEEP_OUTPUT_CHARS ? next.slice(next.length - KEEP_OUTPUT_CHARS) : next;
    };
    child.stdout.on('data', (c: Buffer) => { stdout = keep(stdout, c); });
    child.stderr.on('data', (c: Buffer) => { stderr = keep(stderr, c); });
    let timedOut = false;
    const timer = o.timeoutMs === undefined ? undefined : setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, o.timeoutMs);
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer);
      if (err.code === 'ENOENT') {
        reject(new StackError('PH_STACK_TOOL', `${o.what}: \`${command}\` was not found on PATH.${o.installHint ? ` ${o.installHint}` : ''}`, { cause: err }));
      } else {
        reject(new StackError(o.failCode, `${o.what}: could not run \`${command}\`: ${err.message}`, { cause: err }));
      }
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (code === 0) {
        resolve({ stdout, stderr });
        return;
      }
      const why = timedOut ? `timed out after ${o.timeoutMs} ms` : signal ? `was killed by ${signal}` : `exited with code ${code}`;
      // Maven prints its errors on stdout, pip on stderr: show whichever has text.
      const output = lastLines([stdout, stderr].map((t) => t.trimEnd()).filter((t) => t !== '').join('\n'), 30);
      reject(new StackError(o.failCode, `${o.what}: \`${command} ${args.join(' ')}\` ${why}.\n--- last output ---\n${output}`));
    });
  });
}

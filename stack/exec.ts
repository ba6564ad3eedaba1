import { spawn } from 'node:child_process';
import { type PersonaHubError, StackError } from '../core/errors.ts';

/** Why a tool failed, for a caller that raises its own kind of error. */
export interface ToolFailure {
  /** The command is not on PATH (or not at the path given). */
  missing: boolean;
  /** What was being done, the command and why it failed, with the tail of its output. */
  message: string;
  cause?: unknown;
}

/** How a failure becomes an error: a StackError by default, or the caller's own (models keep PH_MODEL_* codes). */
export type ToolErrors =
  | {
      /** Error code when the tool fails, e.g. PH_STACK_DOWNLOAD; a tool that is not there is PH_STACK_TOOL. */
      failCode: `PH_STACK_${string}`;
    }
  | { error: (failure: ToolFailure) => PersonaHubError };

interface RunBaseOptions {
  cwd?: string;
  /** Added to the inherited environment (see withEnv). */
  env?: Record<string, string>;
  uid?: number;
  gid?: number;
  timeoutMs?: number;
  /** What the tool was doing, for the error message ("downloading the Kafka jars"). */
  what: string;
  /** How to get the tool when it is missing. */
  installHint?: string;
  /** Each complete stdout line as it arrives, for progress from long runs (pip prints a line per wheel). */
  onStdoutLine?: (line: string) => void;
}

export type RunOptions = RunBaseOptions & ToolErrors;

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

/** The error for a failure, as `o` wants it; also for checks a caller makes on a tool's result. */
export function toolError(o: ToolErrors, failure: ToolFailure): PersonaHubError {
  if ('error' in o) return o.error(failure);
  return new StackError(failure.missing ? 'PH_STACK_TOOL' : o.failCode, failure.message, { cause: failure.cause });
}

/** Runs a tool to completion; a non-zero exit becomes an error (see ToolErrors) with the tail of its output. */
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
    // Only the unfinished last line is held back; the output kept for the error message is capped separately.
    let partial = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout = keep(stdout, c);
      if (!o.onStdoutLine) return;
      const lines = (partial + c.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) o.onStdoutLine(l);
    });
    child.stderr.on('data', (c: Buffer) => { stderr = keep(stderr, c); });
    let timedOut = false;
    const timer = o.timeoutMs === undefined ? undefined : setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, o.timeoutMs);
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer);
      if (err.code === 'ENOENT') {
        reject(toolError(o, { missing: true, message: `${o.what}: \`${command}\` was not found on PATH.${o.installHint ? ` ${o.installHint}` : ''}`, cause: err }));
      } else {
        reject(toolError(o, { missing: false, message: `${o.what}: could not run \`${command}\`: ${err.message}`, cause: err }));
      }
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (partial !== '') o.onStdoutLine?.(partial);
      if (code === 0) {
        resolve({ stdout, stderr });
        return;
      }
      const why = timedOut ? `timed out after ${o.timeoutMs} ms` : signal ? `was killed by ${signal}` : `exited with code ${code}`;
      // Maven prints its errors on stdout, pip on stderr: show whichever has text.
      const output = lastLines([stdout, stderr].map((t) => t.trimEnd()).filter((t) => t !== '').join('\n'), 30);
      reject(toolError(o, { missing: false, message: `${o.what}: \`${command} ${args.join(' ')}\` ${why}.\n--- last output ---\n${output}` }));
    });
  });
}

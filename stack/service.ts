import path from 'node:path';
import type { Logger } from '../core/logger.ts';
import { findJava, type JavaRuntime } from './java.ts';
import type { LaunchSpec } from './process.ts';
import type { ServiceSpec, StackOptions } from './types.ts';

export interface ReadyCheck {
  http?: string;
  tcp?: number;
  /** Looked for only in what the log got after this start. */
  logLine?: string;
  probe?: () => Promise<boolean>;
}

/** What the orchestrator needs to know about one service, core or extra. */
export interface ManagedService {
  name: string;
  /** The port reported in the status. */
  port: number | null;
  /** Every port it binds: each must be free before it starts. */
  ports: number[];
  install(): Promise<void>;
  /** Before each start: config files, data folders, first-time initialisation. */
  prepare?(): Promise<void>;
  launch(): Promise<LaunchSpec>;
  ready: ReadyCheck;
  /** After each stackUp that finds it ready (started now or before): idempotent set-up. */
  afterReady?(): Promise<void>;
  stopSignal: NodeJS.Signals;
  stopGraceMs: number;
}

export interface StackPaths {
  home: string;
  run: string;
  logs: string;
}

export function stackPaths(home: string): StackPaths {
  return { home, run: path.join(home, 'run'), logs: path.join(home, 'logs') };
}

export const seconds = (since: number): string => `${((Date.now() - since) / 1000).toFixed(1)}s`;

export const pidFileOf = (p: StackPaths, name: string): string => path.join(p.run, `${name}.pid`);
export const logFileOf = (p: StackPaths, name: string): string => path.join(p.logs, `${name}.log`);

/** Shared by the services of one call: options, paths, and the Java runtimes found (looked up once). */
export class StackContext {
  readonly paths: StackPaths;
  readonly logger: Logger;
  private readonly javas = new Map<number, Promise<JavaRuntime>>();

  constructor(readonly o: StackOptions) {
    this.paths = stackPaths(o.home);
    this.logger = o.logger.child({ component: 'stack' });
  }

  java(minMajor: number, purpose: string): Promise<JavaRuntime> {
    let found = this.javas.get(minMajor);
    if (!found) {
      found = findJava(minMajor, purpose, {
        cacheDir: this.o.cacheDir,
        logger: this.logger,
        allowDownload: true,
        ...(this.o.javaHome ? { javaHome: this.o.javaHome } : {}),
      });
      // A failed lookup is not remembered: the next call may find a newly installed Java.
      found.catch(() => this.javas.delete(minMajor));
      this.javas.set(minMajor, found);
    }
    return found;
  }
}

function portOfUrl(url: string): number | null {
  try {
    const u = new URL(url);
    if (u.port) return Number(u.port);
    return u.protocol === 'https:' ? 443 : 80;
  } catch {
    return null;
  }
}

export function extraService(spec: ServiceSpec): ManagedService {
  const httpPort = spec.ready.http ? portOfUrl(spec.ready.http) : null;
  const ports = [...new Set([spec.ready.tcp, httpPort].filter((p): p is number => typeof p === 'number'))];
  return {
    name: spec.name,
    port: spec.ready.tcp ?? httpPort,
    ports,
    install: async () => {
      await spec.install?.();
    },
    launch: async () => ({
      command: spec.command,
      args: spec.args,
      ...(spec.env ? { env: spec.env } : {}),
      ...(spec.cwd ? { cwd: spec.cwd } : {}),
    }),
    ready: { ...spec.ready },
    stopSignal: spec.stopSignal ?? 'SIGTERM',
    stopGraceMs: spec.stopGraceMs ?? 15_000,
  };
}

import type { Logger } from '../core/logger.ts';

export interface StackOptions {
  /** State: data, logs, pid files. Must be reachable by an unprivileged user (postgres refuses root). */
  home: string;
  /** Downloads and unpacked tools, kept outside the repo and shared between homes. */
  cacheDir: string;
  kafka: {
    port: number;
    controllerPort: number;
    /**
     * More than one entry: a KRaft cluster of combined broker+controller nodes, each its own service
     * (`kafka-<nodeId>`) with its own ports and data, every one a voter of the quorum. Absent or one
     * entry: the single node `kafka` on `port` and `controllerPort`.
     */
    nodes?: readonly KafkaNode[];
  };
  /** The core services this stack runs, started in the order postgres, kafka, registry. Default: all three. */
  core?: readonly CoreService[];
  registry: { port: number; managementPort: number };
  postgres: { port: number; user: string; password: string; database: string };
  /** Per service. */
  readyTimeoutMs: number;
  logger: Logger;
  /** Started after the core services, stopped before them. */
  extraServices?: ServiceSpec[];
  /** OS user that owns and runs postgres when the stack runs as root. Default `personahub`. */
  systemUser?: string;
  /** A JDK or JRE home to try before the ones found on the machine. */
  javaHome?: string;
  /**
   * The setting that chose each port (e.g. 15432 from `PERSONAHUB_POSTGRES_PORT`), so a port clash can say
   * what to change; the stack itself does not know the configuration's names.
   */
  portSettings?: { port: number; setting: string }[];
}

export type CoreService = 'postgres' | 'kafka' | 'registry';

export interface KafkaNode {
  nodeId: number;
  port: number;
  controllerPort: number;
}

export interface ServiceSpec {
  name: string;
  install?(): Promise<void>;
  command: string;
  args: string[];
  env?: Record<string, string>;
  cwd?: string;
  /** Every condition given must hold. */
  ready: { http?: string; tcp?: number; logLine?: string };
  /** Default SIGTERM; SIGKILL follows after the grace period either way. */
  stopSignal?: NodeJS.Signals;
  stopGraceMs?: number;
}

export interface ServiceStatus {
  name: string;
  /** The recorded process is alive (pid and start time match, not a zombie). */
  running: boolean;
  /** Its health check passed just now. */
  ready: boolean;
  pid: number | null;
  port: number | null;
  logFile: string;
}

export interface StackStatus {
  services: ServiceStatus[];
  allReady: boolean;
}

export interface StackUrls {
  kafkaBrokers: string[];
  registryUrl: string;
  postgresUrl: string;
}

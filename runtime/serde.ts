import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { ConfluentSchemaRegistryValidationError } from '@kafkajs/confluent-schema-registry/dist/errors.js';
import avro from 'avsc';
import { events, KEY_SCHEMA, topicName, type EventName, type EventTypes } from '../topology/index.ts';
import { PersonaHubError } from '../core/errors.ts';
import type { Config } from '../config/index.ts';

const schemasDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'schemas');

export function readSchema(file: string): string {
  return readFileSync(join(schemasDir, file), 'utf8');
}

const stringType = avro.Type.forSchema('string');

/** Network-level failures, which the registry client reports as status 400 with the socket error in the message. */
const UNREACHABLE = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|ENOTFOUND|UND_ERR_SOCKET|socket hang up|other side closed|timeout/i;

/**
 * A registry call that failed: unreachable, overloaded, refusing our credentials or answering 5xx is the
 * registry's state (transient: waited out); a 404 or another 4xx is an answer about this schema (permanent).
 */
function registryFailure(cause: unknown, what: string, permanentCode: 'PH_SERDE_DECODE' | 'PH_SERDE_ENCODE'): SerdeError {
  const status = typeof cause === 'object' && cause !== null && 'status' in cause && typeof cause.status === 'number' ? cause.status : undefined;
  const message = cause instanceof Error ? cause.message : String(cause);
  const unavailable = status === undefined || status >= 500 || status === 429 || status === 408 || status === 401 || status === 403 || (status === 400 && UNREACHABLE.test(message));
  if (unavailable) return new SerdeError('PH_SERDE_REGISTRY_UNAVAILABLE', `${what}: the registry did not answer (${message})`, { cause, transient: true });
  return new SerdeError(permanentCode, `${what}: ${message}`, { cause });
}

const readerTypes = new Map<EventName, avro.Type>();

/** The event's own schema as an avsc Type (the reader side of schema resolution). */
function readerType(event: EventName): avro.Type {
  let type = readerTypes.get(event);
  if (!type) {
    type = avro.Type.forSchema(JSON.parse(readSchema(events[event].schema)) as avro.Schema);
    readerTypes.set(event, type);
  }
  return type;
}

export type SerdeErrorCode = 'PH_SERDE_DECODE' | 'PH_SERDE_ENCODE' | 'PH_SERDE_REGISTER' | 'PH_SERDE_REGISTRY_UNAVAILABLE' | 'PH_EVENT_TOO_LARGE' | 'PH_SERDE_INVALID_UTF8';

/** A write to the registry (a registration, a compatibility level) left unanswered this long is sent again, up to REGISTER_ATTEMPTS times in all. */
const REGISTER_TIMEOUT_MS = 10_000;
const REGISTER_ATTEMPTS = 3;
/** The pause before a write is sent again, times the attempt: a registry that hung up is given a moment. */
const REGISTER_BACKOFF_MS = 500;
/** Answers from a gateway in front of the registry, not from the registry: the write was not judged. */
const GATEWAY_STATUSES = new Set([502, 503, 504]);

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A request whose connection failed or was dropped before any answer: fetch wraps the socket error as its cause. */
function dropped(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 3; e = e.cause, depth += 1) {
    const code = 'code' in e && typeof e.code === 'string' ? e.code : '';
    if (UNREACHABLE.test(`${code} ${e.message}`)) return true;
  }
  return false;
}

export class SerdeError extends PersonaHubError {
  constructor(code: SerdeErrorCode, message: string, options: { cause?: unknown; transient?: boolean } = {}) {
    // A transient serde failure is always the registry not answering.
    super(code, message, { ...options, ...(options.transient ? { dependency: 'registry' as const } : {}) });
  }
}

/** What the runner needs of the serde: the registry-backed Serde in production, a fake in unit tests. */
export interface SerdePort {
  /** `key`, when given, counts towards the event size bound with the value (PERSONAHUB_MAX_EVENT_BYTES). */
  decode<E extends EventName>(event: E, bytes: Buffer | null, key?: Buffer | null): Promise<EventTypes[E]>;
  decodeKey(bytes: Buffer | null): Promise<string | null>;
  encodeKey(event: EventName, key: string): Promise<Buffer>;
  encodeValue(event: EventName, value: unknown): Promise<Buffer>;
}

/** PERSONAHUB_MAX_EVENT_BYTES' default, for a Serde built without the setting. */
export const DEFAULT_MAX_EVENT_BYTES = 1_000_000;

/** What a Serde is built with: the configuration's registry security keys and its event size bound. */
export type SerdeOptions = Partial<Pick<Config, 'registryCaFile' | 'registryUsername' | 'registryPassword' | 'maxEventBytes'>>;

/** U+FFFD, what a UTF-8 decoder puts where the bytes were not UTF-8 (avsc does so without a word). */
const REPLACEMENT = '\uFFFD';

/**
 * Where in a decoded value a string holds U+FFFD (a path like `text` or `traits[2]`), or undefined.
 * Walks records, arrays and maps; Buffers (Avro bytes and fixed) are not text and are skipped.
 */
export function replacementCharPath(value: unknown, path = ''): string | undefined {
  if (typeof value === 'string') return value.includes(REPLACEMENT) ? path || '(value)' : undefined;
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value)) return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i += 1) {
      const found = replacementCharPath(value[i], `${path}[${i}]`);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  for (const [name, field] of Object.entries(value)) {
    // A map's keys are Avro strings too.
    if (name.includes(REPLACEMENT)) return `${path}${path ? '.' : ''}${name}`;
    const found = replacementCharPath(field, `${path}${path ? '.' : ''}${name}`);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * Serialization belongs to the topic: one Serde per pipeline knows, for each event, the registry
 * ids of its key and value schemas (TopicNameStrategy subjects), and turns typed events into
 * Confluent wire-format bytes and back.
 */
export class Serde implements SerdePort {
  private readonly registry: SchemaRegistry;
  private readonly ids = new Map<string, number>();
  /** Writer-to-reader resolvers by event and writer schema id: a few entries, built once each. */
  private readonly resolvers = new Map<string, { reader: avro.Type; resolver: avro.Resolver; writer: avro.Type }>();
  /** Largest event (key and value bytes) decode accepts; larger is PH_EVENT_TOO_LARGE before any decoding. */
  private readonly maxEventBytes: number;

  /** Set with a CA file: the registry client and the raw REST calls both verify the registry's certificate with it. */
  private readonly agent: HttpsAgent | undefined;
  /** Headers of the raw REST calls: the content type, and basic auth when credentials are configured. */
  private readonly headers: Record<string, string>;

  /**
   * `options` takes the configuration's registry keys of the same names (the configuration checked them at
   * start: the CA file exists and goes with an https:// URL, username and secret come together) and its
   * event size bound (PERSONAHUB_MAX_EVENT_BYTES; DEFAULT_MAX_EVENT_BYTES when absent).
   */
  constructor(private readonly registryUrl: string, private readonly prefix: string, options: SerdeOptions = {}) {
    this.maxEventBytes = options.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
    this.agent = options.registryCaFile ? new HttpsAgent({ ca: readFileSync(options.registryCaFile, 'utf8') }) : undefined;
    const auth = options.registryUsername ? { username: options.registryUsername, password: options.registryPassword ?? '' } : undefined;
    this.registry = new SchemaRegistry({ host: registryUrl, ...(auth ? { auth } : {}), ...(this.agent ? { agent: this.agent } : {}) });
    this.headers = {
      'content-type': 'application/vnd.schemaregistry.v1+json',
      ...(auth ? { authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` } : {}),
    };
  }

  /**
   * fetch for the raw REST calls. Node's fetch takes no CA of its own, so with a CA file the request goes
   * through node:https and the client's agent instead; the caller gets a fetch Response either way.
   */
  private fetch(url: string, init: { method: string; headers: Record<string, string>; body: string; signal: AbortSignal }): Promise<Response> {
    const agent = this.agent;
    if (!agent) return fetch(url, init);
    return new Promise((resolve, reject) => {
      const request = httpsRequest(url, { method: init.method, headers: init.headers, agent, signal: init.signal }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => {
          const status = response.statusCode ?? 502;
          // A Response refuses a body with the statuses that cannot carry one.
          const body = [204, 205, 304].includes(status) ? null : Buffer.concat(chunks);
          resolve(new Response(body, { status, statusText: response.statusMessage ?? '' }));
        });
      });
      request.on('error', reject);
      request.end(init.body);
    });
  }

  /**
   * Registers key and value schemas for every topic, idempotently. Apicurio answers
   * GET /config/{subject} with NONE for subjects created elsewhere, and the client then refuses to
   * register under BACKWARD; setting the subject's compatibility first makes the call repeatable.
   */
  async registerAll(): Promise<Map<string, number>> {
    for (const event of Object.keys(events) as EventName[]) {
      const topic = topicName(this.prefix, event);
      for (const [suffix, file] of [['key', KEY_SCHEMA], ['value', events[event].schema]] as const) {
        const subject = `${topic}-${suffix}`;
        await this.setCompatibility(subject, 'BACKWARD');
        try {
          const schema = readSchema(file);
          // Through the REST API with a deadline: the registry client sets no request timeout, and Apicurio now
          // and then leaves a registration unanswered (logged as 200, never written: about 1 in 75 in a stress
          // loop), which hung `topics init`. Registering the same schema again is idempotent.
          const id = await this.registerRaw(subject, schema);
          this.ids.set(subject, id);
        } catch (cause) {
          throw new SerdeError('PH_SERDE_REGISTER', `registering ${file} as ${subject} at ${this.registryUrl} failed: ${(cause as Error).message}`, { cause });
        }
      }
    }
    return this.ids;
  }

  private async registerRaw(subject: string, schema: string): Promise<number> {
    const response = await this.write(`${this.registryUrl}/subjects/${encodeURIComponent(subject)}/versions`, 'POST',
      JSON.stringify({ schema: JSON.stringify(JSON.parse(schema)), schemaType: 'AVRO' }));
    if (!response.ok) throw new Error(`HTTP ${response.status} ${await response.text()}`);
    return ((await response.json()) as { id: number }).id;
  }

  private async setCompatibility(subject: string, level: 'BACKWARD'): Promise<void> {
    const response = await this.write(`${this.registryUrl}/config/${encodeURIComponent(subject)}`, 'PUT', JSON.stringify({ compatibility: level }));
    if (!response.ok) throw new SerdeError('PH_SERDE_REGISTER', `setting ${level} on ${subject} failed: HTTP ${response.status} ${await response.text()}`);
  }

  /**
   * One idempotent write to the registry, with a deadline of REGISTER_TIMEOUT_MS, sent again up to
   * REGISTER_ATTEMPTS times in all when it met the registry's passing state rather than an answer about
   * it: left unanswered (judged by the deadline's signal, not the error's name: fetch raises a
   * TimeoutError, node:https, the path with a CA file, an AbortError), the connection dropped without an
   * answer (Apicurio now and then hangs up on a write), or a gateway in front saying the registry is
   * not there (502, 503, 504). Any other answer, a refusal included, is returned as it is.
   */
  private async write(url: string, method: 'POST' | 'PUT', body: string): Promise<Response> {
    for (let attempt = 1; ; attempt += 1) {
      const signal = AbortSignal.timeout(REGISTER_TIMEOUT_MS);
      let response: Response;
      try {
        const answer = await this.fetch(url, { method, headers: this.headers, body, signal });
        // The body is read here, under the same deadline, so an answer cut off midway is sent again too.
        const text = await answer.text();
        response = new Response([204, 205, 304].includes(answer.status) ? null : text, { status: answer.status, statusText: answer.statusText });
      } catch (error) {
        if (attempt >= REGISTER_ATTEMPTS || !(signal.aborted || dropped(error))) throw error;
        await sleep(REGISTER_BACKOFF_MS * attempt);
        continue;
      }
      if (attempt >= REGISTER_ATTEMPTS || !GATEWAY_STATUSES.has(response.status)) return response;
      await sleep(REGISTER_BACKOFF_MS * attempt);
    }
  }

  /** Looks up the ids of schemas registered by `topics init`; processors never register. */
  private async idFor(subject: string): Promise<number> {
    let id = this.ids.get(subject);
    if (id === undefined) {
      try {
        id = await this.registry.getLatestSchemaId(subject);
      } catch (cause) {
        const failure = registryFailure(cause, `looking up the schema of ${subject} at ${this.registryUrl}`, 'PH_SERDE_ENCODE');
        // A subject the registry does not know is a deployment that skipped `topics init`, not a poison
        // event: waited out like an outage, with a message that says what to do.
        if (failure.transient) throw failure;
        throw new SerdeError('PH_SERDE_ENCODE', `no schema registered for ${subject}: run \`personahub topics init\` (${(cause as Error).message})`, { cause, transient: true });
      }
      this.ids.set(subject, id);
    }
    return id;
  }

  /** Confluent wire format by hand (magic 0, schema id, Avro string), for the same reason as registerRaw. */
  async encodeKey(event: EventName, key: string): Promise<Buffer> {
    const header = Buffer.alloc(5);
    header.writeUInt32BE(await this.idFor(`${topicName(this.prefix, event)}-key`), 1);
    return Buffer.concat([header, stringType.toBuffer(key)]);
  }

  /** The registry's encoder validates the value against the schema, so a wrong shape fails here, typed or not. */
  async encodeValue(event: EventName, value: unknown): Promise<Buffer> {
    const id = await this.idFor(`${topicName(this.prefix, event)}-value`);
    try {
      return await this.registry.encode(id, value);
    } catch (cause) {
      // The client fetches the schema on first use: a failure there is the registry's, not the value's.
      if (!(cause instanceof ConfluentSchemaRegistryValidationError)) throw registryFailure(cause, `fetching schema id ${id} to encode ${event}`, 'PH_SERDE_ENCODE');
      throw new SerdeError('PH_SERDE_ENCODE', `value does not match the ${event} schema: ${(cause as Error).message}`, { cause });
    }
  }

  /**
   * Decodes Confluent-framed Avro bytes as the event the caller expects: the writer's schema (looked up
   * by the id in the frame) is resolved into this event's own schema, the one its TypeScript type is
   * generated from, so the value has that type by construction, and bytes written with a schema that
   * cannot be read as this event are refused instead of passed on mistyped.
   *
   * Two more refusals, both permanent (poison, not an outage):
   * - PH_EVENT_TOO_LARGE: key and value together above PERSONAHUB_MAX_EVENT_BYTES, checked before anything
   *   is decoded or looked up. DLQ records are exempt: they carry such events whole, to be replayed.
   * - PH_SERDE_INVALID_UTF8: an Avro string whose bytes are not UTF-8. avsc decodes those into U+FFFD
   *   without a word, so a value holding U+FFFD is re-encoded with the writer's schema and compared with
   *   the payload: a legitimate U+FFFD re-encodes to the same bytes, a replaced byte sequence does not.
   *   Values without U+FFFD (nearly all) cost one walk over their strings and nothing else.
   */
  async decode<E extends EventName>(event: E, bytes: Buffer | null, key?: Buffer | null): Promise<EventTypes[E]> {
    if (bytes && event !== 'dlq') {
      const size = bytes.length + (key?.length ?? 0);
      if (size > this.maxEventBytes) throw new SerdeError('PH_EVENT_TOO_LARGE', `${event} event of ${size} bytes (key and value) is larger than PERSONAHUB_MAX_EVENT_BYTES=${this.maxEventBytes}`);
    }
    if (!bytes || bytes.length < 5 || bytes[0] !== 0) throw new SerdeError('PH_SERDE_DECODE', `not Confluent-framed Avro (${bytes ? `${bytes.length} bytes, first byte ${bytes[0]}` : 'null value'})`);
    const id = bytes.readUInt32BE(1);
    const { reader, resolver, writer } = await this.resolverFor(event, id);
    const payload = bytes.subarray(5);
    let value: EventTypes[E];
    try {
      value = reader.fromBuffer(payload, resolver);
    } catch (cause) {
      throw new SerdeError('PH_SERDE_DECODE', `cannot decode ${bytes.length} bytes as ${event} (schema id ${id}): ${(cause as Error).message}`, { cause });
    }
    const path = replacementCharPath(value);
    if (path !== undefined && !this.reencodesIdentically(writer, payload)) {
      throw new SerdeError('PH_SERDE_INVALID_UTF8', `${event} (schema id ${id}): a string is not valid UTF-8 (first U+FFFD at ${path}; the bytes do not re-encode to the payload)`);
    }
    return value;
  }

  /** True when the payload, decoded and re-encoded with the writer's own schema, gives back the same bytes. */
  private reencodesIdentically(writer: avro.Type, payload: Buffer): boolean {
    try {
      return writer.toBuffer(writer.fromBuffer(payload)).equals(payload);
    } catch {
      return false;
    }
  }

  private async resolverFor(event: EventName, id: number): Promise<{ reader: avro.Type; resolver: avro.Resolver; writer: avro.Type }> {
    const cacheKey = `${event}:${id}`;
    const cached = this.resolvers.get(cacheKey);
    if (cached) return cached;
    let writer;
    try {
      writer = await this.registry.getSchema(id);
    } catch (cause) {
      throw registryFailure(cause, `looking up schema id ${id} at ${this.registryUrl}`, 'PH_SERDE_DECODE');
    }
    // The registry client builds its schemas with the same avsc (one copy in the lockfile), so a Type it is.
    if (!(writer instanceof avro.Type)) throw new SerdeError('PH_SERDE_DECODE', `schema id ${id} is not an Avro schema`);
    const reader = readerType(event);
    let resolver: avro.Resolver;
    try {
      resolver = reader.createResolver(writer);
    } catch (cause) {
      throw new SerdeError('PH_SERDE_DECODE', `schema id ${id} cannot be read as ${event} (${events[event].schema}): ${(cause as Error).message}`, { cause });
    }
    const entry = { reader, resolver, writer };
    this.resolvers.set(cacheKey, entry);
    return entry;
  }

  async decodeKey(bytes: Buffer | null): Promise<string | null> {
    if (!bytes) return null;
    if (bytes.length >= 5 && bytes[0] === 0) {
      try {
        return stringType.fromBuffer(bytes.subarray(5)) as string;
      } catch {
        // A key that is not ours still identifies the record in the DLQ; fall through to raw text.
      }
    }
    return bytes.toString('utf8');
  }
}

import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { PoolClient } from 'pg';
import type { Config } from '../config/index.ts';
import { maskUrl } from '../core/secrets.ts';
import { StoreError, type Query, type SqlClient, type Store } from './index.ts';
import { SqlStore } from './sql-store.ts';

/** Opens the configured store: a PostgreSQL server (pg pool) or embedded PGlite, same SQL either way. */
export async function openStore(config: Pick<Config, 'store' | 'databaseUrl' | 'pgliteDir' | 'embeddingDimensions' | 'databaseSsl' | 'databaseSslCaFile'>): Promise<SqlStore> {
  const client = config.store === 'postgres' ? await openPostgresClient(config.databaseUrl, postgresTls(config)) : await pgliteClient(config.pgliteDir);
  return new SqlStore(config.store, client, config.embeddingDimensions);
}

/**
 * pg's `ssl` option for PERSONAHUB_DATABASE_SSL, as libpq reads the same modes: `require` encrypts without
 * checking the certificate, unless a CA file is given (then the chain is checked, the host name not);
 * `verify-full` checks both, against the CA file or Node's built-in CAs. `disable` passes nothing, so an
 * `sslmode` in the URL keeps working as before (the configuration refuses it beside the other two).
 */
export function postgresTls(config: Pick<Config, 'databaseSsl' | 'databaseSslCaFile'>): ConnectionOptions | undefined {
  if (config.databaseSsl === 'disable') return undefined;
  const ca = config.databaseSslCaFile ? readFileSync(config.databaseSslCaFile, 'utf8') : undefined;
  if (config.databaseSsl === 'verify-full') return { rejectUnauthorized: true, ...(ca ? { ca } : {}) };
  return ca ? { rejectUnauthorized: true, ca, checkServerIdentity: () => undefined } : { rejectUnauthorized: false };
}

/** Node socket errors that mean the server could not be reached or dropped the connection. */
const CONNECTION_ERRNOS: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);
/**
 * SQLSTATEs that say "not now" rather than "not this": admin shutdown, crash shutdown, cannot connect
 * now (a restart), and the two a retry of the same statement resolves (serialization, deadlock).
 */
const TRANSIENT_SQLSTATES: ReadonlySet<string> = new Set(['57P01', '57P02', '57P03', '40001', '40P01']);
/** SQLSTATE classes: 08 connection exception, 53 insufficient resources (too many connections, disk full, out of memory). */
const TRANSIENT_SQLSTATE_CLASSES = ['08', '53'] as const;
/** What pg and pg-pool throw, with no code, when a connection breaks or a pool connect times out. */
const CONNECTION_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|encountered a connection error and is not queryable/i;

function codeOf(error: unknown): string | undefined {
  const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
  return typeof code === 'string' ? code : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Whether `error` says the database is unreachable or refuses for now, so waiting and retrying can succeed. */
export function isTransientStoreFailure(error: unknown): boolean {
  if (error instanceof StoreError) return error.transient;
  const code = codeOf(error);
  if (code !== undefined) {
    if (CONNECTION_ERRNOS.has(code) || TRANSIENT_SQLSTATES.has(code)) return true;
    if (/^[0-9A-Z]{5}$/.test(code) && TRANSIENT_SQLSTATE_CLASSES.some((c) => code.startsWith(c))) return true;
  }
  // Node reports a failed connect to a name with several addresses (localhost: ::1 and 127.0.0.1) as
  // an AggregateError of one socket error per address.
  if (error instanceof AggregateError && error.errors.some(isTransientStoreFailure)) return true;
  return CONNECTION_MESSAGES.test(messageOf(error));
}

/**
 * The one place a database failure becomes a coded error. `target` names the database without
 * credentials (a masked URL, or "PGlite"); `sql` is the statement, of which only the start is quoted.
 * Messages are masked once more, since a driver may quote a connection string back.
 */
export function classifyStoreError(error: unknown, target: string, sql?: string): StoreError {
  if (error instanceof StoreError) return error;
  const code = codeOf(error);
  const detail = maskUrl(`${messageOf(error)}${code ? ` (${code})` : ''}`);
  if (isTransientStoreFailure(error)) {
    return new StoreError('PH_STORE_UNAVAILABLE', `database ${target} is unavailable: ${detail}`, { transient: true, cause: error });
  }
  const statement = sql === undefined ? '' : ` in "${sql.replace(/\s+/g, ' ').trim().slice(0, 80)}"`;
  return new StoreError('PH_STORE_QUERY', `query failed on ${target}${statement}: ${detail}`, { cause: error });
}

/** How long the server lets a session sit idle inside a transaction before ending it (see openPostgresClient). */
const IDLE_IN_TRANSACTION_MS = 60_000;

/** A lost CREATE DATABASE race: 42P04 duplicate_database, or 23505 when both inserted into pg_database at once. */
const DATABASE_EXISTS: ReadonlySet<string> = new Set(['42P04', '23505']);

/**
 * A pool on the PostgreSQL server at `url`, creating the database first if it does not exist. Every
 * failed query or connect rejects with a classified StoreError (see classifyStoreError).
 */
export async function openPostgresClient(url: string, ssl?: ConnectionOptions, o: { idleInTransactionMs?: number } = {}): Promise<SqlClient> {
  const { default: pg } = await import('pg');
  const target = maskUrl(url);
  const pool = new pg.Pool({
    connectionString: url, max: 4, connectionTimeoutMillis: 10_000, ...(ssl ? { ssl } : {}),
    // A session that stops talking in the middle of a transaction (its process frozen, its answer lost
    // on the way) would keep the transaction's locks, the near-duplicate claim's advisory locks among
    // them, and every other instance deciding those band keys would wait for it forever. The server
    // ends such a session; its client then fails its next statement as a broken connection (transient,
    // retried). No transaction of the store waits on anything but its own statements, so an idle
    // minute inside one is never legitimate.
    idle_in_transaction_session_timeout: o.idleInTransactionMs ?? IDLE_IN_TRANSACTION_MS,
    // A server that vanished without closing its connections (a host lost, a network partition) is
    // found by TCP keepalive instead of being waited on for ever.
    keepAlive: true,
  });
  // An idle client dropped by the server (restart, admin command) must not crash the process: the
  // pool discards it (as it does a client whose query failed on a broken connection) and connects
  // anew for the next query, so the pool is usable again as soon as the server is.
  pool.on('error', () => {});

  const createDatabase = async (): Promise<void> => {
    const admin = new URL(url);
    const name = decodeURIComponent(admin.pathname.slice(1));
    admin.pathname = '/postgres';
    const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 10_000, ...(ssl ? { ssl } : {}) });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
    } catch (error) {
      // Several instances starting at once all find the database missing and all create it: the
      // first one wins and for the others it now exists, which is all they wanted.
      if (!DATABASE_EXISTS.has(codeOf(error) ?? '')) throw error;
    } finally {
      await client.end().catch(() => {});
    }
  };

  try {
    await pool.query('SELECT 1').catch(async (error: unknown) => {
      // 3D000: the database does not exist. One database per embedding space is the way to try another
      // model, so create it (the local stack's role may) rather than make the user do it by hand.
      if (codeOf(error) !== '3D000') throw error;
      await createDatabase();
      await pool.query('SELECT 1');
    });
  } catch (cause) {
    await pool.end().catch(() => {});
    const classified = classifyStoreError(cause, target);
    const hint = classified.transient ? ' (is the stack up? `personahub stack up`)' : '';
    throw new StoreError(classified.transient ? 'PH_STORE_UNAVAILABLE' : 'PH_STORE_CONNECT',
      `cannot open the store at ${target}: ${maskUrl(messageOf(cause))}${hint}`, { cause, transient: classified.transient });
  }

  /**
   * A client of the pool's own, for statements that must share a session. The pool listens for a
   * client's errors only while it is idle (pool.query listens during its one query): a connection that
   * drops between two statements of a checked-out client emits 'error' with nobody listening, which
   * kills the process (a stage crashed so when PostgreSQL restarted mid-transaction). The error is
   * delivered all the same, to the statement in flight or the next one, so the listener only keeps the
   * process alive. It goes when the client goes back to the pool (which listens again); a client
   * released to be destroyed keeps it, since its ending may still report an error.
   */
  const checkout = async (): Promise<PoolClient> => {
    const client = await pool.connect().catch((error: unknown) => {
      throw classifyStoreError(error, target);
    });
    const ignore = () => {};
    client.on('error', ignore);
    const release = client.release.bind(client);
    client.release = (destroy?: Error | boolean) => {
      if (!destroy) client.off('error', ignore);
      release(destroy);
    };
    return client;
  };

  return {
    async query<T extends object>(sql: string, params?: unknown[]) {
      try {
        return (await pool.query(sql, params)).rows as T[];
      } catch (error) {
        throw classifyStoreError(error, target, sql);
      }
    },
    async exclusive(lock, statements) {
      const client = await checkout();
      let current = 'SELECT pg_advisory_lock($1::bigint)';
      try {
        // Session-level and on this one connection, so every statement runs while it is held.
        await client.query(current, [lock.toString()]);
        for (const statement of statements) {
          current = statement;
          await client.query(statement);
        }
        current = 'SELECT pg_advisory_unlock($1::bigint)';
        await client.query(current, [lock.toString()]);
      } catch (error) {
        // Ending the session releases its advisory lock whatever state the failure left it in, so
        // the connection is discarded rather than returned to the pool still holding it.
        client.release(true);
        throw classifyStoreError(error, target, current);
      }
      client.release();
    },
    async transaction(work) {
      const client = await checkout();
      const query: Query = async <T extends object>(sql: string, params?: unknown[]) => {
        try {
          return (await client.query(sql, params)).rows as T[];
        } catch (error) {
          throw classifyStoreError(error, target, sql);
        }
      };
      try {
        await query('BEGIN');
        const result = await work(query);
        await query('COMMIT');
        client.release();
        return result;
      } catch (error) {
        // A connection that failed mid-transaction may be broken or still inside it: discard it rather
        // than hand it to the next query (ending the session rolls back and releases its locks).
        await client.query('ROLLBACK').catch(() => {});
        client.release(true);
        throw error;
      }
    },
    close: () => pool.end(),
  };
}

export async function pgliteClient(dataDir: string): Promise<SqlClient> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { vector } = await import('@electric-sql/pglite/vector');
  // One options object: PGlite.create(dataDir, {extensions}) silently drops the extension in 0.4.x.
  const db = await PGlite.create({ dataDir, extensions: { vector } });
  const query = async <T extends object>(sql: string, params?: unknown[]): Promise<T[]> => {
    try {
      return (await db.query<T>(sql, params)).rows;
    } catch (error) {
      throw classifyStoreError(error, 'PGlite', sql);
    }
  };
  return {
    query,
    // One backend, in this process only: no other session's DDL can race these in the catalog, so no lock.
    async exclusive(_lock, statements) {
      for (const statement of statements) await query(statement);
    },
    // PGlite runs one transaction at a time, so callers of this process take turns here too.
    transaction: (work) => db.transaction(async (tx) => work(async <T extends object>(sql: string, params?: unknown[]) => {
      try {
        return (await tx.query<T>(sql, params)).rows;
      } catch (error) {
        throw classifyStoreError(error, 'PGlite', sql);
      }
    })),
    close: () => db.close(),
  };
}

import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../config/index.ts';
import { classifyStoreError, openPostgresClient, openStore } from '../../../store/open.ts';
import { StoreError, type SqlClient, type Store } from '../../../store/index.ts';
import { samplePersona } from '../../helpers/samples.ts';

/**
 * What only the PostgreSQL server store has: other processes (racing to create and migrate one
 * database), a network between it and us (outages, classified errors), and databases that were
 * created by an older version of the schema.
 */
const base = loadConfig();
const databases: string[] = [];
const newDatabase = (): { name: string; url: string } => {
  const name = `storepg_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  databases.push(name);
  return { name, url: base.databaseUrl.replace(/\/[^/]+$/, `/${name}`) };
};
const admin = new pg.Client(base.databaseUrl);

beforeAll(async () => {
  await admin.connect();
});

afterAll(async () => {
  for (const name of databases) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
});

/** A loopback port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(() => {
    throw new Error('expected a rejection');
  }, (error: unknown) => error);
}

describe('postgres store: errors are classified', () => {
  it('a server that is not there is PH_STORE_UNAVAILABLE, transient, with no credentials in the message', async () => {
    const port = await closedPort();
    const error = await rejection(openStore({ ...base, store: 'postgres', databaseUrl: `postgres://someone:s3cret-pw@127.0.0.1:${port}/nowhere` }));
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ code: 'PH_STORE_UNAVAILABLE', transient: true, dependency: 'store' });
    const message = (error as Error).message;
    expect(message).toContain(`127.0.0.1:${port}/nowhere`);
    expect(message).toContain('ECONNREFUSED');
    expect(message).not.toContain('s3cret-pw');
    expect(message).not.toContain('someone');
  });

  it('a bad statement is PH_STORE_QUERY, permanent, naming the statement', async () => {
    const { url } = newDatabase();
    const client = await openPostgresClient(url);
    try {
      const error = await rejection(client.query('SELEC 1'));
      expect(error).toMatchObject({ code: 'PH_STORE_QUERY', transient: false, dependency: undefined });
      expect((error as Error).message).toMatch(/syntax error.*\(42601\)/);
      expect((error as Error).message).toContain('"SELEC 1"');
      expect(((error as Error).cause as { code?: string }).code).toBe('42601');
      // A missing table is the statement's fault too.
      await expect(client.query('SELECT * FROM no_such_table')).rejects.toMatchObject({ code: 'PH_STORE_QUERY', transient: false });
    } finally {
      await client.close();
    }
  });

  it('classifies connection-class failures as transient and every other failure as permanent', () => {
    const sqlState = (code: string) => Object.assign(new Error(`sqlstate ${code}`), { code });
    const transient: unknown[] = [
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }),
      Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }),
      Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }),
      Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }),
      new Error('Connection terminated unexpectedly'),
      new Error('Connection terminated due to connection timeout'),
      new Error('timeout exceeded when trying to connect'),
      new AggregateError([Object.assign(new Error('connect ECONNREFUSED ::1:5432'), { code: 'ECONNREFUSED' })], 'all addresses failed'),
      ...['08000', '08006', '08001', '57P01', '57P02', '57P03', '53300', '53100', '53200', '40001', '40P01'].map(sqlState),
    ];
    for (const error of transient) {
      const classified = classifyStoreError(error, 'postgres://***@db/x', 'SELECT 1');
      expect(classified, String(error)).toMatchObject({ code: 'PH_STORE_UNAVAILABLE', transient: true, dependency: 'store' });
      expect(classified.cause).toBe(error);
    }
    const permanent: unknown[] = [
      ...['42601', '42P01', '23505', '22000', '22P02', '28P01', '57014', '42501'].map(sqlState),
      new Error('something else'),
      'a string',
    ];
    for (const error of permanent) {
      expect(classifyStoreError(error, 'postgres://***@db/x', 'SELECT 1'), String(error)).toMatchObject({ code: 'PH_STORE_QUERY', transient: false, dependency: undefined });
    }
    // A driver quoting a connection string back does not leak its password.
    const quoted = classifyStoreError(new Error('could not parse postgres://user:hunter2@db:5432/x'), 'db');
    expect(quoted.message).not.toContain('hunter2');
    // Already classified: passed through as is, not wrapped twice.
    const once = classifyStoreError(sqlState('08006'), 'db');
    expect(classifyStoreError(once, 'db')).toBe(once);
  });
});

describe('postgres store: a dropped connection', () => {
  const { name, url } = newDatabase();
  let client: SqlClient;
  beforeAll(async () => {
    client = await openPostgresClient(url);
  });
  afterAll(async () => client?.close());

  const terminateBackends = async (filter = ''): Promise<number> => {
    const r = await admin.query<{ n: string }>(
      `SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() ${filter}`, [name]);
    return Number(r.rows[0]?.n ?? 0);
  };

  it('fails the query in flight as PH_STORE_UNAVAILABLE (transient) and the pool serves the next one', async () => {
    const inFlight = rejection(client.query('SELECT pg_sleep(60) AS slept'));
    // Wait until the statement is running on the server, then end its session as a server shutdown would.
    for (let killed = 0; killed === 0;) {
      killed = await terminateBackends(`AND query LIKE 'SELECT pg_sleep(60)%'`);
      if (killed === 0) await new Promise((r) => setTimeout(r, 50));
    }
    const error = await inFlight;
    expect(error).toMatchObject({ code: 'PH_STORE_UNAVAILABLE', transient: true, dependency: 'store' });
    expect(await client.query<{ one: number }>('SELECT 1 AS one')).toEqual([{ one: 1 }]);
  });

  it('fails a transaction whose connection dropped between two statements as PH_STORE_UNAVAILABLE, and lives on', async () => {
    // The session ends while the transaction holds its client and no statement is in flight: the client
    // then reports the drop as an 'error' event, which killed the process when nobody listened.
    const failed = rejection(client.transaction(async (query) => {
      const [own] = await query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      expect(await terminateBackends(`AND pid = ${Number(own?.pid)}`)).toBe(1);
      while ((await admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [own?.pid])).rowCount !== 0) await new Promise((r) => setTimeout(r, 50));
      // The client has read the server's goodbye (or the socket's end) once a round trip of its own would have.
      await admin.query('SELECT 1');
      await new Promise((r) => setTimeout(r, 200));
      return query('SELECT 1');
    }));
    expect(await failed).toMatchObject({ code: 'PH_STORE_UNAVAILABLE', transient: true, dependency: 'store' });
    expect(await client.query<{ one: number }>('SELECT 1 AS one')).toEqual([{ one: 1 }]);
  });

  it('replaces idle connections the server ended (as after a restart) on the next query', async () => {
    // Several idle connections in the pool, then every one of them ended by the server.
    await Promise.all(Array.from({ length: 4 }, () => client.query('SELECT pg_sleep(0.05)')));
    expect(await terminateBackends()).toBeGreaterThan(0);
    // pg_terminate_backend only signals: wait until the server has ended those sessions, as a restart would have.
    while ((await admin.query('SELECT 1 FROM pg_stat_activity WHERE datname = $1', [name])).rowCount !== 0) await new Promise((r) => setTimeout(r, 50));
    const rows = await Promise.all(Array.from({ length: 4 }, (_, i) => client.query<{ n: number }>('SELECT $1::int AS n', [i])));
    expect(rows.map((r) => r[0]?.n)).toEqual([0, 1, 2, 3]);
  });
});

describe('postgres store: a session stuck inside a transaction', () => {
  it('is ended by the server, so its locks go to the session waiting for them and its own next statement fails as transient', async () => {
    const { url } = newDatabase();
    const stuck = await openPostgresClient(url, undefined, { idleInTransactionMs: 500 });
    const waiter = new pg.Client(url);
    try {
      await waiter.connect();
      let locked!: () => void;
      let taken!: () => void;
      const lockHeld = new Promise<void>((r) => (locked = r));
      const lockTaken = new Promise<void>((r) => (taken = r));
      const failed = rejection(stuck.transaction(async (query) => {
        await query('SELECT pg_advisory_xact_lock(7)');
        locked();
        // The transaction goes quiet until the other session has its lock, which it can only get once
        // the server has ended this session: nothing here depends on how long anything takes.
        await lockTaken;
        return query('SELECT 1');
      }));
      await lockHeld;
      await waiter.query('SELECT pg_advisory_lock(7)');
      taken();
      expect(await failed).toMatchObject({ code: 'PH_STORE_UNAVAILABLE', transient: true, dependency: 'store' });
      expect(await stuck.query<{ one: number }>('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    } finally {
      await waiter.end();
      await stuck.close();
    }
  });
});

describe('postgres store: several instances starting at once against a new database', () => {
  it('all create it, migrate it and use it; the migration lock is released afterwards', async () => {
    const { name, url } = newDatabase();
    // Five stores, five pools: the same races as five processes, CREATE DATABASE and the catalog's.
    const stores = await Promise.all(Array.from({ length: 5 }, () => openStore({ ...base, store: 'postgres', databaseUrl: url })));
    try {
      await Promise.all(stores.map((s) => s.migrate()));
      const outcomes = await Promise.all(stores.map((s, i) => s.claimInputs('draft', [{ identity: 'same-seed', delivery: `seed:${i}:1` }])));
      expect(new Set(outcomes.map((o) => o.get('same-seed'))).size).toBe(1);
      const locks = await admin.query(`SELECT 1 FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE l.locktype = 'advisory' AND d.datname = $1`, [name]);
      expect(locks.rowCount).toBe(0);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it('a failed exclusive run gives its lock back', async () => {
    const { url } = newDatabase();
    const client = await openPostgresClient(url);
    const other = new pg.Client(url);
    try {
      await expect(client.exclusive(42n, ['CREATE TABLE t (a int)', 'NOT SQL'])).rejects.toMatchObject({ code: 'PH_STORE_QUERY', transient: false });
      // Another session gets lock 42: it waits while the failed run's session still holds it (ending
      // a session is asynchronous), and fails on lock_timeout if that session lived on in the pool
      // (the pool would only close it after its 10 s idle timeout, hence a bound below that).
      await other.connect();
      await other.query(`SET lock_timeout = '5s'`);
      await other.query('SELECT pg_advisory_lock(42)');
      await other.query('SELECT pg_advisory_unlock(42)');
      await client.exclusive(42n, ['CREATE TABLE IF NOT EXISTS t (a int)', 'INSERT INTO t VALUES (1)']);
      expect(await client.query('SELECT a FROM t')).toEqual([{ a: 1 }]);
      // A run that succeeded unlocked too.
      expect((await other.query<{ got: boolean }>('SELECT pg_try_advisory_lock(42) AS got')).rows).toEqual([{ got: true }]);
    } finally {
      await other.end();
      await client.close();
    }
  });
});

describe('postgres store: a database created by an earlier schema', () => {
  const { url } = newDatabase();
  let store: Store;
  afterAll(async () => store?.close());

  it('gains the new columns and table on migrate, and its rows upsert as before', async () => {
    const p = { ...samplePersona(), id: 'old'.padEnd(32, '0'), validation: { textHash: 'o', checks: [], repaired: [], validatedAt: 1 } };
    // Build the earlier schema: today's, less what this version added, with a row written before.
    store = await openStore({ ...base, store: 'postgres', databaseUrl: url });
    await store.migrate();
    expect(await store.upsertPersona(p, 'validated:0:1')).toBe('INSERTED');
    const db = new pg.Client(url);
    await db.connect();
    try {
      await db.query('ALTER TABLE personas DROP COLUMN last_delivery, DROP COLUMN last_outcome');
      await db.query('DROP TABLE input_claims');
      await store.migrate();
      const columns = await db.query<{ column_name: string }>(`SELECT column_name FROM information_schema.columns WHERE table_name = 'personas' AND column_name LIKE 'last_%' ORDER BY 1`);
      expect(columns.rows.map((r) => r.column_name)).toEqual(['last_delivery', 'last_outcome']);
    } finally {
      await db.end();
    }
    // The old row knows no delivery: any delivery finds it unchanged; a newer version updates it.
    expect(await store.upsertPersona(p, 'validated:0:1')).toBe('UNCHANGED');
    expect(await store.upsertPersona({ ...p, version: 2 }, 'validated:0:2')).toBe('UPDATED');
    expect(await store.upsertPersona({ ...p, version: 2 }, 'validated:0:2')).toBe('UPDATED');
    expect(await store.claimInputs('index', [{ identity: p.id, delivery: 'validated:0:2' }])).toEqual(new Map([[p.id, 'validated:0:2']]));
  });
});

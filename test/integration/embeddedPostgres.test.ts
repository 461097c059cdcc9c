// The embedded server and how processes find it: start in an empty data directory, announce it in
// connection.json, reuse an announced server, restart on an initialised cluster, recover from a
// crashed run's leftovers, and explain a failed start with the server's own output.

import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isProcessAlive, livePostmasterPid, startEmbeddedPostgres } from '../../src/db/embeddedPostgres.ts';
import { connectionFile, defaultDataDir, openDatabase, readAnnouncement } from '../../src/db/openDatabase.ts';
import { DatabaseUnavailableError } from '../../src/errors.ts';

/** A logger whose messages the test can read. */
function recordingLogger() {
  const messages: string[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => messages.push((JSON.parse(line) as { msg: string }).msg) },
  );
  return { logger, messages };
}

async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
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

async function query(url: string, text: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text)).rows;
  } finally {
    await client.end();
  }
}

/** The pid of a process that has certainly exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
  return Number.parseInt(child.stdout.trim(), 10);
}

describe('embedded PostgreSQL', () => {
  let dataDir: string;
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'leasehold-pg-'));
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
    await rm(dataDir, { recursive: true, force: true });
  });

  it('starts in an empty data directory, is found by a second process, and stops with its owner', async () => {
    const { logger } = recordingLogger();
    const owner = await openDatabase({ dataDir, logger });
    cleanups.push(() => owner.close());
    expect(owner.embedded).toBe(true);
    expect(await query(owner.connectionString, 'SELECT current_database() AS db')).toEqual([
      { db: 'leasehold' },
    ]);

    const file = connectionFile(dataDir);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readAnnouncement(file)).toMatchObject({ url: owner.connectionString, pid: process.pid });

    const guest = await openDatabase({ dataDir, logger });
    expect(guest).toMatchObject({ connectionString: owner.connectionString, embedded: true });
    await guest.close();
    expect(await answers(owner.connectionString)).toBe(true);

    await owner.close();
    expect(await answers(owner.connectionString)).toBe(false);
    expect(await readAnnouncement(file)).toBeNull();
    expect(await livePostmasterPid(dataDir)).toBeNull();
  });

  it('restarts on an initialised cluster without initialising it again', async () => {
    const first = recordingLogger();
    const server = await startEmbeddedPostgres({ dataDir, logger: first.logger });
    cleanups.push(() => server.stop());
    await query(server.connectionString, 'CREATE TABLE survivor (id int); INSERT INTO survivor VALUES (42)');
    await server.stop();
    expect(first.messages).toContain('initialising embedded PostgreSQL cluster');

    const second = recordingLogger();
    const again = await startEmbeddedPostgres({ dataDir, logger: second.logger });
    cleanups.push(() => again.stop());
    expect(second.messages).not.toContain('initialising embedded PostgreSQL cluster');
    expect(await query(again.connectionString, 'SELECT id FROM survivor')).toEqual([{ id: 42 }]);
  });

  it('uses the given database URL without starting anything', async () => {
    const { logger } = recordingLogger();
    const database = await openDatabase({ databaseUrl: 'postgres://example.invalid/db', dataDir, logger });
    expect(database).toMatchObject({ connectionString: 'postgres://example.invalid/db', embedded: false });
    await database.close();
    expect(await readAnnouncement(connectionFile(dataDir))).toBeNull();
  });

  it('removes a stale postmaster.pid left by a crashed server', async () => {
    const { logger, messages } = recordingLogger();
    const server = await startEmbeddedPostgres({ dataDir, logger });
    await server.stop();
    await writeFile(join(dataDir, 'pg', 'postmaster.pid'), `${deadPid()}\n${join(dataDir, 'pg')}\n`);

    const again = await startEmbeddedPostgres({ dataDir, logger });
    cleanups.push(() => again.stop());
    expect(messages).toContain('removing stale postmaster.pid left by a server that is no longer running');
    expect(await answers(again.connectionString)).toBe(true);
  });

  it('stops the server of an owner that died without stopping it, and starts its own', async () => {
    const { logger } = recordingLogger();
    const orphan = await startEmbeddedPostgres({ dataDir, logger });
    cleanups.push(() => orphan.stop());
    const announcement = {
      url: orphan.connectionString,
      pid: deadPid(),
      startedAt: new Date().toISOString(),
    };
    await writeFile(connectionFile(dataDir), JSON.stringify(announcement), { mode: 0o600 });

    const database = await openDatabase({ dataDir, logger });
    cleanups.push(() => database.close());
    expect(isProcessAlive(orphan.pid)).toBe(false);
    expect(await answers(database.connectionString)).toBe(true);
    expect(await readAnnouncement(connectionFile(dataDir))).toMatchObject({ pid: process.pid });
  });

  it('refuses to start a second server on a data directory in use', async () => {
    const { logger } = recordingLogger();
    const server = await startEmbeddedPostgres({ dataDir, logger });
    cleanups.push(() => server.stop());
    await expect(startEmbeddedPostgres({ dataDir, logger })).rejects.toThrow(/already running/);
  });

  it('leaves a cluster directory it does not recognise alone', async () => {
    const { logger } = recordingLogger();
    await mkdir(join(dataDir, 'pg'));
    await writeFile(join(dataDir, 'pg', 'precious.txt'), 'not a cluster');
    await expect(startEmbeddedPostgres({ dataDir, logger })).rejects.toThrow(/no PG_VERSION/);
    expect(await readFile(join(dataDir, 'pg', 'precious.txt'), 'utf8')).toBe('not a cluster');
  });

  it("explains a failed start with the server's own output", async () => {
    const { logger } = recordingLogger();
    const failure = await startEmbeddedPostgres({
      dataDir,
      logger,
      settings: { shared_buffers: 'plenty' },
    }).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(DatabaseUnavailableError);
    expect((failure as Error).message).toMatch(/failed to start/);
    expect((failure as Error).message).toMatch(/shared_buffers/);
  });
});

describe('defaultDataDir', () => {
  it('follows XDG_DATA_HOME, else ~/.local/share', () => {
    expect(defaultDataDir({ XDG_DATA_HOME: '/xdg' }, 1000)).toBe('/xdg/leasehold');
    expect(defaultDataDir({ HOME: '/home/u' }, 1000)).toMatch(/\/\.local\/share\/leasehold$/);
    expect(defaultDataDir({ XDG_DATA_HOME: 'relative' }, 1000)).toMatch(/\/\.local\/share\/leasehold$/);
  });

  it('uses /var/lib/leasehold as root, where the postgres user cannot enter /root', () => {
    expect(defaultDataDir({ HOME: '/root' }, 0)).toBe('/var/lib/leasehold');
    expect(defaultDataDir({ XDG_DATA_HOME: '/xdg' }, 0)).toBe('/xdg/leasehold');
  });
});

// Vitest global setup: one PostgreSQL for the whole run. DATABASE_URL wins; otherwise the embedded
// server in a directory under the system temp dir, kept between runs so only the first run pays for initdb.
// Two runs at once (two terminals, an editor's runner) must not share that cluster: the second one,
// finding it locked by a live run, gets a private throwaway cluster instead.

import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import type { TestProject } from 'vitest/node';
import {
  type EmbeddedPostgresServer,
  isProcessAlive,
  startEmbeddedPostgres,
  stopOrphanedPostmaster,
} from '../../src/db/embeddedPostgres.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** URL of the database every suite creates its schemas in. */
    databaseUrl: string;
  }
}

const root = fileURLToPath(new URL('../..', import.meta.url));
// Under the system temp directory, not the clone: as root the server runs as `postgres`, which
// cannot enter a clone below a 0700 home. One cluster per clone (keyed by its path), reused.
const base = join(tmpdir(), `leasehold-test-${createHash('sha256').update(root).digest('hex').slice(0, 12)}`);
const sharedDir = join(base, 'pg');
const lockFile = join(base, 'pg.lock');

/** Durability buys nothing for a test cluster; these make it noticeably faster. */
const TEST_SETTINGS = {
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
  max_connections: '300',
};

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const url = process.env.DATABASE_URL;
  if (url !== undefined && url !== '') {
    project.provide('databaseUrl', url);
    return async () => {};
  }

  const logger = pino({ level: process.env.LEASEHOLD_TEST_PG_LOG ?? 'warn' });
  const teardown: (() => Promise<void>)[] = [];
  // A fresh machine has nothing yet; 0755 so that the `postgres` user can pass through.
  await mkdir(base, { recursive: true, mode: 0o755 });
  let server: EmbeddedPostgresServer;
  if (await takeSharedLock()) {
    teardown.push(() => unlink(lockFile).catch(() => undefined));
    // Whoever held the lock before us is gone; a server it left running is ours to stop.
    await stopOrphanedPostmaster(sharedDir, logger);
    server = await startEmbeddedPostgres({ dataDir: sharedDir, logger, settings: TEST_SETTINGS });
  } else {
    const privateDir = join(base, `pg-${process.pid}`);
    teardown.push(() => rm(privateDir, { recursive: true, force: true }));
    server = await startEmbeddedPostgres({ dataDir: privateDir, logger, settings: TEST_SETTINGS });
  }
  teardown.push(() => server.stop());
  project.provide('databaseUrl', server.connectionString);

  return async () => {
    for (const step of teardown.reverse()) await step();
  };
}

/** True when this run now holds the shared cluster; false when another live run does. */
async function takeSharedLock(): Promise<boolean> {
  for (let tries = 0; tries < 5; tries++) {
    try {
      await writeFile(lockFile, `${process.pid}\n`, { flag: 'wx' });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number.parseInt((await readFile(lockFile, 'utf8').catch(() => '')).trim(), 10);
    if (Number.isInteger(holder) && isProcessAlive(holder)) return false;
    if (!Number.isInteger(holder) && tries < 2) {
      await new Promise((resolve) => setTimeout(resolve, 100)); // being written right now
      continue;
    }
    await unlink(lockFile).catch(() => undefined);
  }
  return false;
}

// How many items wait in a pg-boss queue, read through pg-boss's own API against its own schema.
// `getQueueStats` serves counts cached by pg-boss's monitor (up to a minute old even when forced),
// which would start a Job for a queue a run just drained; `findJobs({ queued: true })` reads the
// job table itself, so a check sees what a worker's fetch would see now.

import { readFileSync } from 'node:fs';
import { PgBoss } from 'pg-boss';
import type { PgBossConnection } from './pgBossConnection.ts';

/** pg-boss's code for an unknown queue (manager.js QUEUE_NOT_FOUND). */
const QUEUE_NOT_FOUND = 'PGBOSS_QUEUE_NOT_FOUND';

export interface QueueSizeReader {
  /** Items queued (created or retry) in `queue`, counted up to `atMost`; a queue that does not exist has none. */
  waiting(queue: string, atMost?: number): Promise<number>;
  close(): Promise<void>;
}

export interface PgBossReaderOptions {
  connection: PgBossConnection;
  /** Called for pg-boss's own background errors (a lost pool connection): logged, never fatal. */
  onError?: (err: unknown) => void;
}

/**
 * A pg-boss instance used only to read: no maintenance, no cron, no instance registration, and
 * no install or migration (`migrate: false`): the schema belongs to the queues' producers and
 * workers, and upgrading it under their pg-boss version could break them. Until they have installed
 * it, checks fail and are retried. It connects on first use, and after a failure connects afresh
 * on the next call: a database that is away at start-up or restarts is a failed check, not a crash.
 */
export function openPgBossReader(options: PgBossReaderOptions): QueueSizeReader {
  const { connection } = options;
  let started: Promise<PgBoss> | undefined;
  const boss = (): Promise<PgBoss> => {
    started ??= (async () => {
      const instance = new PgBoss({
        host: connection.host,
        port: connection.port,
        user: connection.user,
        password: connection.password,
        database: connection.database,
        schema: connection.schema,
        ...(connection.ssl ? { ssl: sslOptions(connection.ssl) } : {}),
        max: 2,
        supervise: false,
        schedule: false,
        migrate: false,
        registerInstance: false,
        application_name: 'leasehold-queue-trigger',
      });
      instance.on('error', (err) => options.onError?.(err));
      await instance.start();
      return instance;
    })();
    return started;
  };
  const reset = async () => {
    const failed = started;
    started = undefined;
    await failed?.then((instance) => instance.stop({ graceful: false, close: true })).catch(() => {});
  };
  return {
    async waiting(queue, atMost = 1) {
      try {
        const jobs = await (await boss()).findJobs(queue, { queued: true, limit: atMost });
        return jobs.length;
      } catch (err) {
        if ((err as { code?: unknown }).code === QUEUE_NOT_FOUND) return 0;
        await reset();
        throw err;
      }
    },
    async close() {
      await reset();
    },
  };
}

/** job-chief's `sslPaths`, read here the way its own pg-boss client read them. */
function sslOptions(ssl: NonNullable<PgBossConnection['ssl']>) {
  return {
    ca: readFileSync(ssl.ca, 'utf8'),
    key: readFileSync(ssl.key, 'utf8'),
    cert: readFileSync(ssl.cert, 'utf8'),
  };
}

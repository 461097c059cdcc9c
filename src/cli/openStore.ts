// How every command reaches the database: `--database-url`/`DATABASE_URL`, or the embedded
// PostgreSQL of `--data-dir` (reusing the one a running daemon started there).

import type { Logger } from 'pino';
import { openDatabase } from '../db/openDatabase.ts';
import { PostgresJobStore } from '../store/postgres/postgresJobStore.ts';
import type { ConnectionSettings } from './settings.ts';

export interface OpenedStore {
  store: PostgresJobStore;
  embedded: boolean;
  /** The database's URL (the embedded server's too): the queue trigger's pg-boss defaults to it. */
  connectionString: string;
  close(): Promise<void>;
}

export async function openStore(
  settings: ConnectionSettings,
  log: Logger,
  poolSize?: number,
): Promise<OpenedStore> {
  const database = await openDatabase({
    ...(settings.databaseUrl ? { databaseUrl: settings.databaseUrl } : {}),
    dataDir: settings.dataDir,
    logger: log,
  });
  try {
    const store = await PostgresJobStore.open({
      connectionString: database.connectionString,
      schema: settings.schema,
      logger: log,
      ...(poolSize ? { poolSize } : {}),
    });
    return {
      store,
      embedded: database.embedded,
      connectionString: database.connectionString,
      async close() {
        await store.close();
        await database.close();
      },
    };
  } catch (err) {
    await database.close();
    throw err;
  }
}

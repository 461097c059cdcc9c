// PostgreSQL for tests: the run's database (from globalSetup), a store in a fresh schema per call,
// and the contract suite's harness. Every schema is dropped on dispose.

import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { inject } from 'vitest';
import { PostgresJobStore } from '../../src/store/postgres/postgresJobStore.ts';
import type { StoreHarness } from '../store/storeHarness.ts';

export interface PostgresHarness {
  store: PostgresJobStore;
  pool: pg.Pool;
  schema: string;
  url: string;
  dispose(): Promise<void>;
}

export function testDatabaseUrl(): string {
  return inject('databaseUrl');
}

/** A schema name no other test uses: `t_<random>`. */
export function uniqueSchema(prefix = 't'): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

export async function createTestPostgresStore(options: { poolSize?: number } = {}): Promise<PostgresHarness> {
  const url = testDatabaseUrl();
  const schema = uniqueSchema();
  const store = await PostgresJobStore.open({ connectionString: url, schema, poolSize: options.poolSize });
  let disposed = false;
  return {
    store,
    pool: store.pool,
    schema,
    url,
    dispose: async () => {
      if (disposed) return;
      disposed = true;
      try {
        await store.pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await store.close();
      }
    },
  };
}

export async function postgresStoreHarness(): Promise<StoreHarness & { store: PostgresJobStore }> {
  const harness = await createTestPostgresStore();
  const { pool, schema } = harness;
  return {
    store: harness.store,
    expireLeases: async () => {
      await pool.query(
        `UPDATE "${schema}".jobs SET lease_expires_at = now() - interval '1 millisecond' WHERE lease_token IS NOT NULL`,
      );
    },
    ageHistory: async (ms) => {
      await pool.query(
        `UPDATE "${schema}".history SET finished_at = finished_at - $1::float8 * interval '1 millisecond'`,
        [ms],
      );
    },
    dispose: harness.dispose,
  };
}

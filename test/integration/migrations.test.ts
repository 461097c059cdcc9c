// Migrations against real PostgreSQL: applied once per schema, even when daemons start together.

import pg from 'pg';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseUnavailableError, ValidationError } from '../../src/errors.ts';
import { MIGRATIONS, migrate } from '../../src/store/postgres/migrations.ts';
import { PostgresJobStore } from '../../src/store/postgres/postgresJobStore.ts';
import { createStoreContext } from '../../src/store/postgres/storeContext.ts';
import { testDatabaseUrl, uniqueSchema } from '../support/postgres.ts';

const silent = pino({ level: 'silent' });

describe('migrations', () => {
  let admin: pg.Pool;
  const stores: PostgresJobStore[] = [];
  const schemas: string[] = [];

  beforeAll(() => {
    admin = new pg.Pool({ connectionString: testDatabaseUrl(), max: 2 });
  });
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()));
    for (const schema of schemas.splice(0)) await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  });
  afterAll(async () => {
    await admin.end();
  });

  async function open(schema: string): Promise<PostgresJobStore> {
    const store = await PostgresJobStore.open({ connectionString: testDatabaseUrl(), schema, poolSize: 2 });
    stores.push(store);
    return store;
  }

  async function recorded(schema: string): Promise<{ id: number; applied_at: Date }[]> {
    const { rows } = await admin.query(`SELECT id, applied_at FROM "${schema}".migrations ORDER BY id`);
    return rows;
  }

  it('lets stores opening one schema at once all succeed, and records each migration once', async () => {
    const schema = uniqueSchema('m');
    schemas.push(schema);
    const opened = await Promise.allSettled(Array.from({ length: 6 }, () => open(schema)));
    expect(opened.map((outcome) => outcome.status)).toEqual(Array(6).fill('fulfilled'));

    expect((await recorded(schema)).map((row) => row.id)).toEqual(
      MIGRATIONS.map((migration) => migration.id),
    );
    const job = await stores[0]!.enqueue({ namespace: 'ns', name: 'one', action: 'exec' });
    expect(await stores[5]!.get(job.uid)).toEqual(job);
  });

  it('applies nothing when reopening a migrated schema', async () => {
    const schema = uniqueSchema('m');
    schemas.push(schema);
    const first = await open(schema);
    const before = await recorded(schema);
    await first.close();

    await open(schema);
    expect(await recorded(schema)).toEqual(before);
    const context = createStoreContext(admin, schema);
    expect(await migrate(context, silent)).toEqual([]);
  });

  it('applies a later migration once, on top of the existing ones', async () => {
    const schema = uniqueSchema('m');
    schemas.push(schema);
    await open(schema);
    const context = createStoreContext(admin, schema);
    const extra = {
      id: 1000,
      name: 'test-only column',
      sql: () => `ALTER TABLE "${schema}".jobs ADD COLUMN test_only integer`,
    };
    const outcomes = await Promise.all([
      migrate(context, silent, [...MIGRATIONS, extra]),
      migrate(context, silent, [...MIGRATIONS, extra]),
    ]);
    expect(outcomes.flat()).toEqual([1000]);
    expect((await recorded(schema)).map((row) => row.id)).toEqual([...MIGRATIONS.map((m) => m.id), 1000]);
  });

  it('rolls back a failing migration entirely', async () => {
    const schema = uniqueSchema('m');
    schemas.push(schema);
    await open(schema);
    const context = createStoreContext(admin, schema);
    const broken = {
      id: 1001,
      name: 'half a migration',
      sql: () => `ALTER TABLE "${schema}".jobs ADD COLUMN half integer; SELECT no_such_function();`,
    };
    await expect(migrate(context, silent, [...MIGRATIONS, broken])).rejects.toThrow(/no_such_function/);
    expect((await recorded(schema)).map((row) => row.id)).toEqual(MIGRATIONS.map((m) => m.id));
    const { rows } = await admin.query(
      `SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'jobs' AND column_name = 'half'`,
      [schema],
    );
    expect(rows).toEqual([]);
  });

  it('tunes the queue table for churn', async () => {
    const schema = uniqueSchema('m');
    schemas.push(schema);
    await open(schema);
    const { rows } = await admin.query(`SELECT reloptions FROM pg_class WHERE oid = to_regclass($1)`, [
      `"${schema}".jobs`,
    ]);
    expect(rows[0].reloptions).toEqual(
      expect.arrayContaining([
        'fillfactor=45',
        'autovacuum_vacuum_scale_factor=0.01',
        'vacuum_truncate=false',
      ]),
    );
    const history = await admin.query(`SELECT reloptions FROM pg_class WHERE oid = to_regclass($1)`, [
      `"${schema}".history`,
    ]);
    expect(history.rows[0].reloptions).toEqual(
      expect.arrayContaining([
        'autovacuum_vacuum_insert_threshold=5000',
        'autovacuum_vacuum_insert_scale_factor=0.02',
      ]),
    );
  });
});

describe('PostgresJobStore.open', () => {
  it('reports an unreachable database as DatabaseUnavailableError', async () => {
    const url = new URL(testDatabaseUrl());
    url.pathname = '/no_such_database';
    await expect(PostgresJobStore.open({ connectionString: url.toString() })).rejects.toBeInstanceOf(
      DatabaseUnavailableError,
    );
  });

  it('rejects a schema name that is not a plain identifier', async () => {
    await expect(
      PostgresJobStore.open({ connectionString: testDatabaseUrl(), schema: 'x"; DROP TABLE y; --' }),
    ).rejects.toBeInstanceOf(ValidationError);
  });
});

// Versioned schema migrations. Each one runs once, in its own transaction, under a transaction-level
// advisory lock derived from the schema name, so daemons starting together against one database
// queue up behind each other instead of failing or applying a migration twice.

import type { Logger } from 'pino';
import type { StoreContext } from './storeContext.ts';

export interface Migration {
  /** Applied in ascending order; never renumber or edit an applied migration, add a new one. */
  id: number;
  name: string;
  sql(context: StoreContext): string;
}

export const MIGRATIONS: readonly Migration[] = Object.freeze([
  {
    id: 1,
    name: 'jobs and history',
    sql: ({ tables }) => `
      CREATE TABLE ${tables.jobs} (
        uid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        namespace text NOT NULL,
        name text NOT NULL,
        action text NOT NULL,
        repository text NOT NULL DEFAULT '',
        spec jsonb NOT NULL DEFAULT '{}',
        labels jsonb NOT NULL DEFAULT '{}',
        status jsonb NOT NULL,
        resource_version bigint NOT NULL DEFAULT 1,
        attempts integer NOT NULL DEFAULT 0,
        max_attempts integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
        priority integer NOT NULL DEFAULT 0,
        -- clock_timestamp(), not now(): jobs enqueued in one transaction still get distinct ages.
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        cancel_requested boolean NOT NULL DEFAULT false,
        lease_owner text,
        lease_token uuid,
        lease_expires_at timestamptz,
        CONSTRAINT jobs_namespace_name_key UNIQUE (namespace, name),
        CONSTRAINT jobs_lease_complete CHECK ((lease_token IS NULL) = (lease_expires_at IS NULL))
      ) WITH (
        -- A queue table: every row is updated a few times and deleted soon. Room on the page keeps
        -- those updates HOT; aggressive autovacuum keeps dead tuples from piling up in the claim path.
        fillfactor = 80,
        autovacuum_vacuum_scale_factor = 0.01,
        autovacuum_vacuum_threshold = 100,
        autovacuum_analyze_scale_factor = 0.02,
        autovacuum_vacuum_insert_scale_factor = 0.05,
        autovacuum_vacuum_cost_delay = 0
      );
      -- The claim walks this index in order and stops after LIMIT candidates.
      CREATE INDEX jobs_claim_order_idx ON ${tables.jobs} (priority DESC, created_at, uid);
      CREATE INDEX jobs_namespace_created_idx ON ${tables.jobs} (namespace, created_at, uid);
      CREATE INDEX jobs_created_idx ON ${tables.jobs} (created_at, uid);

      CREATE TABLE ${tables.history} (
        uid uuid PRIMARY KEY,
        namespace text NOT NULL,
        name text NOT NULL,
        action text NOT NULL,
        repository text NOT NULL DEFAULT '',
        spec jsonb NOT NULL DEFAULT '{}',
        labels jsonb NOT NULL DEFAULT '{}',
        status jsonb NOT NULL,
        resource_version bigint NOT NULL,
        attempts integer NOT NULL,
        max_attempts integer NOT NULL,
        priority integer NOT NULL,
        created_at timestamptz NOT NULL,
        finished_at timestamptz NOT NULL,
        reason text NOT NULL CHECK (reason IN ('completed', 'cancelled', 'attempts-exhausted')),
        worker text
      );
      -- Newest-first listing, unfiltered and by namespace, repository, state; pruning by age.
      CREATE INDEX history_finished_idx ON ${tables.history} (finished_at DESC, uid DESC);
      CREATE INDEX history_namespace_idx ON ${tables.history} (namespace, finished_at DESC, uid DESC);
      CREATE INDEX history_repository_idx ON ${tables.history} (namespace, repository, finished_at DESC, uid DESC);
      CREATE INDEX history_state_idx ON ${tables.history} ((status->>'state'), finished_at DESC, uid DESC);
      CREATE INDEX history_labels_idx ON ${tables.history} USING gin (labels jsonb_path_ops);
    `,
  },
  {
    id: 2,
    name: 'index for the exhausted-job sweep',
    // The sweep runs on every tick of every replica; without this it scans the whole queue.
    sql: ({ tables, schema }) => `
      CREATE INDEX IF NOT EXISTS jobs_sweep_idx ON ${tables.jobs} (uid)
        WHERE attempts >= max_attempts OR cancel_requested;
      COMMENT ON INDEX "${schema}".jobs_sweep_idx IS 'leasehold: sweepExhausted';`,
  },
]);

/** Applies the migrations this schema lacks. Returns the ids applied by this call. */
export async function migrate(
  context: StoreContext,
  logger: Logger,
  migrations: readonly Migration[] = MIGRATIONS,
): Promise<number[]> {
  const applied: number[] = [];
  const client = await context.pool.connect();
  let broken: Error | undefined;
  try {
    for (const migration of [...migrations].sort((a, b) => a.id - b.id)) {
      await client.query('BEGIN');
      try {
        // Held until COMMIT/ROLLBACK; a second daemon waits here, then finds the migration recorded.
        await client.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [
          `leasehold:migrate:${context.schema}`,
        ]);
        await client.query(`CREATE SCHEMA IF NOT EXISTS "${context.schema}"`);
        await client.query(`CREATE TABLE IF NOT EXISTS ${context.tables.migrations} (
          id integer PRIMARY KEY,
          name text NOT NULL,
          applied_at timestamptz NOT NULL DEFAULT now()
        )`);
        const done = await client.query(`SELECT 1 FROM ${context.tables.migrations} WHERE id = $1`, [
          migration.id,
        ]);
        if (done.rowCount === 0) {
          await client.query(migration.sql(context));
          await client.query(`INSERT INTO ${context.tables.migrations} (id, name) VALUES ($1, $2)`, [
            migration.id,
            migration.name,
          ]);
          applied.push(migration.id);
        }
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch((rollbackErr: Error) => {
          broken = rollbackErr; // the connection is unusable; do not return it to the pool
        });
        throw err;
      }
    }
  } finally {
    client.release(broken);
  }
  if (applied.length > 0) logger.info({ schema: context.schema, applied }, 'migrations applied');
  return applied;
}

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
  {
    id: 3,
    name: 'repositories',
    // `synced_files` (path → hash, kind, stamp of the last sync) stays out of the API's status:
    // it grows with the repository, and only the pull handler reads it.
    sql: ({ tables }) => `
      CREATE TABLE ${tables.repositories} (
        uid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        namespace text NOT NULL,
        name text NOT NULL,
        spec jsonb NOT NULL,
        generation bigint NOT NULL DEFAULT 1,
        status jsonb NOT NULL DEFAULT '{}',
        synced_files jsonb NOT NULL DEFAULT '{}',
        resource_version bigint NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        CONSTRAINT repositories_namespace_name_key UNIQUE (namespace, name)
      );
      CREATE INDEX repositories_namespace_created_idx ON ${tables.repositories} (namespace, created_at, uid);
      CREATE INDEX repositories_created_idx ON ${tables.repositories} (created_at, uid);`,
  },
  {
    id: 4,
    name: 'vacuum settings for a churning queue and an append-only history',
    // Measured by the bench's sustained run (bench/figures/sustained.ts): at ~2k jobs/s every job
    // leaves a dead claim version and a deleted row behind, 160k dead tuples a minute next to 20-40k
    // live ones. Migration 1 already lets autovacuum start on a few hundred dead tuples; what it
    // left out:
    // - jobs: vacuum_truncate off. The queue's size swings between empty and a whole backlog, so
    //   vacuum keeps finding an empty tail to give back; truncating it takes an ACCESS EXCLUSIVE
    //   lock that stops every claimer for the moment it is held, for pages the next backlog takes
    //   again. Keeping them costs disk only up to the largest backlog.
    // - history: rows are inserted by every completion and only deleted by the age prune, so dead
    //   tuples never trigger a vacuum there; the insert thresholds do. Vacuuming after every few
    //   thousand inserts keeps the visibility map current (index-only reads of the listing indexes)
    //   and freezes rows in small steps instead of one anti-wraparound pass over months of history.
    //   Fillfactor stays 100: history rows are not updated in place (the outbox marks them once).
    sql: ({ tables }) => `
      ALTER TABLE ${tables.jobs} SET (vacuum_truncate = false);
      ALTER TABLE ${tables.history} SET (
        autovacuum_vacuum_insert_threshold = 5000,
        autovacuum_vacuum_insert_scale_factor = 0.02,
        autovacuum_analyze_scale_factor = 0.02,
        autovacuum_vacuum_cost_delay = 0
      );`,
  },
  {
    id: 5,
    name: 'history outbox for the Loki sink',
    // The history table is the Loki sink's outbox: a row is pending until a pusher marks it pushed
    // (or rejected, when Loki refused it for good). A column and not a cursor: completions commit
    // out of finished_at order, so a cursor on finished_at would skip rows committed late.
    sql: ({ tables }) => `
      ALTER TABLE ${tables.history}
        ADD COLUMN pushed_at timestamptz,
        ADD COLUMN push_error text;
      CREATE INDEX history_unpushed_idx ON ${tables.history} (finished_at, uid)
        WHERE pushed_at IS NULL AND push_error IS NULL;`,
  },
  {
    id: 6,
    name: 'batch executions of the cron fan-out',
    // One row per execution (its id is the cron tick's time, so replicas firing one tick insert one
    // row) and one per node of it: whichever replica leads can continue an execution another began.
    // The callback key signs the pods' callback tokens; every replica behind the Service shares it.
    sql: ({ tables }) => `
      CREATE TABLE ${tables.batchExecutions} (
        controller text NOT NULL,
        execution_id text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz,
        PRIMARY KEY (controller, execution_id)
      );
      CREATE INDEX batch_executions_unfinished_idx ON ${tables.batchExecutions} (controller, execution_id)
        WHERE finished_at IS NULL;
      CREATE TABLE ${tables.batchNodes} (
        controller text NOT NULL,
        execution_id text NOT NULL,
        node text NOT NULL,
        ordinal integer NOT NULL,
        state text NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting', 'enqueued', 'succeeded', 'failed')),
        job_name text,
        message text NOT NULL DEFAULT '',
        duration_ms bigint,
        PRIMARY KEY (controller, execution_id, node),
        FOREIGN KEY (controller, execution_id) REFERENCES ${tables.batchExecutions} ON DELETE CASCADE
      );
      CREATE TABLE ${tables.batchKeys} (
        controller text PRIMARY KEY,
        callback_key bytea NOT NULL
      );`,
  },
  {
    id: 7,
    name: 'the Loki outbox index only where a sink runs',
    // Migration 5's index over pending history rows covered every row of a daemon without Loki
    // (nothing marks them pushed): an index insert on every completion for nothing, and an index as
    // large as the history. The Loki pusher creates it when it starts (HistoryOutbox.prepare).
    sql: ({ schema }) => `DROP INDEX IF EXISTS "${schema}".history_unpushed_idx;`,
  },
  {
    id: 8,
    name: 'heap-only claims',
    // A claim writes the lease, the attempt and the status, none of them indexed, so PostgreSQL can
    // write the new row version on the same page without touching any index (a HOT update) — if
    // no index reads a column the claim changes and the page has room. Migration 2's sweep index
    // read `attempts` in its predicate, so no claim was HOT: each inserted into all five other
    // indexes. Without it, and with pages left 55 % free (each queued row is claimed once, then
    // deleted), claims went from 0 % to 84–100 % HOT and from ~45 to ~30 µs per job at batch 100.
    // The sweep scans the queue instead, at most every 10 s per driver (src/runtime/driver.ts).
    sql: ({ tables, schema }) => `
      DROP INDEX IF EXISTS "${schema}".jobs_sweep_idx;
      ALTER TABLE ${tables.jobs} SET (fillfactor = 45);`,
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

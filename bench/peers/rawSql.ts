// The floor: a minimal queue table, a one-statement SKIP LOCKED claim and a one-statement DELETE
// of the whole batch. No leases, tokens, history or JSON: what PostgreSQL itself costs here.

import pg from 'pg';
import { benchSchema, dropSchema, vacuumSchema } from '../database.ts';
import { type Drained, type DrainSettings, type Peer, POOL_SIZE, runClaimers, timed } from './peer.ts';

export async function openRawSql(url: string): Promise<Peer> {
  const schema = benchSchema('raw');
  const pool = new pg.Pool({ connectionString: url, max: POOL_SIZE, application_name: 'bench-raw-sql' });
  // An idle client killed at shutdown emits on the pool; unhandled, that would crash the run.
  pool.on('error', () => undefined);
  const table = `"${schema}".jobs`;
  await pool.query(`CREATE SCHEMA "${schema}"`);
  await pool.query(`
    CREATE TABLE ${table} (
      id bigserial PRIMARY KEY,
      payload jsonb NOT NULL DEFAULT '{}',
      locked_by text,
      locked_at timestamptz
    )`);
  await pool.query(`CREATE INDEX ON ${table} (id) WHERE locked_at IS NULL`);

  const claim = `
    UPDATE ${table} SET locked_by = $1, locked_at = now()
    WHERE id IN (
      SELECT id FROM ${table} WHERE locked_at IS NULL ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED
    )
    RETURNING id, payload`;
  const complete = `DELETE FROM ${table} WHERE id = ANY($1::bigint[])`;

  return {
    system: 'raw-sql',

    async fill(count: number) {
      await pool.query(`TRUNCATE ${table}`);
      await pool.query(`INSERT INTO ${table} (payload) SELECT '{}' FROM generate_series(1, $1::int)`, [
        count,
      ]);
      await vacuumSchema(url, schema);
    },

    claimThroughput(settings: DrainSettings): Promise<Drained> {
      return runClaimers(settings, async (claimer) => {
        const claimed = await timed(settings.times, 'claimMs', () =>
          pool.query<{ id: string }>({
            name: 'raw_claim',
            text: claim,
            values: [`bench-${claimer}`, settings.batch],
          }),
        );
        if (claimed.rows.length === 0) return 0;
        await timed(settings.times, 'completeMs', () =>
          pool.query({ name: 'raw_complete', text: complete, values: [claimed.rows.map((r) => r.id)] }),
        );
        return claimed.rows.length;
      });
    },

    async close() {
      try {
        await dropSchema(url, schema);
      } finally {
        await pool.end();
      }
    },
  };
}

// The history outbox over PostgreSQL: pending rows are taken with FOR UPDATE SKIP LOCKED inside a
// transaction that stays open while the sink is called, so two replicas never push the same rows
// at once, and a crash before COMMIT leaves them pending for the next pusher (at least once).
// `deliver` must settle within the pool's idle_in_transaction_session_timeout (30 s), or the
// server ends the session and the rows stay pending; the Loki client gives up after 10 s.

import type { DeliveryOutcome, HistoryOutbox, OutboxEntry } from '../historyOutbox.ts';
import { HISTORY_COLUMNS, type HistoryRow, toHistoricJob } from './rows.ts';
import type { StoreContext } from './storeContext.ts';

const PENDING = 'pushed_at IS NULL AND push_error IS NULL';

export function createHistoryOutbox(context: StoreContext): HistoryOutbox {
  const { pool, tables } = context;
  return {
    async prepare() {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        // Replicas starting together queue behind the lock instead of racing to create the index.
        // Built once, when a sink first starts: a table-long build that holds up completions then.
        await client.query('BEGIN');
        await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [
          `leasehold:history-outbox:${context.schema}`,
        ]);
        await client.query(
          `CREATE INDEX IF NOT EXISTS history_unpushed_idx ON ${tables.history} (finished_at, uid) WHERE ${PENDING}`,
        );
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch((rollbackErr: Error) => {
          broken = rollbackErr;
        });
        throw err;
      } finally {
        client.release(broken);
      }
    },

    async drain(limit, deliver) {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        try {
          const taken = await client.query<HistoryRow>(
            `SELECT ${HISTORY_COLUMNS} FROM ${tables.history} WHERE ${PENDING}
             ORDER BY finished_at, uid LIMIT $1 FOR UPDATE SKIP LOCKED`,
            [limit],
          );
          if (taken.rows.length === 0) {
            await client.query('COMMIT');
            return 0;
          }
          const entries: OutboxEntry[] = taken.rows.map((row) => ({
            job: toHistoricJob(row),
            finishedAtUs: row.finished_at_us,
          }));
          const outcome: DeliveryOutcome = await deliver(entries);
          const rejected = [...outcome.rejected];
          const pushed = taken.rows.map((row) => row.uid).filter((uid) => !outcome.rejected.has(uid));
          if (pushed.length > 0) {
            await client.query(`UPDATE ${tables.history} SET pushed_at = now() WHERE uid = ANY($1::uuid[])`, [
              pushed,
            ]);
          }
          if (rejected.length > 0) {
            await client.query(
              `UPDATE ${tables.history} h SET push_error = r.reason
               FROM unnest($1::uuid[], $2::text[]) AS r(uid, reason) WHERE h.uid = r.uid`,
              [rejected.map(([uid]) => uid), rejected.map(([, reason]) => reason)],
            );
          }
          await client.query('COMMIT');
          return entries.length;
        } catch (err) {
          await client.query('ROLLBACK').catch((rollbackErr: Error) => {
            broken = rollbackErr; // the connection is unusable; do not return it to the pool
          });
          throw err;
        }
      } finally {
        client.release(broken);
      }
    },

    async deletePushed(olderThanMs) {
      const result = await pool.query(
        `DELETE FROM ${tables.history}
         WHERE pushed_at < now() - $1::float8 * interval '1 millisecond'`,
        [olderThanMs],
      );
      return result.rowCount ?? 0;
    },

    async pending() {
      const result = await pool.query<{ n: number }>(
        `SELECT count(*)::float8 AS n FROM ${tables.history} WHERE ${PENDING}`,
      );
      return result.rows[0]?.n ?? 0;
    },
  };
}

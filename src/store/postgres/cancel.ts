// Cancellation by name. A job with no live lease goes straight to history (one statement); a leased
// one is flagged so its holder, which sees the flag on its next renew, aborts and finishes it.

import { FinishReason } from '../job.ts';
import type { CancelOutcome } from '../jobStore.ts';
import {
  HISTORY_COLUMNS,
  HISTORY_INSERT_COLUMNS,
  type HistoryRow,
  JOB_COLUMNS,
  type JobRow,
  toHistoricJob,
  toJob,
} from './rows.ts';
import type { StoreContext } from './storeContext.ts';

/** A claim or an expiry can slip between the two statements; each try re-decides from fresh rows. */
const CANCEL_TRIES = 5;

export async function cancelJob(
  context: StoreContext,
  namespace: string,
  name: string,
): Promise<CancelOutcome | null> {
  const { tables } = context;
  for (let attempt = 1; attempt <= CANCEL_TRIES; attempt++) {
    const moved = await context.pool.query<HistoryRow>({
      name: context.statement('cancel_queued'),
      text: `
        WITH cancelled AS (
          DELETE FROM ${tables.jobs}
          WHERE namespace = $1 AND name = $2 AND (lease_token IS NULL OR lease_expires_at <= now())
          RETURNING *
        ), archived AS (
          INSERT INTO ${tables.history} ${HISTORY_INSERT_COLUMNS}
          SELECT uid, namespace, name, action, repository, spec, labels,
            status || jsonb_build_object('state', 'error', 'message', 'cancelled',
                                         'finished', floor(extract(epoch FROM now()) * 1000)),
            resource_version + 1, attempts, max_attempts, priority, created_at, now(), $3, lease_owner
          FROM cancelled
          RETURNING *
        )
        SELECT ${HISTORY_COLUMNS} FROM archived`,
      values: [namespace, name, FinishReason.cancelled],
    });
    const archived = moved.rows[0];
    if (archived !== undefined) return { kind: 'cancelled', job: toHistoricJob(archived) };

    const flagged = await context.pool.query<JobRow>({
      name: context.statement('cancel_leased'),
      text: `
        UPDATE ${tables.jobs} SET cancel_requested = true, resource_version = resource_version + 1
        WHERE namespace = $1 AND name = $2 AND lease_token IS NOT NULL AND lease_expires_at > now()
        RETURNING ${JOB_COLUMNS}`,
      values: [namespace, name],
    });
    const leased = flagged.rows[0];
    if (leased !== undefined) return { kind: 'requested', job: toJob(leased) };

    const found = await context.pool.query({
      name: context.statement('cancel_exists'),
      text: `SELECT 1 FROM ${tables.jobs} WHERE namespace = $1 AND name = $2`,
      values: [namespace, name],
    });
    if (found.rowCount === 0) return null;
  }
  // Only reachable when the job's lease keeps flipping between live and expired under us.
  throw new Error(`could not cancel job ${namespace}/${name}: it changed under ${CANCEL_TRIES} tries`);
}

// Completion: the job leaves the queue and enters history in one statement, only while the lease
// token is still the job's. Nothing is inserted when the delete finds no row.

import { LeaseLostError, ValidationError } from '../../errors.ts';
import { FINAL_STATES, type FinalStatus, FinishReason, type HistoricJob, type Lease } from '../job.ts';
import { HISTORY_COLUMNS, HISTORY_INSERT_COLUMNS, type HistoryRow, isUuid, toHistoricJob } from './rows.ts';
import type { StoreContext } from './storeContext.ts';
import { definedFields } from './updateStatus.ts';

/**
 * The final status is the stored one with `status` merged over it; `finished` defaults to the
 * database's now (epoch ms) and a success without an explicit progress reads 100.
 */
export async function completeJob(
  context: StoreContext,
  lease: Lease,
  status: FinalStatus,
  reason: FinishReason = FinishReason.completed,
): Promise<HistoricJob> {
  if (!FINAL_STATES.includes(status.state)) {
    throw new ValidationError(
      'status.state',
      `complete needs a final state (${FINAL_STATES.join(', ')}), got "${status.state}"`,
    );
  }
  if (!isUuid(lease.uid) || !isUuid(lease.token)) throw new LeaseLostError(lease.uid);
  const { tables } = context;
  const result = await context.pool.query<HistoryRow>({
    name: context.statement('complete'),
    text: `
      WITH done AS (
        DELETE FROM ${tables.jobs} WHERE uid = $1 AND lease_token = $2 RETURNING *
      ), archived AS (
        INSERT INTO ${tables.history} ${HISTORY_INSERT_COLUMNS}
        SELECT uid, namespace, name, action, repository, spec, labels,
          status || $3::jsonb
            || CASE WHEN $3::jsonb ? 'finished' THEN '{}'::jsonb
                    ELSE jsonb_build_object('finished', floor(extract(epoch FROM now()) * 1000)) END
            || CASE WHEN $3::jsonb->>'state' = 'success' AND NOT $3::jsonb ? 'progress'
                    THEN '{"progress": 100}'::jsonb ELSE '{}'::jsonb END,
          resource_version + 1, attempts, max_attempts, priority, created_at, now(), $4, lease_owner
        FROM done
        RETURNING *
      )
      SELECT ${HISTORY_COLUMNS} FROM archived`,
    values: [lease.uid, lease.token, JSON.stringify(definedFields(status)), reason],
  });
  const row = result.rows[0];
  if (row === undefined) throw new LeaseLostError(lease.uid);
  return toHistoricJob(row);
}

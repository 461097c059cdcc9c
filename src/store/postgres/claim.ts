// The claim: one statement that picks the next claimable jobs in order, skipping rows other
// claimers have locked, and leases them. The database does the hard part; no claimer ever waits.
// It also marks them `working` (started now, database clock): the statement writes the row anyway,
// and a separate status write per job before its handler starts cost two round trips (a read and a
// conditional write) on the hot path.

import type { ClaimedJob } from '../job.ts';
import { JOB_COLUMNS, type JobRow, toJob } from './rows.ts';
import type { StoreContext } from './storeContext.ts';

function claimSql({ tables }: StoreContext, byAction: boolean): string {
  return `
    WITH claimed AS (
      UPDATE ${tables.jobs}
      SET lease_owner = $1,
          lease_token = gen_random_uuid(),
          lease_expires_at = now() + $3::float8 * interval '1 millisecond',
          attempts = attempts + 1,
          resource_version = resource_version + 1,
          status = status || jsonb_build_object(
            'state', 'working',
            'started', floor(extract(epoch FROM now()) * 1000)::float8,
            'message', 'started')
      WHERE uid IN (
        SELECT uid FROM ${tables.jobs}
        WHERE (lease_token IS NULL OR lease_expires_at <= now())
          AND attempts < max_attempts
          AND NOT cancel_requested
          ${byAction ? 'AND action = ANY($4::text[])' : ''}
        ORDER BY priority DESC, created_at, uid
        LIMIT $2
        FOR UPDATE SKIP LOCKED
      )
      RETURNING *
    )
    SELECT ${JOB_COLUMNS} FROM claimed
    ORDER BY priority DESC, created_at, uid`;
}

export async function claimJobs(
  context: StoreContext,
  owner: string,
  limit: number,
  leaseMs: number,
  actions?: readonly string[],
): Promise<ClaimedJob[]> {
  if (limit <= 0 || (actions !== undefined && actions.length === 0)) return [];
  const byAction = actions !== undefined;
  const result = await context.pool.query<JobRow>({
    name: context.statement(byAction ? 'claim_by_action' : 'claim'),
    text: claimSql(context, byAction),
    values: byAction ? [owner, Math.floor(limit), leaseMs, actions] : [owner, Math.floor(limit), leaseMs],
  });
  return result.rows.map((row) => toJob(row) as ClaimedJob);
}

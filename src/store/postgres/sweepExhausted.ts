// The poison-job sweep: jobs that used up their attempts and hold no live lease go to history as
// errors, in one statement. It also finishes jobs whose cancel was requested while they were
// leased but whose holder then died: nobody may claim them, so nobody else would ever finish them.

import { FinishReason } from '../job.ts';
import { HISTORY_INSERT_COLUMNS } from './rows.ts';
import type { StoreContext } from './storeContext.ts';

export async function sweepExhaustedJobs(context: StoreContext): Promise<number> {
  const { tables } = context;
  const result = await context.pool.query({
    name: context.statement('sweep_exhausted'),
    text: `
      WITH swept AS (
        DELETE FROM ${tables.jobs}
        WHERE (attempts >= max_attempts OR cancel_requested)
          AND (lease_token IS NULL OR lease_expires_at <= now())
        RETURNING *
      ), described AS (
        SELECT swept.*,
          CASE WHEN cancel_requested THEN $2 ELSE $1 END AS reason,
          CASE WHEN cancel_requested THEN 'cancelled'
               ELSE format('attempts exhausted: %s of %s attempts started without completing (last worker: %s)',
                           attempts, max_attempts, coalesce(lease_owner, 'none')) END AS message
        FROM swept
      ), archived AS (
        INSERT INTO ${tables.history} ${HISTORY_INSERT_COLUMNS}
        SELECT uid, namespace, name, action, repository, spec, labels,
          status || jsonb_build_object(
            'state', 'error',
            'message', message,
            'errors', coalesce(status->'errors', '[]'::jsonb) || to_jsonb(message),
            'finished', floor(extract(epoch FROM now()) * 1000)),
          resource_version + 1, attempts, max_attempts, priority, created_at, now(), reason, lease_owner
        FROM described
        RETURNING 1
      )
      SELECT count(*)::int AS moved FROM archived`,
    values: [FinishReason.attemptsExhausted, FinishReason.cancelled],
  });
  return (result.rows[0] as { moved: number } | undefined)?.moved ?? 0;
}

// Status writes: optimistic concurrency on resource_version, fenced by the lease token. No row lock
// is held between the read and the write, so concurrent writers retry instead of deadlocking.

import { ConflictError, LeaseLostError } from '../../errors.ts';
import type { Job, JobStatus, Lease, StatusPatch } from '../job.ts';
import { isUuid, JOB_COLUMNS, type JobRow, toJob } from './rows.ts';
import type { StoreContext } from './storeContext.ts';

export const STATUS_WRITE_TRIES = 5;

interface StatusRow {
  status: Partial<JobStatus>;
  resource_version: string;
}

/**
 * Fencing: the write lands while `lease.token` is still the job's token, even if the lease has
 * expired, as long as no other claim has minted a new token (see postgresJobStore.ts).
 */
export async function updateJobStatus(context: StoreContext, lease: Lease, patch: StatusPatch): Promise<Job> {
  if (!isUuid(lease.uid) || !isUuid(lease.token)) throw new LeaseLostError(lease.uid);
  const given = definedFields(patch);
  for (let attempt = 1; attempt <= STATUS_WRITE_TRIES; attempt++) {
    const current = await context.pool.query<StatusRow>({
      name: context.statement('status_read'),
      text: `SELECT status, resource_version::text AS resource_version FROM ${context.tables.jobs}
             WHERE uid = $1 AND lease_token = $2`,
      values: [lease.uid, lease.token],
    });
    const row = current.rows[0];
    if (row === undefined) throw new LeaseLostError(lease.uid);

    const written = await context.pool.query<JobRow>({
      name: context.statement('status_write'),
      text: `UPDATE ${context.tables.jobs}
             SET status = $4::jsonb, resource_version = resource_version + 1
             WHERE uid = $1 AND lease_token = $2 AND resource_version = $3::bigint
             RETURNING ${JOB_COLUMNS}`,
      values: [lease.uid, lease.token, row.resource_version, JSON.stringify({ ...row.status, ...given })],
    });
    const job = written.rows[0];
    if (job !== undefined) return toJob(job);
    // Someone else changed the job between our read and write; the next read tells a lost lease
    // from a concurrent status write.
  }
  throw new ConflictError(lease.uid, STATUS_WRITE_TRIES);
}

/** The patch without keys explicitly set to undefined (which would otherwise erase stored fields). */
export function definedFields(patch: StatusPatch): StatusPatch {
  return Object.fromEntries(Object.entries(patch).filter(([, value]) => value !== undefined)) as StatusPatch;
}

// Giving a lease back unfinished (drain): the job is claimable at once and the attempt is returned.

import { LeaseLostError } from '../../errors.ts';
import type { Lease } from '../job.ts';
import { isUuid } from './rows.ts';
import type { StoreContext } from './storeContext.ts';

export async function releaseLease(context: StoreContext, lease: Lease): Promise<void> {
  if (!isUuid(lease.uid) || !isUuid(lease.token)) throw new LeaseLostError(lease.uid);
  const result = await context.pool.query({
    name: context.statement('release'),
    text: `UPDATE ${context.tables.jobs}
           SET lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
               attempts = greatest(attempts - 1, 0), resource_version = resource_version + 1
           WHERE uid = $1 AND lease_token = $2`,
    values: [lease.uid, lease.token],
  });
  if (result.rowCount === 0) throw new LeaseLostError(lease.uid);
}

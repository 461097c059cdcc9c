// Lease renewal. Only a live lease can be extended: once it has expired, the job is anyone's to
// claim, so the holder learns it lost the lease (and aborts) rather than resurrecting it.

import { LeaseLostError } from '../../errors.ts';
import type { Lease } from '../job.ts';
import type { RenewedLease } from '../jobStore.ts';
import { isUuid } from './rows.ts';
import type { StoreContext } from './storeContext.ts';

interface RenewRow {
  lease_owner: string;
  lease_token: string;
  lease_expires_at_ms: number;
  cancel_requested: boolean;
}

export async function renewLease(
  context: StoreContext,
  lease: Lease,
  leaseMs: number,
): Promise<RenewedLease> {
  if (!isUuid(lease.uid) || !isUuid(lease.token)) throw new LeaseLostError(lease.uid);
  const result = await context.pool.query<RenewRow>({
    name: context.statement('renew'),
    text: `
      UPDATE ${context.tables.jobs}
      SET lease_expires_at = now() + $3::float8 * interval '1 millisecond'
      WHERE uid = $1 AND lease_token = $2 AND lease_expires_at > now()
      RETURNING lease_owner, lease_token::text AS lease_token,
        floor(extract(epoch FROM lease_expires_at) * 1000)::float8 AS lease_expires_at_ms, cancel_requested`,
    values: [lease.uid, lease.token, leaseMs],
  });
  const row = result.rows[0];
  if (row === undefined) throw new LeaseLostError(lease.uid);
  return {
    uid: lease.uid,
    owner: row.lease_owner,
    token: row.lease_token,
    expiresAt: row.lease_expires_at_ms,
    cancelRequested: row.cancel_requested,
  };
}

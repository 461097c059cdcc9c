// Lease renewal: many leases extended in one statement, each only while it is still the job's live
// lease. Once a lease has expired, the job is anyone's to claim, so the holder learns it lost the
// lease (and aborts) rather than resurrecting it. `renew` is the one-item case of `renewMany`: one
// SQL text for both.

import { LeaseLostError } from '../../errors.ts';
import { type Lease, requirePositiveDuration } from '../job.ts';
import type { Renewal, RenewedLease } from '../jobStore.ts';
import { isUuid } from './rows.ts';
import type { StoreContext } from './storeContext.ts';

interface RenewRow {
  ord: number;
  lease_owner: string;
  lease_token: string;
  lease_expires_at_ms: number;
  cancel_requested: boolean;
}

// `latest` keeps the last of repeated (uid, token) pairs, so a repeated lease is extended once, by
// the last repeat's duration; the final join answers every repeat with that one updated row. Pairs
// with another token for the same uid stay, and at most one of them can match.
function renewSql({ tables }: StoreContext): string {
  return `
    WITH input AS (
      SELECT uid, token, lease_ms, ord
      FROM unnest($1::uuid[], $2::uuid[], $3::float8[]) WITH ORDINALITY AS i(uid, token, lease_ms, ord)
    ), latest AS (
      SELECT DISTINCT ON (uid, token) uid, token, lease_ms
      FROM input
      ORDER BY uid, token, ord DESC
    ), renewed AS (
      UPDATE ${tables.jobs} j
      SET lease_expires_at = now() + l.lease_ms * interval '1 millisecond'
      FROM latest l
      WHERE j.uid = l.uid AND j.lease_token = l.token AND j.lease_expires_at > now()
      RETURNING j.uid, j.lease_owner, j.lease_token, j.lease_expires_at, j.cancel_requested
    )
    SELECT i.ord::int AS ord, r.lease_owner, r.lease_token::text AS lease_token,
      floor(extract(epoch FROM r.lease_expires_at) * 1000)::float8 AS lease_expires_at_ms, r.cancel_requested
    FROM input i JOIN renewed r ON r.uid = i.uid AND r.lease_token = i.token`;
}

export async function renewLeases(
  context: StoreContext,
  items: readonly Renewal[],
): Promise<(RenewedLease | LeaseLostError)[]> {
  for (const { leaseMs } of items) requirePositiveDuration('leaseMs', leaseMs);
  // Uids and tokens that are not uuids name no lease (and would fail the cast): fenced out here.
  const valid = items.filter(({ lease }) => isUuid(lease.uid) && isUuid(lease.token));
  const rows = new Map<number, RenewRow>();
  if (valid.length > 0) {
    const result = await context.pool.query<RenewRow>({
      name: context.statement('renew'),
      text: renewSql(context),
      values: [
        valid.map(({ lease }) => lease.uid),
        valid.map(({ lease }) => lease.token),
        valid.map(({ leaseMs }) => leaseMs),
      ],
    });
    for (const row of result.rows) rows.set(row.ord, row);
  }
  // `ord` counts from 1 over `valid`; map it back to the position in `items`.
  let ord = 0;
  return items.map(({ lease }) => {
    if (!isUuid(lease.uid) || !isUuid(lease.token)) return new LeaseLostError(lease.uid);
    const row = rows.get(++ord);
    if (row === undefined) return new LeaseLostError(lease.uid);
    return {
      uid: lease.uid,
      owner: row.lease_owner,
      token: row.lease_token,
      expiresAt: row.lease_expires_at_ms,
      cancelRequested: row.cancel_requested,
    };
  });
}

export async function renewLease(
  context: StoreContext,
  lease: Lease,
  leaseMs: number,
): Promise<RenewedLease> {
  const [result] = await renewLeases(context, [{ lease, leaseMs }]);
  if (result === undefined || result instanceof LeaseLostError) throw result ?? new LeaseLostError(lease.uid);
  return result;
}

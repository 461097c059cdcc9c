// The lease fence of a write outside the jobs table (a repository's sync record, a batch node's
// outcome): a condition for the write's own WHERE, so the write lands only while the job still
// holds that token with a live lease, checked in the same statement as the write.

import { LeaseLostError } from '../../errors.ts';
import type { LeaseFence } from '../job.ts';
import { isUuid } from './rows.ts';
import type { StoreContext } from './storeContext.ts';

/** `AND EXISTS (…)` over the fence's uid and token, passed as parameters `$uid` and `$token`. */
export function liveLeaseCondition({ tables }: StoreContext, uid: number, token: number): string {
  return `AND EXISTS (SELECT 1 FROM ${tables.jobs}
                      WHERE uid = $${uid} AND lease_token = $${token} AND lease_expires_at > now())`;
}

/** A uid or token that is not a uuid names no lease (and would fail the cast): fenced out here. */
export function requireFenceIds(fence: LeaseFence): void {
  if (!isUuid(fence.uid) || !isUuid(fence.token)) throw new LeaseLostError(fence.uid);
}

// Status writes of a repository: health from the controller, sync start and outcome from the pull
// handler. Each replaces its own part of `status` inside one UPDATE (jsonb_set / ||), so concurrent
// writers of different parts never overwrite each other and no read-modify-write race exists.

import { LeaseLostError } from '../../errors.ts';
import type { LeaseFence } from '../job.ts';
import type { Repository, RepositoryHealth, SyncResult } from '../repository.ts';
import type { SyncStart } from '../repositoryStore.ts';
import { liveLeaseCondition, requireFenceIds } from './leaseFence.ts';
import { REPOSITORY_COLUMNS, type RepositoryRow, toRepository } from './repositoryRows.ts';
import type { StoreContext } from './storeContext.ts';

export async function setRepositoryHealth(
  context: StoreContext,
  namespace: string,
  name: string,
  health: RepositoryHealth,
): Promise<Repository | null> {
  const result = await context.pool.query<RepositoryRow>({
    name: context.statement('repository_health'),
    text: `UPDATE ${context.tables.repositories}
           SET status = jsonb_set(status, '{health}', $3::jsonb), resource_version = resource_version + 1
           WHERE namespace = $1 AND name = $2
           RETURNING ${REPOSITORY_COLUMNS}`,
    values: [namespace, name, JSON.stringify(health)],
  });
  const row = result.rows[0];
  return row === undefined ? null : toRepository(row);
}

export async function markSyncStarted(
  context: StoreContext,
  namespace: string,
  name: string,
  start: SyncStart,
): Promise<Repository | null> {
  const patch = { ...start, state: 'working', message: [], summary: [] };
  const result = await context.pool.query<RepositoryRow>({
    name: context.statement('repository_sync_start'),
    text: `UPDATE ${context.tables.repositories}
           SET status = jsonb_set(status, '{sync}', (coalesce(status->'sync', '{}') - 'finished') || $3::jsonb),
               resource_version = resource_version + 1
           WHERE namespace = $1 AND name = $2
           RETURNING ${REPOSITORY_COLUMNS}`,
    values: [namespace, name, JSON.stringify(patch)],
  });
  const row = result.rows[0];
  return row === undefined ? null : toRepository(row);
}

export async function recordSync(
  context: StoreContext,
  namespace: string,
  name: string,
  result: SyncResult,
  fence?: LeaseFence,
): Promise<Repository | null> {
  const { synced, ...outcome } = result;
  const patch = synced ? { ...outcome, lastRef: synced.ref, generation: synced.generation } : outcome;
  const values = [namespace, name, JSON.stringify(patch), synced ? JSON.stringify(synced.files) : null];
  if (fence === undefined) {
    const written = await context.pool.query<RepositoryRow>({
      name: context.statement('repository_sync_record'),
      text: recordSyncSql(context, ''),
      values,
    });
    const row = written.rows[0];
    return row === undefined ? null : toRepository(row);
  }
  requireFenceIds(fence);
  // The lease is checked in the UPDATE itself, so a write under way when the lease is lost cannot
  // land over the next holder's sync. The second SELECT tells a lost lease (the unwritten row,
  // `fenced_out`) from a missing repository (no row).
  const written = await context.pool.query<RepositoryRow & { fenced_out: boolean }>({
    name: context.statement('repository_sync_record_fenced'),
    text: `WITH written AS (${recordSyncSql(context, liveLeaseCondition(context, 5, 6))})
           SELECT written.*, false AS fenced_out FROM written
           UNION ALL
           SELECT ${REPOSITORY_COLUMNS}, true AS fenced_out FROM ${context.tables.repositories}
           WHERE namespace = $1 AND name = $2 AND NOT EXISTS (SELECT 1 FROM written)`,
    values: [...values, fence.uid, fence.token],
  });
  const row = written.rows[0];
  if (row === undefined) return null;
  if (row.fenced_out) throw new LeaseLostError(fence.uid);
  return toRepository(row);
}

/** The sync-record UPDATE, with `fence` (SQL over $5 and $6, or empty) added to its WHERE. */
function recordSyncSql(context: StoreContext, fence: string): string {
  return `UPDATE ${context.tables.repositories}
           SET status = jsonb_set(status, '{sync}', coalesce(status->'sync', '{}') || $3::jsonb),
               synced_files = coalesce($4::jsonb, synced_files),
               resource_version = resource_version + 1
           WHERE namespace = $1 AND name = $2 ${fence}
           RETURNING ${REPOSITORY_COLUMNS}`;
}

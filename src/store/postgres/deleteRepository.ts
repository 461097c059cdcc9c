// Delete a repository (its synced files go with the row). Queued pull jobs stay: the pull handler
// fails them with "no such repository", and they reach history like any job.

import type { Repository } from '../repository.ts';
import { REPOSITORY_COLUMNS, type RepositoryRow, toRepository } from './repositoryRows.ts';
import type { StoreContext } from './storeContext.ts';

export async function deleteRepository(
  context: StoreContext,
  namespace: string,
  name: string,
): Promise<Repository | null> {
  const result = await context.pool.query<RepositoryRow>({
    name: context.statement('repository_delete'),
    text: `DELETE FROM ${context.tables.repositories} WHERE namespace = $1 AND name = $2
           RETURNING ${REPOSITORY_COLUMNS}`,
    values: [namespace, name],
  });
  const row = result.rows[0];
  return row === undefined ? null : toRepository(row);
}

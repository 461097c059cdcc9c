// Reading repositories: one by name, and page by page oldest first (keyset, like the jobs list).

import type { Page } from '../job.ts';
import type { Repository, RepositoryFilter, SyncedFiles } from '../repository.ts';
import { keysetPage } from './keysetPage.ts';
import { REPOSITORY_COLUMNS, type RepositoryRow, toRepository } from './repositoryRows.ts';
import type { StoreContext } from './storeContext.ts';

export async function getRepository(
  context: StoreContext,
  namespace: string,
  name: string,
): Promise<Repository | null> {
  const result = await context.pool.query<RepositoryRow>({
    name: context.statement('repository_get'),
    text: `SELECT ${REPOSITORY_COLUMNS} FROM ${context.tables.repositories} WHERE namespace = $1 AND name = $2`,
    values: [namespace, name],
  });
  const row = result.rows[0];
  return row === undefined ? null : toRepository(row);
}

export async function listRepositories(
  context: StoreContext,
  filter: RepositoryFilter = {},
): Promise<Page<Repository>> {
  const page = await keysetPage<RepositoryRow>(
    context,
    {
      table: context.tables.repositories,
      columns: REPOSITORY_COLUMNS,
      sortColumn: 'created_at',
      descending: false,
      equals: { namespace: filter.namespace },
      labels: undefined,
      limit: filter.limit,
      continue: filter.continue,
    },
    (row) => row.created_at_us,
  );
  return { items: page.rows.map(toRepository), ...(page.continue ? { continue: page.continue } : {}) };
}

export async function getSyncedFiles(
  context: StoreContext,
  namespace: string,
  name: string,
): Promise<SyncedFiles | null> {
  const result = await context.pool.query<{ synced_files: SyncedFiles }>({
    name: context.statement('repository_synced_files'),
    text: `SELECT synced_files FROM ${context.tables.repositories} WHERE namespace = $1 AND name = $2`,
    values: [namespace, name],
  });
  return result.rows[0]?.synced_files ?? null;
}

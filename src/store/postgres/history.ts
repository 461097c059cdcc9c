// Reading and pruning history: by uid, page by page newest first, and deleting by age.

import type { HistoricJob, HistoryFilter, Page } from '../job.ts';
import { keysetPage } from './keysetPage.ts';
import { HISTORY_COLUMNS, type HistoryRow, isUuid, toHistoricJob } from './rows.ts';
import type { StoreContext } from './storeContext.ts';

export async function getHistoricJob(context: StoreContext, uid: string): Promise<HistoricJob | null> {
  if (!isUuid(uid)) return null;
  const result = await context.pool.query<HistoryRow>({
    name: context.statement('get_history'),
    text: `SELECT ${HISTORY_COLUMNS} FROM ${context.tables.history} WHERE uid = $1`,
    values: [uid],
  });
  const row = result.rows[0];
  return row === undefined ? null : toHistoricJob(row);
}

export async function listHistory(
  context: StoreContext,
  filter: HistoryFilter = {},
): Promise<Page<HistoricJob>> {
  const page = await keysetPage<HistoryRow>(
    context,
    {
      table: context.tables.history,
      columns: HISTORY_COLUMNS,
      sortColumn: 'finished_at',
      descending: true,
      equals: {
        namespace: filter.namespace,
        repository: filter.repository,
        "status->>'state'": filter.state,
        name: filter.name,
      },
      labels: filter.labels,
      limit: filter.limit,
      continue: filter.continue,
    },
    (row) => row.finished_at_us,
  );
  return { items: page.rows.map(toHistoricJob), ...(page.continue ? { continue: page.continue } : {}) };
}

export async function pruneHistory(context: StoreContext, olderThanMs: number): Promise<number> {
  const result = await context.pool.query(
    `DELETE FROM ${context.tables.history} WHERE finished_at < now() - $1::float8 * interval '1 millisecond'`,
    [olderThanMs],
  );
  return result.rowCount ?? 0;
}

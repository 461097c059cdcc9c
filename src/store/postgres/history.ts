// Reading and pruning history: by uid, page by page newest first, and deleting by age.

import type { HistoricJob, HistoryFilter, Page } from '../job.ts';
import { pageSize } from '../job.ts';
import { decodeCursor, encodeCursor } from './pageCursor.ts';
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
  const limit = pageSize(filter.limit);
  const conditions: string[] = [];
  const values: unknown[] = [];
  const bind = (value: unknown) => {
    values.push(value);
    return `$${values.length}`;
  };
  if (filter.namespace !== undefined) conditions.push(`namespace = ${bind(filter.namespace)}`);
  if (filter.repository !== undefined) conditions.push(`repository = ${bind(filter.repository)}`);
  if (filter.state !== undefined) conditions.push(`status->>'state' = ${bind(filter.state)}`);
  if (filter.name !== undefined) conditions.push(`name = ${bind(filter.name)}`);
  if (filter.labels !== undefined && Object.keys(filter.labels).length > 0) {
    conditions.push(`labels @> ${bind(JSON.stringify(filter.labels))}::jsonb`);
  }
  if (filter.continue !== undefined) {
    const after = decodeCursor(filter.continue);
    conditions.push(
      `(finished_at, uid) < (timestamptz 'epoch' + ${bind(after.at)}::bigint * interval '1 microsecond', ${bind(after.uid)}::uuid)`,
    );
  }
  const result = await context.pool.query<HistoryRow>(
    `SELECT ${HISTORY_COLUMNS} FROM ${context.tables.history}
     ${conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : ''}
     ORDER BY finished_at DESC, uid DESC
     LIMIT ${bind(limit + 1)}`,
    values,
  );
  const rows = result.rows.slice(0, limit);
  const last = rows.at(-1);
  const page: Page<HistoricJob> = { items: rows.map(toHistoricJob) };
  if (result.rows.length > limit && last !== undefined) {
    page.continue = encodeCursor({ at: last.finished_at_us, uid: last.uid });
  }
  return page;
}

export async function pruneHistory(context: StoreContext, olderThanMs: number): Promise<number> {
  const result = await context.pool.query(
    `DELETE FROM ${context.tables.history} WHERE finished_at < now() - $1::float8 * interval '1 millisecond'`,
    [olderThanMs],
  );
  return result.rowCount ?? 0;
}

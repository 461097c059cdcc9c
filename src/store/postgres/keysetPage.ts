// One page of a list query, keyset-paginated: the filters both lists share (equality on columns,
// labels containment), the `continue` cursor on (sort timestamp, uid), and one row more than the
// page to learn whether another page follows. Jobs list oldest first, history newest first.

import { pageSize } from '../job.ts';
import { decodeCursor, encodeCursor } from './pageCursor.ts';
import type { StoreContext } from './storeContext.ts';

export interface KeysetQuery {
  /** Quoted, schema-qualified table. */
  table: string;
  columns: string;
  /** Timestamp column the list is ordered by, with uid as tiebreaker. */
  sortColumn: 'created_at' | 'finished_at';
  descending: boolean;
  /** SQL expression → value; undefined values filter nothing. */
  equals: Record<string, unknown>;
  labels: Record<string, string> | undefined;
  limit: number | undefined;
  continue: string | undefined;
}

export async function keysetPage<Row extends { uid: string }>(
  context: StoreContext,
  query: KeysetQuery,
  sortKeyOf: (row: Row) => string,
): Promise<{ rows: Row[]; continue?: string }> {
  const limit = pageSize(query.limit);
  const conditions: string[] = [];
  const values: unknown[] = [];
  const bind = (value: unknown) => {
    values.push(value);
    return `$${values.length}`;
  };
  for (const [expression, value] of Object.entries(query.equals)) {
    if (value !== undefined) conditions.push(`${expression} = ${bind(value)}`);
  }
  if (query.labels !== undefined && Object.keys(query.labels).length > 0) {
    conditions.push(`labels @> ${bind(JSON.stringify(query.labels))}::jsonb`);
  }
  if (query.continue !== undefined) {
    const after = decodeCursor(query.continue);
    conditions.push(
      `(${query.sortColumn}, uid) ${query.descending ? '<' : '>'} ` +
        `(timestamptz 'epoch' + ${bind(after.at)}::bigint * interval '1 microsecond', ${bind(after.uid)}::uuid)`,
    );
  }
  const direction = query.descending ? 'DESC' : 'ASC';
  const result = await context.pool.query<Row>(
    `SELECT ${query.columns} FROM ${query.table}
     ${conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : ''}
     ORDER BY ${query.sortColumn} ${direction}, uid ${direction}
     LIMIT ${bind(limit + 1)}`,
    values,
  );
  const rows = result.rows.slice(0, limit);
  const last = rows.at(-1);
  return result.rows.length > limit && last !== undefined
    ? { rows, continue: encodeCursor({ at: sortKeyOf(last), uid: last.uid }) }
    : { rows };
}

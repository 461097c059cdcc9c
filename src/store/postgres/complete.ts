// Completion: jobs leave the queue and enter history in one statement, each only while its lease
// token is still the job's. Nothing is inserted for a job the delete did not find. `complete` is
// the one-item case of `completeMany`: one statement, answering with the history row for `complete`
// and with an acknowledgement per item for `completeMany`.

import { LeaseLostError } from '../../errors.ts';
import { FinishReason, type HistoricJob, requireFinalState } from '../job.ts';
import type { Completed, Completion } from '../jobStore.ts';
import { HISTORY_COLUMNS, HISTORY_INSERT_COLUMNS, type HistoryRow, isUuid, toHistoricJob } from './rows.ts';
import type { StoreContext } from './storeContext.ts';
import { definedFields } from './updateStatus.ts';

/**
 * The final status: the stored one with `patch` (a jsonb expression) merged over it; `finished`
 * defaults to the database's now (epoch ms) and a success without an explicit progress reads 100.
 */
function finalStatusSql(stored: string, patch: string): string {
  return `${stored} || ${patch}
    || CASE WHEN ${patch} ? 'finished' THEN '{}'::jsonb
            ELSE jsonb_build_object('finished', floor(extract(epoch FROM now()) * 1000)) END
    || CASE WHEN ${patch}->>'state' = 'success' AND NOT ${patch} ? 'progress'
            THEN '{"progress": 100}'::jsonb ELSE '{}'::jsonb END`;
}

/** How a landed item is answered: the history columns it returns, and the record made of them. */
interface Answer<Row, Result> {
  /** Names the prepared statement: one SQL text per answer. */
  operation: string;
  /** A RETURNING list over the inserted history row; must include `uid`, which the answer joins on. */
  columns: string;
  toResult: (row: Row, item: Completion) => Result;
}

interface AcknowledgementRow {
  finished_at_ms: number;
}

const HISTORY_ROW: Answer<HistoryRow, HistoricJob> = {
  operation: 'complete',
  columns: HISTORY_COLUMNS,
  toResult: toHistoricJob,
};

// The inserted row's own finished_at (its uid is for the join): one float8 per item, where a whole
// row carried spec, labels and status as jsonb to parse.
const ACKNOWLEDGEMENT: Answer<AcknowledgementRow, Completed> = {
  operation: 'complete_many',
  columns: 'uid, floor(extract(epoch FROM finished_at) * 1000)::float8 AS finished_at_ms',
  toResult: (row, { lease }) => ({ uid: lease.uid, finishedAt: row.finished_at_ms }),
};

// `input` keeps the first of repeated (uid, token) pairs, so a repeat finds nothing to delete;
// pairs with another token for the same uid stay, and at most one of them can match. An item is
// answered only through the history row inserted for it (`archived`), so no item is acknowledged
// whose row was not written.
function completeSql({ tables }: StoreContext, columns: string): string {
  return `
    WITH input AS (
      SELECT DISTINCT ON (uid, token) uid, token, patch, reason, ord
      FROM unnest($1::uuid[], $2::uuid[], $3::jsonb[], $4::text[]) WITH ORDINALITY
        AS i(uid, token, patch, reason, ord)
      ORDER BY uid, token, ord
    ), done AS (
      DELETE FROM ${tables.jobs} j USING input i
      WHERE j.uid = i.uid AND j.lease_token = i.token
      RETURNING j.*, i.patch AS final_patch, i.reason AS final_reason, i.ord AS final_ord
    ), archived AS (
      INSERT INTO ${tables.history} ${HISTORY_INSERT_COLUMNS}
      SELECT uid, namespace, name, action, repository, spec, labels,
        ${finalStatusSql('status', 'final_patch')},
        resource_version + 1, attempts, max_attempts, priority, created_at, now(), final_reason, lease_owner
      FROM done
      RETURNING ${columns}
    )
    SELECT a.*, done.final_ord::int AS ord
    FROM archived a JOIN done USING (uid)`;
}

async function completeItems<Row, Result>(
  context: StoreContext,
  items: readonly Completion[],
  answer: Answer<Row, Result>,
): Promise<(Result | LeaseLostError)[]> {
  for (const { status } of items) requireFinalState(status);
  // Uids and tokens that are not uuids name no lease (and would fail the cast): fenced out here.
  const valid = items.filter(({ lease }) => isUuid(lease.uid) && isUuid(lease.token));
  const rows = new Map<number, Row>();
  if (valid.length > 0) {
    const result = await context.pool.query<Row & { ord: number }>({
      name: context.statement(answer.operation),
      text: completeSql(context, answer.columns),
      values: [
        valid.map(({ lease }) => lease.uid),
        valid.map(({ lease }) => lease.token),
        valid.map(({ status }) => JSON.stringify(definedFields(status))),
        valid.map(({ reason }) => reason ?? FinishReason.completed),
      ],
    });
    for (const row of result.rows) rows.set(row.ord, row);
  }
  // `ord` counts from 1 over `valid`; map it back to the position in `items`.
  let ord = 0;
  return items.map((item) => {
    const { lease } = item;
    if (!isUuid(lease.uid) || !isUuid(lease.token)) return new LeaseLostError(lease.uid);
    const row = rows.get(++ord);
    return row === undefined ? new LeaseLostError(lease.uid) : answer.toResult(row, item);
  });
}

export function completeJobs(
  context: StoreContext,
  items: readonly Completion[],
): Promise<(Completed | LeaseLostError)[]> {
  return completeItems(context, items, ACKNOWLEDGEMENT);
}

export async function completeJob(
  context: StoreContext,
  lease: Completion['lease'],
  status: Completion['status'],
  reason: FinishReason = FinishReason.completed,
): Promise<HistoricJob> {
  const [result] = await completeItems(context, [{ lease, status, reason }], HISTORY_ROW);
  if (result === undefined || result instanceof LeaseLostError) throw result ?? new LeaseLostError(lease.uid);
  return result;
}

// Reading queued jobs: by uid, by name, and page by page oldest first.

import type { Job, JobFilter, Page, QueueDepth } from '../job.ts';
import { pageSize } from '../job.ts';
import { decodeCursor, encodeCursor } from './pageCursor.ts';
import { isUuid, JOB_COLUMNS, type JobRow, toJob } from './rows.ts';
import type { StoreContext } from './storeContext.ts';

export async function getJob(context: StoreContext, uid: string): Promise<Job | null> {
  if (!isUuid(uid)) return null;
  const result = await context.pool.query<JobRow>({
    name: context.statement('get_job'),
    text: `SELECT ${JOB_COLUMNS} FROM ${context.tables.jobs} WHERE uid = $1`,
    values: [uid],
  });
  const row = result.rows[0];
  return row === undefined ? null : toJob(row);
}

export async function getJobByName(
  context: StoreContext,
  namespace: string,
  name: string,
): Promise<Job | null> {
  const result = await context.pool.query<JobRow>({
    name: context.statement('get_job_by_name'),
    text: `SELECT ${JOB_COLUMNS} FROM ${context.tables.jobs} WHERE namespace = $1 AND name = $2`,
    values: [namespace, name],
  });
  const row = result.rows[0];
  return row === undefined ? null : toJob(row);
}

export async function listJobs(context: StoreContext, filter: JobFilter = {}): Promise<Page<Job>> {
  const limit = pageSize(filter.limit);
  const conditions: string[] = [];
  const values: unknown[] = [];
  const bind = (value: unknown) => {
    values.push(value);
    return `$${values.length}`;
  };
  if (filter.namespace !== undefined) conditions.push(`namespace = ${bind(filter.namespace)}`);
  if (filter.repository !== undefined) conditions.push(`repository = ${bind(filter.repository)}`);
  if (filter.action !== undefined) conditions.push(`action = ${bind(filter.action)}`);
  if (filter.labels !== undefined && Object.keys(filter.labels).length > 0) {
    conditions.push(`labels @> ${bind(JSON.stringify(filter.labels))}::jsonb`);
  }
  if (filter.continue !== undefined) {
    const after = decodeCursor(filter.continue);
    conditions.push(
      `(created_at, uid) > (timestamptz 'epoch' + ${bind(after.at)}::bigint * interval '1 microsecond', ${bind(after.uid)}::uuid)`,
    );
  }
  const result = await context.pool.query<JobRow>(
    `SELECT ${JOB_COLUMNS} FROM ${context.tables.jobs}
     ${conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : ''}
     ORDER BY created_at, uid
     LIMIT ${bind(limit + 1)}`,
    values,
  );
  const rows = result.rows.slice(0, limit);
  const last = rows.at(-1);
  const page: Page<Job> = { items: rows.map(toJob) };
  if (result.rows.length > limit && last !== undefined) {
    page.continue = encodeCursor({ at: last.created_at_us, uid: last.uid });
  }
  return page;
}

/** One scan of the queue: jobs with a live lease are running, the rest wait. */
export async function countJobs(context: StoreContext): Promise<QueueDepth> {
  const result = await context.pool.query<{ running: number; total: number }>({
    name: context.statement('count_jobs'),
    text: `SELECT count(*) FILTER (WHERE lease_expires_at > now())::int AS running, count(*)::int AS total
           FROM ${context.tables.jobs}`,
  });
  const row = result.rows[0] ?? { running: 0, total: 0 };
  return { queued: row.total - row.running, running: row.running };
}

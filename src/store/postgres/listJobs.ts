// Reading queued jobs: by uid, by name, and page by page oldest first.

import type { Job, JobFilter, Page, QueueDepth } from '../job.ts';
import { keysetPage } from './keysetPage.ts';
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
  const page = await keysetPage<JobRow>(
    context,
    {
      table: context.tables.jobs,
      columns: JOB_COLUMNS,
      sortColumn: 'created_at',
      descending: false,
      equals: { namespace: filter.namespace, repository: filter.repository, action: filter.action },
      labels: filter.labels,
      limit: filter.limit,
      continue: filter.continue,
    },
    (row) => row.created_at_us,
  );
  return { items: page.rows.map(toJob), ...(page.continue ? { continue: page.continue } : {}) };
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

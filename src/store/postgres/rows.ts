// Row <-> record mapping: which columns every query selects, and how a row becomes a Job or a
// HistoricJob. Timestamps leave the database as epoch ms (and µs, for exact keyset cursors).

import {
  type FinishReason,
  type HistoricJob,
  type Job,
  type JobStatus,
  type JsonObject,
  pendingStatus,
} from '../job.ts';

/** Columns of `jobs` as the mappers expect them; valid in RETURNING and over a CTE of job rows. */
export const JOB_COLUMNS = `uid, namespace, name, action, repository, spec, labels, status,
  resource_version::float8 AS resource_version, attempts, max_attempts, priority,
  floor(extract(epoch FROM created_at) * 1000)::float8 AS created_at_ms,
  (extract(epoch FROM created_at) * 1000000)::bigint::text AS created_at_us,
  cancel_requested, lease_owner, lease_token::text AS lease_token,
  floor(extract(epoch FROM lease_expires_at) * 1000)::float8 AS lease_expires_at_ms`;

/** Columns of `history` as the mappers expect them. */
export const HISTORY_COLUMNS = `uid, namespace, name, action, repository, spec, labels, status,
  resource_version::float8 AS resource_version, attempts, max_attempts, priority,
  floor(extract(epoch FROM created_at) * 1000)::float8 AS created_at_ms,
  floor(extract(epoch FROM finished_at) * 1000)::float8 AS finished_at_ms,
  (extract(epoch FROM finished_at) * 1000000)::bigint::text AS finished_at_us,
  reason, worker`;

/** The columns `history` is inserted with, in the order of HISTORY_INSERT_VALUES-style selects. */
export const HISTORY_INSERT_COLUMNS = `(uid, namespace, name, action, repository, spec, labels, status,
  resource_version, attempts, max_attempts, priority, created_at, finished_at, reason, worker)`;

interface CommonRow {
  uid: string;
  namespace: string;
  name: string;
  action: string;
  repository: string;
  spec: JsonObject;
  labels: Record<string, string>;
  status: Partial<JobStatus> | null;
  resource_version: number;
  attempts: number;
  max_attempts: number;
  priority: number;
  created_at_ms: number;
}

export interface JobRow extends CommonRow {
  created_at_us: string;
  cancel_requested: boolean;
  lease_owner: string | null;
  lease_token: string | null;
  lease_expires_at_ms: number | null;
}

export interface HistoryRow extends CommonRow {
  finished_at_ms: number;
  finished_at_us: string;
  reason: FinishReason;
  worker: string | null;
}

export function toJob(row: JobRow): Job {
  return {
    ...common(row),
    cancelRequested: row.cancel_requested,
    lease:
      row.lease_token === null
        ? null
        : {
            uid: row.uid,
            owner: row.lease_owner ?? '',
            token: row.lease_token,
            expiresAt: row.lease_expires_at_ms ?? 0,
          },
  };
}

export function toHistoricJob(row: HistoryRow): HistoricJob {
  return { ...common(row), finishedAt: row.finished_at_ms, reason: row.reason, worker: row.worker };
}

function common(row: CommonRow): Omit<Job, 'lease' | 'cancelRequested'> {
  return {
    uid: row.uid,
    namespace: row.namespace,
    name: row.name,
    action: row.action,
    repository: row.repository,
    spec: row.spec,
    labels: row.labels,
    status: { ...pendingStatus(), ...(row.status ?? {}) },
    resourceVersion: row.resource_version,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    priority: row.priority,
    createdAt: row.created_at_ms,
  };
}

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Uids and tokens are uuids; anything else cannot name a job or a lease (and would be a SQL error). */
export function isUuid(value: string): boolean {
  return UUID_PATTERN.test(value);
}

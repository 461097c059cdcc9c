// A historic job as a Loki log entry and back: its stream labels (`from=job-history`, namespace,
// repository), its nanosecond timestamp, and its line (the HistoricJob as JSON).
//
// Everything here is deterministic in the history row, so pushing a row twice (a pusher that died
// between Loki's 204 and marking the row) sends an identical entry, which Loki stores once.

import { createHash } from 'node:crypto';
import { FINAL_STATES, FinishReason, type HistoricJob, type HistoryFilter } from '../store/job.ts';

export const HISTORY_STREAM = 'job-history';
/** The label Grafana's provisioning API gives a job's repository (jobs created over the API carry it). */
export const REPOSITORY_LABEL = 'provisioning.grafana.app/repository';

export type StreamLabels = Record<string, string>;

/** The job's repository: its own field, else the API's repository label; '' when it has neither. */
export function jobRepository(job: Pick<HistoricJob, 'repository' | 'labels'>): string {
  return job.repository || job.labels[REPOSITORY_LABEL] || '';
}

/** Loki drops labels with empty values; a job that is not about a repository has no `repository`. */
export function streamLabels(job: HistoricJob): StreamLabels {
  const repository = jobRepository(job);
  return {
    from: HISTORY_STREAM,
    namespace: job.namespace,
    ...(repository !== '' ? { repository } : {}),
  };
}

/**
 * `finished_at` in ns. The database gives µs and a batch of completions shares one `now()`, so the
 * last three digits come from the uid: same-instant jobs rarely tie, and the value stays the same
 * on every push of the row.
 */
export function entryTimestampNs(finishedAtUs: string, uid: string): string {
  const spread = createHash('sha256').update(uid).digest().readUInt16BE(0) % 1000;
  return (BigInt(finishedAtUs) * 1000n + BigInt(spread)).toString();
}

export function entryLine(job: HistoricJob): string {
  return JSON.stringify(job);
}

const REASONS: readonly string[] = Object.values(FinishReason);

function isStringRecord(value: unknown): value is Record<string, string> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every((v) => typeof v === 'string')
  );
}

/**
 * The historic job a line holds, or null for a line that is not one of ours (anyone may push to
 * `{from="job-history"}`; such lines are skipped, not fatal).
 */
export function parseEntryLine(line: string): HistoricJob | null {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const job = value as Partial<Record<keyof HistoricJob, unknown>>;
  const strings = [job.uid, job.namespace, job.name, job.action, job.repository];
  const numbers = [
    job.resourceVersion,
    job.attempts,
    job.maxAttempts,
    job.priority,
    job.createdAt,
    job.finishedAt,
  ];
  const status = job.status as { state?: unknown } | null | undefined;
  if (
    strings.some((v) => typeof v !== 'string') ||
    numbers.some((v) => typeof v !== 'number') ||
    typeof job.spec !== 'object' ||
    job.spec === null ||
    !isStringRecord(job.labels) ||
    typeof status !== 'object' ||
    status === null ||
    !FINAL_STATES.includes(status.state as never) ||
    !REASONS.includes(job.reason as string) ||
    !(job.worker === null || typeof job.worker === 'string')
  ) {
    return null;
  }
  return value as HistoricJob;
}

/** Whether a job passes a history filter: what a Loki query could only narrow down, decided exactly. */
export function matchesHistoryFilter(job: HistoricJob, filter: HistoryFilter): boolean {
  if (filter.namespace !== undefined && job.namespace !== filter.namespace) return false;
  if (filter.repository !== undefined && jobRepository(job) !== filter.repository) return false;
  if (filter.state !== undefined && job.status.state !== filter.state) return false;
  if (filter.name !== undefined && job.name !== filter.name) return false;
  for (const [key, value] of Object.entries(filter.labels ?? {})) {
    if (job.labels[key] !== value) return false;
  }
  return true;
}

// The job record and everything a store hands out, in one place.
//
// Glossary
// - job:       one unit of work, identified by `uid`, named uniquely within its `namespace`.
// - action:    what kind of work (`exec`, `pull`, …); a handler is registered per action.
// - lease:     the right, until `expiresAt` (database clock, epoch ms), for one `owner` to work a job.
// - token:     a fresh random id minted by every claim. Every write a holder makes carries it
//              (fencing): once another claim minted a new token, the old holder's writes land nowhere.
// - attempt:   one claim. `attempts` counts claims; a job that reaches `maxAttempts` without
//              completing goes to history as `error` instead of being claimed again (poison job).
// - release:   the holder gives the lease back unfinished (drain); the attempt is given back too.
// - history:   finished jobs, read-only, pruned by age. `complete` moves a job there atomically.
// - resourceVersion: bumped by every change to a job's status; status writes are conditional on it.

import { ValidationError } from '../errors.ts';

export const JobState = Object.freeze({
  pending: 'pending',
  working: 'working',
  success: 'success',
  error: 'error',
  warning: 'warning',
} as const);
export type JobState = (typeof JobState)[keyof typeof JobState];

/** The states a finished job can end in. */
export type FinalState = typeof JobState.success | typeof JobState.error | typeof JobState.warning;

export const FINAL_STATES: readonly FinalState[] = Object.freeze([
  JobState.success,
  JobState.error,
  JobState.warning,
]);

/** What every store's `complete` and the completion batcher check first: the state is a final one. */
export function requireFinalState(status: { state: string }): void {
  if (!FINAL_STATES.includes(status.state as FinalState)) {
    throw new ValidationError(
      'status.state',
      `complete needs a final state (${FINAL_STATES.join(', ')}), got "${status.state}"`,
    );
  }
}

/** A lease or other duration in ms: finite and above zero, or a ValidationError naming `field`. */
export function requirePositiveDuration(field: string, ms: number): void {
  if (!Number.isFinite(ms) || ms <= 0) {
    throw new ValidationError(field, `${field} must be a positive duration in ms, got ${ms}`);
  }
}

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** What happened to the resources of one kind while a job ran (Grafana's job summary). */
export interface ResourceSummary {
  /** API group of the kind, when known (`dashboard.grafana.app`). */
  group?: string;
  kind: string;
  create: number;
  update: number;
  delete: number;
  noop: number;
  error: number;
}

export interface JobStatus {
  state: JobState;
  /** The latest human-readable progress or outcome line. */
  message: string;
  errors: string[];
  warnings: string[];
  /** 0-100. */
  progress: number;
  summary: ResourceSummary[];
  /** Epoch ms when a worker first started the handler (set by the runtime). */
  started?: number;
  /** Epoch ms when the job finished (set on completion). */
  finished?: number;
}

/** A partial status: fields given replace the stored ones; `summary` replaces the whole list. */
export type StatusPatch = Partial<JobStatus>;

/** The final status written by `complete`: the state must be final. */
export type FinalStatus = Partial<JobStatus> & { state: FinalState };

export interface Lease {
  uid: string;
  /** Who holds it: a worker id such as `<hostname>-<pid>-<random>`. */
  owner: string;
  /** Minted by the claim; the fencing token every write carries. */
  token: string;
  /** Epoch ms, database clock. */
  expiresAt: number;
}

export interface Job {
  uid: string;
  namespace: string;
  name: string;
  action: string;
  /** The repository the job works on; empty when the job is not about one. */
  repository: string;
  spec: JsonObject;
  labels: Record<string, string>;
  status: JobStatus;
  resourceVersion: number;
  /** Claims so far (each claim counts one; a release gives it back). */
  attempts: number;
  maxAttempts: number;
  /** Higher is claimed first; ties go to the older job. */
  priority: number;
  /** Epoch ms. */
  createdAt: number;
  /** Set when someone asked to cancel the job while it was leased; the holder sees it on renew. */
  cancelRequested: boolean;
  lease: Lease | null;
}

/**
 * What fences a write outside the jobs table (a repository's sync, a batch node's outcome): it
 * lands only while job `uid` is still held with `token` and the lease has not expired.
 */
export type LeaseFence = Pick<Lease, 'uid' | 'token'>;

/** A job as `claim` returns it: always leased. */
export type ClaimedJob = Job & { lease: Lease };

export interface NewJob {
  namespace: string;
  /** Unique within the namespace. When omitted the store generates `<action>-<random>`. */
  name?: string;
  action: string;
  repository?: string;
  spec?: JsonObject;
  labels?: Record<string, string>;
  /** Default 0. */
  priority?: number;
  /** Default 3. */
  maxAttempts?: number;
}

/** Why a job left the queue. */
export const FinishReason = Object.freeze({
  completed: 'completed',
  cancelled: 'cancelled',
  attemptsExhausted: 'attempts-exhausted',
} as const);
export type FinishReason = (typeof FinishReason)[keyof typeof FinishReason];

export interface HistoricJob extends Omit<Job, 'lease' | 'cancelRequested'> {
  /** Epoch ms, database clock. */
  finishedAt: number;
  reason: FinishReason;
  /** The worker that held the last lease, if any. */
  worker: string | null;
}

export interface JobFilter {
  namespace?: string;
  repository?: string;
  action?: string;
  /** Only jobs whose labels include all of these. */
  labels?: Record<string, string>;
  /** Page size; default 100, at most 1000. */
  limit?: number;
  /** Opaque cursor from a previous page's `continue`. */
  continue?: string;
}

export interface HistoryFilter extends Omit<JobFilter, 'action'> {
  state?: FinalState;
  /** Only runs of the job with this name (a name is reused once its job is in history). */
  name?: string;
}

/** How many jobs wait in the queue and how many are being worked (a live lease), right now. */
export interface QueueDepth {
  queued: number;
  running: number;
}

export interface Page<T> {
  items: T[];
  /** Set when more items follow; pass it back as `continue`. */
  continue?: string;
}

export const DEFAULT_MAX_ATTEMPTS = 3;
export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

/**
 * The page size a filter asks for: DEFAULT_PAGE_SIZE when absent, clamped to MAX_PAGE_SIZE; not a
 * whole number of at least 1 → a validation error. Both stores page by this rule.
 */
export function pageSize(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(limit) || limit < 1) {
    throw new ValidationError(
      'limit',
      `limit must be a whole number from 1 to ${MAX_PAGE_SIZE}, got ${limit}`,
    );
  }
  return Math.min(limit, MAX_PAGE_SIZE);
}

export function pendingStatus(): JobStatus {
  return { state: JobState.pending, message: '', errors: [], warnings: [], progress: 0, summary: [] };
}

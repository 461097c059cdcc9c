// The store contract: the single source of truth for queued jobs, their leases and history.
// `postgres` is the real implementation; `memory` exists for property tests and micro-benchmarks.
// Both pass test/store/contract.ts.

import type { LeaseLostError } from '../errors.ts';
import type {
  ClaimedJob,
  FinalStatus,
  FinishReason,
  HistoricJob,
  HistoryFilter,
  Job,
  JobFilter,
  Lease,
  NewJob,
  Page,
  QueueDepth,
  StatusPatch,
} from './job.ts';

/** What `renew` learns besides the new expiry. */
export interface RenewedLease extends Lease {
  /** Someone asked to cancel this job; the holder should abort and `cancel` it. */
  cancelRequested: boolean;
}

export type CancelOutcome =
  /** The job was queued (no live lease): it went straight to history as cancelled. */
  | { kind: 'cancelled'; job: HistoricJob }
  /** The job is leased: its holder will see the request on its next renew. */
  | { kind: 'requested'; job: Job };

/** One job's end, as `completeMany` takes it: what `complete` takes, as a record. */
export interface Completion {
  lease: Lease;
  status: FinalStatus;
  /** Default `completed`. */
  reason?: FinishReason;
}

/**
 * What `completeMany` answers for an item that landed: the job left the queue and its history row
 * was written, by the statement that answered. The row itself is read with `getHistory`: the
 * batch's callers only need to know that it landed, and returning whole rows cost about a third of
 * the statement.
 */
export interface Completed {
  uid: string;
  /** When the job entered history (the history row's `finishedAt`): epoch ms, store clock. */
  finishedAt: number;
}

/** One lease to extend, as `renewMany` takes it: what `renew` takes, as a record. */
export interface Renewal {
  lease: Lease;
  leaseMs: number;
}

/** What a job-created notification says. */
export interface JobCreated {
  uid: string;
  namespace: string;
  action: string;
}

export interface JobStore {
  /** Inserts a queued job and notifies listeners. Throws AlreadyExistsError on a duplicate name. */
  enqueue(job: NewJob): Promise<Job>;

  get(uid: string): Promise<Job | null>;
  getByName(namespace: string, name: string): Promise<Job | null>;
  /** Oldest first. */
  list(filter?: JobFilter): Promise<Page<Job>>;
  /** Queued and running jobs, counted in one cheap query (the queue-depth gauge reads it on scrape). */
  countJobs(): Promise<QueueDepth>;

  /**
   * Leases up to `limit` claimable jobs to `owner` for `leaseMs` (database clock): jobs never
   * leased or whose lease expired, with attempts left, highest priority first then oldest.
   * Each claimed job gets a new token and one more attempt, and its status becomes `working`,
   * `started` now (store clock), message `started`: the claim is when a worker takes it up, and the
   * runtime does not write that separately. Never blocks on other claimers.
   */
  claim(owner: string, limit: number, leaseMs: number, actions?: readonly string[]): Promise<ClaimedJob[]>;

  /**
   * Extends the lease to now + leaseMs (store clock). Only a live lease is extended: throws
   * LeaseLostError when the token is no longer the job's or the lease has expired.
   */
  renew(lease: Lease, leaseMs: number): Promise<RenewedLease>;

  /**
   * `renew` for many leases in one statement (postgres) — the runtime's renewal batcher gathers
   * them. One result per item, in order: the renewed lease, or a LeaseLostError when that item's
   * lease is not the job's live lease (that item changes nothing; the others are still renewed).
   * A lease repeated in one batch is renewed once, to now + the last repeat's leaseMs, and every
   * repeat answers with that renewed lease: renewing twice is harmless, so none is refused.
   * Throws (and renews nothing) on an invalid item or a failed statement.
   */
  renewMany(items: readonly Renewal[]): Promise<(RenewedLease | LeaseLostError)[]>;

  /**
   * Merges `patch` into the status, conditional on resourceVersion; re-reads and re-applies on
   * conflict a few times, then throws ConflictError. Throws LeaseLostError when fenced out.
   */
  updateStatus(lease: Lease, patch: StatusPatch): Promise<Job>;

  /**
   * Deletes the job and inserts its history row in one transaction. Fenced like every write.
   * `reason` is `completed` unless the holder is finishing a cancelled job.
   */
  complete(lease: Lease, status: FinalStatus, reason?: FinishReason): Promise<HistoricJob>;

  /**
   * `complete` for many jobs in one statement (postgres) — the runtime's completion batcher gathers
   * them. One result per item, in order: a Completed acknowledgement once its history row is
   * written (read the row with `getHistory`), or a LeaseLostError when its token is no longer the
   * job's (that item changes nothing; the others still land). An item repeated in one batch lands
   * once: the first wins, the repeats get LeaseLostError, as if completed in order.
   * Throws (and writes nothing) on an invalid item or a failed statement.
   */
  completeMany(items: readonly Completion[]): Promise<(Completed | LeaseLostError)[]>;

  /** Gives the lease (and the attempt) back, so the job is claimable at once. Fenced. */
  release(lease: Lease): Promise<void>;

  /**
   * Cancels a job by name: a queued one goes to history as cancelled (state error), a leased one
   * gets `cancelRequested` so its holder aborts it. Returns null when no such job is queued.
   */
  cancel(namespace: string, name: string): Promise<CancelOutcome | null>;

  /**
   * Moves jobs that used up their attempts and hold no live lease to history as `error`
   * ("attempts exhausted"). Returns how many moved. The driver calls it on every tick.
   */
  sweepExhausted(): Promise<number>;

  getHistory(uid: string): Promise<HistoricJob | null>;
  /** Newest first. */
  listHistory(filter?: HistoryFilter): Promise<Page<HistoricJob>>;
  /** Deletes history rows finished more than `olderThanMs` ago (database clock). Returns how many. */
  pruneHistory(olderThanMs: number): Promise<number>;

  /**
   * Calls `listener` whenever a job is enqueued (by any process). Resolves to an unsubscribe.
   * `null` means notifications may have been missed (the listening connection was re-established).
   */
  onJobCreated(listener: (job: JobCreated | null) => void): Promise<() => Promise<void>>;

  /** The store's clock, epoch ms (the database's `now()` for postgres). */
  now(): Promise<number>;

  close(): Promise<void>;
}

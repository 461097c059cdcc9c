// Gathers the lease renewals of many job actors over a few milliseconds and writes them with one
// `renewMany` (BullMQ's lock-manager model: one write renews all of a worker's locks): one statement
// for a batch instead of one per job. Each caller still gets its own answer.

import { type Lease, requirePositiveDuration } from '../store/job.ts';
import type { JobStore, Renewal, RenewedLease } from '../store/jobStore.ts';
import { StatementBatcher } from './statementBatcher.ts';

// Longer than the completion batcher's 2 ms: a renewal is not on any job's critical path (it is due
// a renew interval, lease/3 by default and never under 333 ms, before the lease runs out), while
// the renewals of jobs claimed together drift apart by a few ms of timer and event-loop jitter;
// 10 ms gathers them and costs at most 3% of the shortest default renew interval.
export const DEFAULT_RENEWAL_DELAY_MS = 10;
export const DEFAULT_RENEWAL_BATCH = 100;

export interface RenewalBatcherOptions {
  /** How long the first queued renewal waits for others before the batch is written. Default 10 ms. */
  maxDelayMs?: number;
  /** A batch this large is written at once. Default 100. */
  maxBatch?: number;
}

export class RenewalBatcher {
  readonly #batcher: StatementBatcher<Renewal, RenewedLease>;

  constructor(store: Pick<JobStore, 'renewMany'>, options: RenewalBatcherOptions = {}) {
    this.#batcher = new StatementBatcher({
      what: 'renewMany',
      write: (items) => store.renewMany(items),
      maxDelayMs: options.maxDelayMs ?? DEFAULT_RENEWAL_DELAY_MS,
      maxBatch: options.maxBatch ?? DEFAULT_RENEWAL_BATCH,
    });
  }

  /**
   * `store.renew`, batched: resolves to the renewed lease (with `cancelRequested`) once its batch is
   * written. Rejects with LeaseLostError when the lease is no longer the job's live lease, and with
   * the statement's error when the whole batch failed (nothing of it was renewed, so the caller may
   * retry while its lease lasts).
   */
  async renew(lease: Lease, leaseMs: number): Promise<RenewedLease> {
    // Checked here, not left to the store: an invalid item would fail the whole batch it rides in.
    requirePositiveDuration('leaseMs', leaseMs);
    return this.#batcher.add({ lease, leaseMs });
  }

  /** Writes everything queued; later renewals are written without waiting for company. */
  close(): Promise<void> {
    return this.#batcher.close();
  }
}

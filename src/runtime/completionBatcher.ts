// Gathers the completions of many job actors over a few milliseconds and writes them with one
// `completeMany` (BullMQ's lock-manager model, applied to the end of a job): one statement and one
// commit for a batch instead of one per job. Each caller still gets its own answer.

import { type FinalStatus, FinishReason, type Lease, requireFinalState } from '../store/job.ts';
import type { Completed, Completion, JobStore } from '../store/jobStore.ts';
import { StatementBatcher } from './statementBatcher.ts';

export const DEFAULT_COMPLETION_DELAY_MS = 2;
export const DEFAULT_COMPLETION_BATCH = 100;

export interface CompletionBatcherOptions {
  /** How long the first queued completion waits for others before the batch is written. Default 2 ms. */
  maxDelayMs?: number;
  /** A batch this large is written at once. Default 100. */
  maxBatch?: number;
}

export class CompletionBatcher {
  readonly #batcher: StatementBatcher<Completion, Completed>;

  constructor(store: Pick<JobStore, 'completeMany'>, options: CompletionBatcherOptions = {}) {
    this.#batcher = new StatementBatcher({
      what: 'completeMany',
      write: (items) => store.completeMany(items),
      maxDelayMs: options.maxDelayMs ?? DEFAULT_COMPLETION_DELAY_MS,
      maxBatch: options.maxBatch ?? DEFAULT_COMPLETION_BATCH,
    });
  }

  /**
   * `store.complete`, batched: resolves to the store's acknowledgement once its batch is written
   * (the history row itself is `store.getHistory`'s). Rejects with LeaseLostError when the job's
   * token moved on, and with the statement's error when the whole batch failed (nothing of it was
   * written, so the caller may retry).
   */
  async complete(
    lease: Lease,
    status: FinalStatus,
    reason: FinishReason = FinishReason.completed,
  ): Promise<Completed> {
    // Checked here, not left to the store: an invalid item would fail the whole batch it rides in.
    requireFinalState(status);
    return this.#batcher.add({ lease, status, reason });
  }

  /** Writes everything queued; later completions are written without waiting for company. */
  close(): Promise<void> {
    return this.#batcher.close();
  }
}

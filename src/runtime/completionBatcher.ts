// Gathers the completions of many job actors over a few milliseconds and writes them with one
// `completeMany` (BullMQ's lock-manager model, applied to the end of a job): one statement and one
// commit for a batch instead of one per job. Each caller still gets its own answer.

import { LeaseLostError, ValidationError } from '../errors.ts';
import { FINAL_STATES, type FinalStatus, FinishReason, type HistoricJob, type Lease } from '../store/job.ts';
import type { Completion, JobStore } from '../store/jobStore.ts';

export const DEFAULT_COMPLETION_DELAY_MS = 2;
export const DEFAULT_COMPLETION_BATCH = 100;

export interface CompletionBatcherOptions {
  /** How long the first queued completion waits for others before the batch is written. Default 2 ms. */
  maxDelayMs?: number;
  /** A batch this large is written at once. Default 100. */
  maxBatch?: number;
}

interface Pending extends Completion {
  resolve: (row: HistoricJob) => void;
  reject: (err: unknown) => void;
}

export class CompletionBatcher {
  readonly #store: Pick<JobStore, 'completeMany'>;
  readonly #maxDelayMs: number;
  readonly #maxBatch: number;
  #queue: Pending[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The batch being written; at most one at a time. */
  #inFlight: Promise<void> | undefined;
  #closed = false;

  constructor(store: Pick<JobStore, 'completeMany'>, options: CompletionBatcherOptions = {}) {
    this.#store = store;
    this.#maxDelayMs = options.maxDelayMs ?? DEFAULT_COMPLETION_DELAY_MS;
    this.#maxBatch = Math.max(1, options.maxBatch ?? DEFAULT_COMPLETION_BATCH);
  }

  /**
   * `store.complete`, batched: resolves to the job's history row once its batch is written. Rejects
   * with LeaseLostError when the job's token moved on, and with the statement's error when the
   * whole batch failed (nothing of it was written, so the caller may retry).
   */
  complete(
    lease: Lease,
    status: FinalStatus,
    reason: FinishReason = FinishReason.completed,
  ): Promise<HistoricJob> {
    // Checked here, not left to the store: an invalid item would fail the whole batch it rides in.
    if (!FINAL_STATES.includes(status.state)) {
      return Promise.reject(
        new ValidationError('status.state', `complete needs a final state, got "${status.state}"`),
      );
    }
    return new Promise<HistoricJob>((resolve, reject) => {
      this.#queue.push({ lease, status, reason, resolve, reject });
      if (this.#closed || this.#queue.length >= this.#maxBatch) this.#flushNow();
      else this.#timer ??= setTimeout(() => this.#flushNow(), this.#maxDelayMs);
    });
  }

  /** Writes everything queued; later completions are written without waiting for company. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#flushNow();
    while (this.#inFlight) await this.#inFlight;
  }

  #flushNow(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    // The batch in flight takes the next one along when it ends: what queued meanwhile has waited
    // a whole statement already.
    if (this.#inFlight || this.#queue.length === 0) return;
    const batch = this.#queue.splice(0, this.#maxBatch);
    this.#inFlight = this.#write(batch).finally(() => {
      this.#inFlight = undefined;
      if (this.#queue.length > 0) this.#flushNow();
    });
  }

  async #write(batch: Pending[]): Promise<void> {
    let results: (HistoricJob | LeaseLostError)[];
    try {
      results = await this.#store.completeMany(
        batch.map(({ lease, status, reason }) => ({ lease, status, reason })),
      );
    } catch (err) {
      for (const item of batch) item.reject(err);
      return;
    }
    batch.forEach((item, i) => {
      const result = results[i];
      if (result === undefined)
        item.reject(new Error(`completeMany answered ${results.length} of ${batch.length} items`));
      else if (result instanceof LeaseLostError) item.reject(result);
      else item.resolve(result);
    });
  }
}
